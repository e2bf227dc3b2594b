//! Where admitted heavy work runs, and at which OS priority: [`CpuUse`].
//!
//! The gate bounds how many calls of a tenant run at once, but on a machine with few cores the
//! operating system still shares each core evenly between the threads on it: a tenant that keeps
//! its half of the pool busy all the time still takes about half of a core from every other
//! tenant's request that lands beside it. So each lane's recent CPU time is counted (the
//! thread's own CPU clock, not the wall clock, so work slowed by others does not count against
//! its lane), and the work of a lane that used more than its part lately runs on a thread of low
//! OS priority ([`LOW_PRIORITY_NICE`]). The kernel then gives the other tenants' threads the
//! core first, and the heavy lane the rest: a tenant alone still uses every idle core.
//!
//! "More than its part" is either of two things: more than a quarter of the pool, whoever else
//! is busy; or, while another lane is using the CPU too, more than twice what that lane uses
//! (above a floor of a twentieth of the pool). The second catches a tenant that keeps a third
//! of a core busy with heavy reads beside one whose few light requests need the CPU at once:
//! it stays under the first bound, and at the same priority it would take turns with them.
//! Two tenants using about as much as each other stay level.
//!
//! Work nobody waits for (the background embedder) always runs at the lowest priority, nice 19.
//!
//! A low-priority thread is started for each such call rather than pooled: the work is
//! milliseconds long, a thread start tens of microseconds, and a thread that lowered its
//! priority cannot raise it again without privileges, so it could never serve a normal call.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::Lane;

/// How many nice steps below the process low-priority threads run (at most nice 19). Against a
/// thread of the process the kernel gives them about a tenth of a shared core (weights 110 and
/// 1024 at nice 10 and 0), so the heavy lane still progresses when every core is busy, just
/// after the others. Relative, so a server started under `nice` keeps the same order.
pub const LOW_PRIORITY_NICE: i32 = 10;

/// How fast counted CPU time is forgotten: it decays by `e` in this long, so the count is
/// about the CPU seconds a lane used over the last such span.
const MEMORY: Duration = Duration::from_secs(1);

/// A lane counts as heavy once it used more than this part of the pool's threads lately.
const HEAVY_SHARE: f64 = 0.25;

/// Above this part of the pool's threads, a lane that uses more than twice what another busy
/// lane uses counts as heavy too; below it, never.
const BUSY_SHARE: f64 = 0.05;

/// CPU seconds (decayed) above which a lane counts as using the CPU lately: a millisecond.
const ACTIVE_ABOVE: f64 = 1e-3;

/// Lanes whose count decayed to nothing are forgotten once the map grows past this.
const FORGET_LANES_ABOVE: usize = 4_096;

/// At which OS priority a call runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Normal,
    /// See [`LOW_PRIORITY_NICE`].
    Low,
    /// Below that, at nice 19 (19 steps down, capped): work nobody waits for, which a heavy
    /// tenant's work (its ingest embeddings) goes before too.
    Background,
}

impl Priority {
    /// Nice steps below the process.
    fn lowered_by(self) -> i32 {
        match self {
            Priority::Normal => 0,
            Priority::Low => LOW_PRIORITY_NICE,
            Priority::Background => 19,
        }
    }
}

/// The work panicked (a bug) or found no thread to run on; callers answer it as an internal
/// error rather than crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkFailed(pub String);

impl std::fmt::Display for WorkFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a CPU task failed: {}", self.0)
    }
}

impl std::error::Error for WorkFailed {}

/// CPU seconds a lane used, decayed to `at`.
#[derive(Debug, Clone, Copy)]
struct Used {
    seconds: f64,
    at: Instant,
}

impl Used {
    fn now(self, now: Instant) -> f64 {
        let age = now.saturating_duration_since(self.at).as_secs_f64();
        self.seconds * (-age / MEMORY.as_secs_f64()).exp()
    }
}

/// See the module docs. One per gate, shared by everything the gate admits.
#[derive(Debug)]
pub struct CpuUse<K: Lane> {
    /// CPU seconds per lane above which its work runs at low priority.
    heavy_above: f64,
    /// CPU seconds per lane above which its work runs at low priority while another lane uses
    /// less than half as much.
    busy_above: f64,
    used: Mutex<HashMap<K, Used>>,
}

