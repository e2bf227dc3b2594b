//! Time named in a question ("in May 2023", "on 13 October 2023", "last week", "yesterday",
//! "in June", "3 days ago"), resolved against the present to a [`TimeSpan`], so search can
//! prefer memories observed then (`Memory::observed_at`).
//!
//! Deliberately small: English dates and the relative phrases people use when they ask an agent
//! what happened. A question without one gets `None` and ranks as before; a phrase that is not
//! understood is ignored, never guessed at.

use chrono::{DateTime, Datelike, Days, Duration, Months, NaiveDate, TimeZone, Utc, Weekday};

/// When a question's answer was observed: one interval, or a month of any year ("in June" in a
/// memory spanning years means every June).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSpan {
    /// From `start` (inclusive) to `end` (exclusive).
    Between {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    /// A calendar month (1–12) of any year.
    MonthOfAnyYear(u32),
}

/// How long after something happens people still tell of it as news ("last week I…"): a
/// memory observed this soon after a span may be about it.
pub const TOLD_LATER: Duration = Duration::days(7);

impl TimeSpan {
    /// Whether an observation at `at` falls in the span.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        match *self {
            Self::Between { start, end } => start <= at && at < end,
            Self::MonthOfAnyYear(month) => at.month() == month,
        }
    }

    /// Whether a memory observed at `at` may tell of the span: observed in it, or within
    /// [`TOLD_LATER`] after it ends.
    pub fn may_tell_of(&self, at: DateTime<Utc>) -> bool {
        match *self {
            Self::Between { start, end } => start <= at && at < end + TOLD_LATER,
            Self::MonthOfAnyYear(_) => self.contains(at),
        }
    }
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Words that make a following month name a date ("in may"), where "may" alone is a verb.
const MONTH_LEADS: [&str; 8] = [
    "in", "last", "since", "during", "early", "late", "mid", "of",
];

/// The month a lower-case word names, 1–12: its full name or a short form ("oct", "sept").
pub(crate) fn month_of(word: &str) -> Option<u32> {
    let full = MONTHS.iter().position(|m| *m == word);
    let short = (word.len() == 3 || word == "sept")
        .then(|| MONTHS.iter().position(|m| m.starts_with(word)))
        .flatten();
    full.or(short).map(|i| i as u32 + 1)
}

/// A month or day name ("may", "oct", "monday"), lower-case: a date, where capitalised words
/// are otherwise names.
pub(crate) fn is_calendar_word(word: &str) -> bool {
    month_of(word).is_some() || weekday(word).is_some()
}

/// The month a question names: [`month_of`], but not "mar" (a word far more often than March).
fn month_number(word: &str) -> Option<u32> {
    month_of(word).filter(|_| word != "mar")
}

fn weekday(word: &str) -> Option<Weekday> {
    match word {
        "monday" => Some(Weekday::Mon),
        "tuesday" => Some(Weekday::Tue),
        "wednesday" => Some(Weekday::Wed),
        "thursday" => Some(Weekday::Thu),
        "friday" => Some(Weekday::Fri),
        "saturday" => Some(Weekday::Sat),
        "sunday" => Some(Weekday::Sun),
        _ => None,
    }
}

/// A day of the month: "13", "13th", "1st".
fn day_number(word: &str) -> Option<u32> {
    let digits = word.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &word[digits.len()..];
    if !matches!(suffix, "" | "st" | "nd" | "rd" | "th") || digits.len() > 2 {
        return None;
    }
    digits.parse().ok().filter(|d| (1..=31).contains(d))
}

fn year_number(word: &str) -> Option<i32> {
    (word.len() == 4)
        .then(|| word.parse().ok())
        .flatten()
        .filter(|y| (1900..=2200).contains(y))
}

fn midnight(date: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default())
}

fn day_span(date: NaiveDate) -> TimeSpan {
    TimeSpan::Between {
        start: midnight(date),
        end: midnight(date) + Duration::days(1),
    }
}

fn month_span(year: i32, month: u32) -> Option<TimeSpan> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    Some(TimeSpan::Between {
        start: midnight(first),
        end: midnight(first.checked_add_months(Months::new(1))?),
    })
}

fn year_span(year: i32) -> Option<TimeSpan> {
    Some(TimeSpan::Between {
        start: midnight(NaiveDate::from_ymd_opt(year, 1, 1)?),
        end: midnight(NaiveDate::from_ymd_opt(year + 1, 1, 1)?),
    })
}

/// The span of `days` days ending with (and including) `last`.
fn days_until(last: NaiveDate, days: u64) -> Option<TimeSpan> {
    Some(TimeSpan::Between {
        start: midnight(last.checked_sub_days(Days::new(days.saturating_sub(1)))?),
        end: midnight(last) + Duration::days(1),
    })
}

