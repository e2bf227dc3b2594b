//! [`Deadline`]: the moment a read must have finished by. It travels inside
//! [`ReadLimits`](crate::ReadLimits) to the code that loops over records — a store folding a range on a
//! blocking thread, `ts_query` evaluating rows — because a read abandoned by its caller (a
//! timed-out future) does not stop a thread that is already running: the loop has to look at
//! the clock itself and give up.
//!
//! Reading `Instant::now()` is no I/O: this stays pure, like `Timestamp::now()`.

use std::time::{Duration, Instant};

use crate::TsError;

/// Rows a loop handles between two looks at the clock. A clock read costs some tens of
/// nanoseconds, a row some hundreds; every 4,096 rows the check is free and a loop overruns its
/// deadline by a millisecond or so at most.
pub const ROWS_PER_DEADLINE_CHECK: usize = 4_096;

/// When a read must be done, and the budget it was given (for the message); none by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deadline {
    at: Option<(Instant, Duration)>,
}

impl Deadline {
    /// No deadline: the read runs until it is done (tests, tools that read their own data).
    pub const fn none() -> Self {
        Self { at: None }
    }

    /// `budget` from now.
    pub fn after(budget: Duration) -> Self {
        let now = Instant::now();
        Self {
            // An absurdly large budget means no deadline rather than an overflow.
            at: now.checked_add(budget).map(|at| (at, budget)),
        }
    }

    /// The instant, when there is one.
    pub fn instant(&self) -> Option<Instant> {
        self.at.map(|(at, _)| at)
    }

    pub fn expired(&self) -> bool {
        self.at.is_some_and(|(at, _)| Instant::now() >= at)
    }

    /// `Err` once the deadline has passed.
    pub fn check(&self) -> Result<(), TsError> {
        if self.expired() {
            return Err(self.error());
        }
        Ok(())
    }

    /// The error of a read that ran out of time: it says how to ask for less.
    pub fn error(&self) -> TsError {
        let budget = self.at.map_or(Duration::ZERO, |(_, budget)| budget);
        let budget = if budget.subsec_millis() == 0 {
            format!("{} s", budget.as_secs())
        } else {
            format!("{} ms", budget.as_millis())
        };
        TsError::Limit(format!(
            "the read did not finish within its deadline of {budget}: ask for less — a shorter time \
             range (a later start, or WHERE time >= ago(1h)), a filter on a dimension (like \
             bus_id = 'B1'), a wider bin, or one measure — or ask the operator to raise \
             --ts-read-deadline-secs"
        ))
    }

    /// A counter for a loop over rows that looks at the clock every
    /// [`ROWS_PER_DEADLINE_CHECK`] rows (and at the first, so an expired deadline stops a loop
    /// before any work).
    pub fn ticker(&self) -> DeadlineTicker {
        DeadlineTicker {
            deadline: *self,
            rows: 0,
        }
    }
}

/// See [`Deadline::ticker`].
#[derive(Debug, Clone)]
pub struct DeadlineTicker {
    deadline: Deadline,
    rows: usize,
}

impl DeadlineTicker {
    /// Counts one row; `Err` when a look at the clock finds the deadline passed.
    pub fn tick(&mut self) -> Result<(), TsError> {
        let due = self.rows.is_multiple_of(ROWS_PER_DEADLINE_CHECK);
        self.rows = self.rows.wrapping_add(1);
        if due && self.deadline.at.is_some() {
            return self.deadline.check();
        }
        Ok(())
    }

    /// Counts `rows` rows at once (a loop that skips ahead), looking at the clock when they
    /// cross a check.
    pub fn advance(&mut self, rows: usize) -> Result<(), TsError> {
        if rows == 0 {
            return Ok(());
        }
        let before = self.rows / ROWS_PER_DEADLINE_CHECK;
        self.rows = self.rows.saturating_add(rows);
        if self.rows / ROWS_PER_DEADLINE_CHECK != before || before == 0 {
            return self.deadline.check();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_deadline_stops_the_first_row_and_a_distant_one_never() {
        let expired = Deadline::after(Duration::ZERO);
        let error = expired.ticker().tick().expect_err("expired");
        assert!(matches!(&error, TsError::Limit(_)), "{error:?}");
        assert!(error.to_string().contains("deadline of 0 s"), "{error}");
        assert!(error.to_string().contains("shorter time range"), "{error}");

        let distant = Deadline::after(Duration::from_secs(3_600));
        let mut ticker = distant.ticker();
        for _ in 0..3 * ROWS_PER_DEADLINE_CHECK {
            ticker.tick().expect("an hour is enough");
        }
        ticker.advance(1_000_000).expect("still an hour");
        assert!(Deadline::none().check().is_ok());
        assert!(!Deadline::none().expired());
        let odd = Deadline::after(Duration::from_millis(1_500)).error();
        assert!(odd.to_string().contains("1500 ms"), "{odd}");
        assert!(Deadline::after(Duration::MAX).instant().is_none());
    }
}