impl<K: Lane> CpuUse<K> {
    /// For a pool of `threads` threads.
    pub fn new(threads: usize) -> Self {
        Self {
            heavy_above: HEAVY_SHARE * threads.max(1) as f64 * MEMORY.as_secs_f64(),
            busy_above: BUSY_SHARE * threads.max(1) as f64 * MEMORY.as_secs_f64(),
            used: Mutex::new(HashMap::new()),
        }
    }

    fn used_map(&self) -> std::sync::MutexGuard<'_, HashMap<K, Used>> {
        // Every change under this lock is one insert or one float update.
        self.used.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// CPU seconds `lane` used lately (decayed; see [`MEMORY`]).
    pub fn used(&self, lane: &K) -> f64 {
        self.used_map()
            .get(lane)
            .map_or(0.0, |used| used.now(Instant::now()))
    }

    /// At which priority `lane`'s next call runs.
    pub fn priority(&self, lane: &K) -> Priority {
        let now = Instant::now();
        let used = self.used_map();
        let mine = used.get(lane).map_or(0.0, |used| used.now(now));
        let heavier_than_a_busy_lane = || {
            used.iter().any(|(other, used)| {
                let theirs = used.now(now);
                other != lane && theirs > ACTIVE_ABOVE && 2.0 * theirs < mine
            })
        };
        if mine > self.heavy_above || (mine > self.busy_above && heavier_than_a_busy_lane()) {
            Priority::Low
        } else {
            Priority::Normal
        }
    }

    fn record(&self, lane: &K, seconds: f64) {
        let now = Instant::now();
        let mut used = self.used_map();
        if used.len() > FORGET_LANES_ABOVE {
            used.retain(|_, used| used.now(now) > 1e-3);
        }
        let entry = used.entry(lane.clone()).or_insert(Used {
            seconds: 0.0,
            at: now,
        });
        *entry = Used {
            seconds: entry.now(now) + seconds,
            at: now,
        };
    }

    /// Runs `work` for `lane` on a blocking thread, at low priority when the lane is heavy, and
    /// counts the CPU time it took against the lane. Admission is the caller's: this only
    /// decides where the admitted work runs.
    pub async fn run<T, F>(&self, lane: &K, work: F) -> Result<T, WorkFailed>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (answer, seconds) = run_timed(self.priority(lane), work).await?;
        self.record(lane, seconds);
        Ok(answer)
    }
}

/// Runs `work` on a thread of the lowest priority: for work nobody waits for.
pub async fn run_in_background<T, F>(work: F) -> Result<T, WorkFailed>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    run_at(Priority::Background, work).await
}

/// Runs `work` on a blocking thread of `priority`, decided by the caller from [`CpuUse`]
/// (a store that runs a read's scan for the service that admitted it). Not counted.
pub async fn run_at<T, F>(priority: Priority, work: F) -> Result<T, WorkFailed>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    run_timed(priority, work).await.map(|(answer, _)| answer)
}

/// Runs `work` on a thread of `priority`; its answer and the CPU seconds it took.
async fn run_timed<T, F>(priority: Priority, work: F) -> Result<(T, f64), WorkFailed>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let timed = move || {
        let start = thread_cpu_seconds();
        let answer = catch_unwind(AssertUnwindSafe(work)).map_err(|panic| {
            WorkFailed(
                panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panicked".into()),
            )
        });
        answer.map(|answer| (answer, thread_cpu_seconds() - start))
    };
    if priority != Priority::Normal {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let started = std::thread::Builder::new()
            .name("membrain-low-priority".into())
            .spawn(move || {
                lower_this_threads_priority(priority.lowered_by());
                let _ = sender.send(timed());
            });
        return match started {
            Ok(_) => receiver
                .await
                .map_err(|_| WorkFailed("the low-priority thread ended early".into()))?,
            // The process is at its thread limit: the call fails, the process goes on.
            Err(error) => Err(WorkFailed(format!(
                "could not start a low-priority thread: {error}"
            ))),
        };
    }
    tokio::task::spawn_blocking(timed)
        .await
        .map_err(|error| WorkFailed(error.to_string()))?
}