/// A small count in words or digits: "a", "two", "3".
fn count_word(word: &str) -> Option<i64> {
    match word {
        "a" | "an" | "one" => Some(1),
        "two" | "couple" => Some(2),
        "three" | "few" => Some(3),
        "four" => Some(4),
        "five" => Some(5),
        "six" => Some(6),
        other => other.parse().ok().filter(|n| (1..=1000).contains(n)),
    }
}

/// The time a question names, if it names one, resolved against `now`. The most specific
/// phrase wins: a full date over a month over a year.
pub fn time_span(question: &str, now: DateTime<Utc>) -> Option<TimeSpan> {
    let lower = question.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let today = now.date_naive();
    let at = |i: usize| words.get(i).copied().unwrap_or("");
    let mut best: Option<(u8, TimeSpan)> = None;
    let mut consider = |specificity: u8, span: Option<TimeSpan>| {
        if let Some(span) = span
            && best.is_none_or(|(s, _)| specificity > s)
        {
            best = Some((specificity, span));
        }
    };
    for (i, word) in words.iter().enumerate() {
        if let Some(month) = month_number(word) {
            // "May", "March" and short forms ("Jan", "Dec") are words and names too: they count
            // only next to a number, or ("may", "march") after a word like "in".
            let next_to_number = day_number(at(i.wrapping_sub(1))).is_some()
                || day_number(at(i + 1)).is_some()
                || year_number(at(i + 1)).is_some();
            let short = !MONTHS.contains(word);
            let is_date_word = next_to_number
                || !short
                    && (!matches!(*word, "may" | "march")
                        || MONTH_LEADS.contains(&at(i.wrapping_sub(1))));
            if !is_date_word {
                continue;
            }
            // "13 October 2023", "October 13, 2023", "October 13th".
            let day = day_number(at(i.wrapping_sub(1)))
                .map(|d| (d, i + 1))
                .or_else(|| day_number(at(i + 1)).map(|d| (d, i + 2)));
            let year_after =
                |j: usize| year_number(at(j)).or(year_number(at(j + 1)).filter(|_| at(j) == "of"));
            match day {
                Some((day, next)) => {
                    let year = year_after(next).unwrap_or(today.year());
                    consider(3, NaiveDate::from_ymd_opt(year, month, day).map(day_span));
                }
                None => match year_after(i + 1) {
                    Some(year) => consider(2, month_span(year, month)),
                    None if at(i.wrapping_sub(1)) == "last" => {
                        // The latest such month that has ended, or is running, before today.
                        let year = if month < today.month() {
                            today.year()
                        } else {
                            today.year() - 1
                        };
                        consider(2, month_span(year, month));
                    }
                    None => consider(1, Some(TimeSpan::MonthOfAnyYear(month))),
                },
            }
            continue;
        }
        if let Some(year) = year_number(word) {
            consider(1, year_span(year));
            continue;
        }
        let previous = at(i.wrapping_sub(1));
        match *word {
            "today" => consider(3, Some(day_span(today))),
            "yesterday" => consider(3, today.pred_opt().map(day_span)),
            "week" | "weekend" | "month" | "year" if previous == "last" || previous == "this" => {
                let this = previous == "this";
                let span = match *word {
                    "week" if this => days_until(today, 7),
                    "week" => today
                        .checked_sub_days(Days::new(7))
                        .and_then(|end| days_until(end, 7)),
                    "weekend" => {
                        // The Saturday and Sunday before today (this one, if it is the weekend).
                        let back = (today.weekday().num_days_from_monday() + 1) % 7;
                        today
                            .checked_sub_days(Days::new(u64::from(back)))
                            .and_then(|sunday| days_until(sunday, 2))
                    }
                    "month" => {
                        let first = today.with_day(1);
                        let month = if this {
                            first
                        } else {
                            first.and_then(|f| f.checked_sub_months(Months::new(1)))
                        };
                        month.and_then(|m| month_span(m.year(), m.month()))
                    }
                    _ => year_span(if this { today.year() } else { today.year() - 1 }),
                };
                consider(2, span);
            }
            "ago" => {
                // "3 days ago", "two weeks ago", "a month ago": that moment, give or take a
                // third of the distance.
                let days = match previous.trim_end_matches('s') {
                    "day" => 1,
                    "week" => 7,
                    "month" => 30,
                    "year" => 365,
                    _ => continue,
                };
                if let Some(count) = count_word(at(i.wrapping_sub(2))) {
                    let distance = Duration::days(count * days);
                    let slack = Duration::days((count * days / 3).max(1));
                    consider(
                        2,
                        Some(TimeSpan::Between {
                            start: now - distance - slack,
                            end: now - distance + slack,
                        }),
                    );
                }
            }
            other => {
                if let Some(day) = weekday(other)
                    && (previous == "last" || previous == "on")
                {
                    // The latest such day before today.
                    let back = (7 + today.weekday().num_days_from_monday()
                        - day.num_days_from_monday()
                        - 1)
                        % 7
                        + 1;
                    consider(
                        3,
                        today
                            .checked_sub_days(Days::new(u64::from(back)))
                            .map(day_span),
                    );
                }
            }
        }
    }
    best.map(|(_, span)| span)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wednesday 15 March 2023, noon.
    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2023, 3, 15, 12, 0, 0).unwrap()
    }

    fn day(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
    }

    fn between(start: DateTime<Utc>, end: DateTime<Utc>) -> Option<TimeSpan> {
        Some(TimeSpan::Between { start, end })
    }

    #[test]
    fn questions_name_times_in_many_ways() {
        let cases: &[(&str, Option<TimeSpan>)] = &[
            (
                "What painting did Melanie show on October 13, 2023?",
                between(day(2023, 10, 13), day(2023, 10, 14)),
            ),
            (
                "What did Gina find for her store on 1 February, 2023?",
                between(day(2023, 2, 1), day(2023, 2, 2)),
            ),
            (
                "What setback did Melanie face in October 2023?",
                between(day(2023, 10, 1), day(2023, 11, 1)),
            ),
            (
                "what did we ship on Dec 5, 2022",
                between(day(2022, 12, 5), day(2022, 12, 6)),
            ),
            (
                "What did I do in May of 2022?",
                between(day(2022, 5, 1), day(2022, 6, 1)),
            ),
            (
                "When did Melanie go camping in June?",
                Some(TimeSpan::MonthOfAnyYear(6)),
            ),
            (
                "How many times has she gone to the beach in 2023?",
                between(day(2023, 1, 1), day(2024, 1, 1)),
            ),
            (
                "what did I do last May",
                between(day(2022, 5, 1), day(2022, 6, 1)),
            ),
            (
                "what did I cook last January",
                between(day(2023, 1, 1), day(2023, 2, 1)),
            ),
            (
                "Where did we eat yesterday?",
                between(day(2023, 3, 14), day(2023, 3, 15)),
            ),
            (
                "what did I read last week",
                between(day(2023, 3, 2), day(2023, 3, 9)),
            ),
            (
                "what happened last month",
                between(day(2023, 2, 1), day(2023, 3, 1)),
            ),
            ("trips last year", between(day(2022, 1, 1), day(2023, 1, 1))),
            (
                "what did I buy last weekend",
                between(day(2023, 3, 11), day(2023, 3, 13)),
            ),
            (
                "who called last Monday",
                between(day(2023, 3, 13), day(2023, 3, 14)),
            ),
            (
                "what did I order 3 days ago",
                between(
                    day(2023, 3, 11) + Duration::hours(12),
                    day(2023, 3, 13) + Duration::hours(12),
                ),
            ),
        ];
        for (question, want) in cases {
            assert_eq!(time_span(question, now()), *want, "{question}");
        }
    }

    #[test]
    fn questions_without_a_time_name_none() {
        for question in [
            "May I ask what Caroline's hobby is?",
            "What does Melanie do to destress?",
            "How many kids does she have, 2 or 3?",
            "Who will march in the parade?",
            "When did Jan visit Paris?",
            "Is the Oct report out?",
            "",
        ] {
            assert_eq!(time_span(question, now()), None, "{question}");
        }
    }

    #[test]
    fn spans_hold_their_own_times() {
        let span = time_span("in October 2023", now()).unwrap();
        assert!(span.contains(day(2023, 10, 31) + Duration::hours(23)));
        assert!(!span.contains(day(2023, 11, 1)));
        assert!(span.may_tell_of(day(2023, 11, 7)), "told a week later");
        assert!(!span.may_tell_of(day(2023, 11, 8)));
        assert!(!span.may_tell_of(day(2023, 9, 30)), "never before");
        assert!(TimeSpan::MonthOfAnyYear(6).contains(day(2019, 6, 30)));
        assert!(!TimeSpan::MonthOfAnyYear(6).contains(day(2019, 7, 1)));
    }

    #[test]
    fn an_impossible_date_leaves_what_else_the_question_names() {
        assert_eq!(
            time_span("on 31 February 2023", now()),
            between(day(2023, 1, 1), day(2024, 1, 1))
        );
        assert_eq!(time_span("on 31 February", now()), None);
    }
}