/// This thread's CPU time so far (Linux's per-thread CPU clock, which every thread has).
fn thread_cpu_seconds() -> f64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9
}

/// Lowers the calling thread's priority by `steps` (on Linux the nice value is per thread), to
/// nice 19 at most. Never raises it: a process already at nice 19 stays there (an absolute nice
/// of 10 would have run its "low" work above everything else). Lowering needs no privilege; if
/// it fails anyway, the work runs at normal priority, as before.
fn lower_this_threads_priority(steps: i32) {
    let thread = Some(rustix::thread::gettid());
    if let Ok(now) = rustix::process::getpriority_process(thread) {
        let lower = now.saturating_add(steps).min(19);
        if lower > now {
            let _ = rustix::process::setpriority_process(thread, lower);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spin(cpu: Duration) {
        let start = thread_cpu_seconds();
        while thread_cpu_seconds() - start < cpu.as_secs_f64() {
            std::hint::black_box(0u64);
        }
    }

    fn nice_of_this_thread() -> i32 {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap_or(-100)
    }

    #[tokio::test]
    async fn a_lane_that_used_its_part_of_the_cpu_runs_at_low_priority() {
        let cpu = CpuUse::new(2);
        let (heavy, light) = ("heavy".to_owned(), "light".to_owned());
        assert_eq!(cpu.priority(&heavy), Priority::Normal);
        let normal_nice = cpu.run(&heavy, nice_of_this_thread).await.unwrap();
        // A quarter of two threads over the last second is half a CPU second (counted with
        // decay, so a little more is spent).
        for _ in 0..4 {
            cpu.run(&heavy, || spin(Duration::from_millis(200)))
                .await
                .unwrap();
        }
        assert!(cpu.used(&heavy) > 0.5, "counted: {}", cpu.used(&heavy));
        assert_eq!(cpu.priority(&heavy), Priority::Low);
        let low_nice = cpu.run(&heavy, nice_of_this_thread).await.unwrap();
        assert_eq!(low_nice, (normal_nice + LOW_PRIORITY_NICE).min(19));
        // Another lane is not affected, and the heavy one is forgiven as its count decays.
        assert_eq!(cpu.priority(&light), Priority::Normal);
        assert_eq!(
            cpu.run(&light, nice_of_this_thread).await.unwrap(),
            normal_nice
        );
        let decayed = Used {
            seconds: 0.6,
            at: Instant::now() - MEMORY,
        };
        assert!(decayed.now(Instant::now()) < 0.25);
    }

    #[tokio::test]
    async fn a_lane_far_heavier_than_another_busy_one_goes_after_it() {
        let cpu = CpuUse::new(2);
        let (reader, agent, twin) = ("reader".to_owned(), "agent".to_owned(), "twin".to_owned());
        // A fifth of a CPU second: under a quarter of the pool, over a twentieth.
        cpu.run(&reader, || spin(Duration::from_millis(200)))
            .await
            .unwrap();
        assert_eq!(cpu.priority(&reader), Priority::Normal, "alone, it is not");
        cpu.run(&agent, || spin(Duration::from_millis(10)))
            .await
            .unwrap();
        assert_eq!(cpu.priority(&reader), Priority::Low, "beside a light lane");
        assert_eq!(cpu.priority(&agent), Priority::Normal);
        // A lane that uses about as much stays level with it.
        let level = CpuUse::new(2);
        for lane in [&reader, &twin] {
            level
                .run(lane, || spin(Duration::from_millis(150)))
                .await
                .unwrap();
        }
        assert_eq!(level.priority(&reader), Priority::Normal);
        assert_eq!(level.priority(&twin), Priority::Normal);
    }

    #[tokio::test]
    async fn background_work_runs_at_the_lowest_priority_and_a_panic_is_an_error() {
        assert_eq!(
            run_in_background(nice_of_this_thread).await.unwrap(),
            19,
            "the lowest priority"
        );
        let cpu = CpuUse::new(1);
        let failed = cpu
            .run(&"lane".to_owned(), || -> u8 { panic!("broken work") })
            .await
            .unwrap_err();
        assert!(failed.to_string().contains("broken work"), "{failed}");
    }
}
