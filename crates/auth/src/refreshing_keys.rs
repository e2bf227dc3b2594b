//! [`RefreshingKeys`]: a [`KeyResolver`] over a [`KeyMapSource`] that keeps the last good map in
//! memory and reloads it, so keys rotated in or out of the source take effect without a restart,
//! and that refuses every key once the map is too old to trust.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use membrain_memory::TenantId;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::key_map::KeyMap;
use crate::key_map_source::KeyMapSource;
use crate::{ApiKey, AuthError, KeyResolver};

/// When [`RefreshingKeys`] reloads its map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshSettings {
    /// How old the map may get: the first resolve after that reloads it, so a key removed from
    /// the source stops working within this (plus one load).
    pub refresh: Duration,
    /// The least time between two reload attempts caused by unknown keys or by a failed reload:
    /// a key rotated in works within this, and a stream of wrong keys costs the source at most one
    /// load per gap.
    pub min_reload_gap: Duration,
    /// How long a resolve that needs a fresh map waits for it. A slower load goes on in the
    /// background and the resolve answers from the map it has.
    pub reload_wait: Duration,
    /// How old the last successful load may be before every key is refused with
    /// [`AuthError::Unavailable`]: a key revoked in the source must not keep working forever
    /// because the source became unreachable. Should be well above `refresh`, so that a few
    /// failed reloads in a row do not lock everyone out.
    pub max_staleness: Duration,
}

impl RefreshSettings {
    /// The defaults with another refresh interval.
    pub fn every(refresh: Duration) -> Self {
        Self {
            refresh,
            ..Self::default()
        }
    }
}

impl Default for RefreshSettings {
    fn default() -> Self {
        Self {
            refresh: Duration::from_secs(60),
            min_reload_gap: Duration::from_secs(2),
            // Below the 3 s a Lambda function gets by default, and above a healthy Secrets
            // Manager call.
            reload_wait: Duration::from_secs(2),
            // Fifteen refresh intervals: an outage of the key store that long is an incident
            // of its own, and a revoked key stops working within it at the latest.
            max_staleness: Duration::from_secs(15 * 60),
        }
    }
}

/// A [`KeyResolver`] over a [`KeyMapSource`]:
///
/// * the map is loaded once by [`RefreshingKeys::new`] (which fails if that load fails);
/// * a resolve that finds the map older than `refresh` starts a reload and waits for it (up to
///   `reload_wait`); resolves meanwhile answer from the current map without waiting;
/// * an unknown key starts a reload when the last attempt is older than `min_reload_gap`, and
///   waits for it (or for one already running) before it is refused;
/// * one reload runs at a time, in its own task, so a caller that gives up does not cancel it;
/// * a failed reload keeps the last good map and logs a warning;
/// * once the last successful load is older than `max_staleness`, every resolve fails with
///   [`AuthError::Unavailable`] (callers answer 503 or deny) until a reload succeeds, and an
///   error naming the source is logged once a minute meanwhile.
///
/// Needs a tokio runtime (reloads are spawned tasks).
#[derive(Clone)]
pub struct RefreshingKeys {
    shared: Arc<Shared>,
}

struct Shared {
    source: Arc<dyn KeyMapSource>,
    settings: RefreshSettings,
    // A watch channel rather than a lock: resolves read the current map without waiting for a
    // reload, and waiters are woken when one finishes.
    state: watch::Sender<State>,
    /// When the "too stale" error was last logged: once a minute, not once per request.
    stale_logged_at: Mutex<Option<Instant>>,
}

/// How often a map past its maximum staleness is reported while it stays so.
const STALE_LOG_GAP: Duration = Duration::from_secs(60);

struct State {
    map: Arc<KeyMap>,
    /// When the current map was read (the start of its load).
    loaded_at: Instant,
    /// When the last reload started, successful or not.
    attempted_at: Instant,
    /// Reloads finished so far, successful or not: waiters wait for this to move.
    finished: u64,
    reloading: bool,
}

impl RefreshingKeys {
    /// Loads the map from `source` and keeps it fresh. Fails when the first load fails: a
    /// service must not start with no keys because its key store was unreachable.
    pub async fn new(
        source: Arc<dyn KeyMapSource>,
        settings: RefreshSettings,
    ) -> Result<Self, AuthError> {
        let started = Instant::now();
        let map = source.load().await?;
        tracing::info!(
            source = %source.describe(),
            keys = map.len(),
            tenants = map.tenant_count(),
            "loaded the API key map"
        );
        let state = State {
            map: Arc::new(map),
            loaded_at: started,
            attempted_at: started,
            finished: 0,
            reloading: false,
        };
        Ok(Self {
            shared: Arc::new(Shared {
                source,
                settings,
                state: watch::Sender::new(state),
                stale_logged_at: Mutex::new(None),
            }),
        })
    }

    /// Reloads now and waits for the result (after any reload already running, which may have
    /// read the source before the change the caller wants to see). On failure the last good map
    /// stays.
    pub async fn reload(&self) -> Result<(), AuthError> {
        let mut changes = self.shared.state.subscribe();
        while self.shared.try_begin_reload().is_none() {
            // The sender lives in `self.shared`, so the channel cannot close while we wait.
            let _ = changes.wait_for(|state| !state.reloading).await;
        }
        self.shared.load_and_commit().await
    }

    /// The current map.
    pub fn current(&self) -> Arc<KeyMap> {
        Arc::clone(&self.shared.state.borrow().map)
    }

    pub fn describe_source(&self) -> String {
        self.shared.source.describe()
    }
}

impl fmt::Debug for RefreshingKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshingKeys")
            .field("source", &self.shared.source.describe())
            .field("map", &*self.current())
            .field("settings", &self.shared.settings)
            .finish()
    }
}

#[async_trait::async_trait]
impl KeyResolver for RefreshingKeys {
    async fn resolve(&self, key: &ApiKey) -> Result<Option<TenantId>, AuthError> {
        let shared = &self.shared;
        let settings = &shared.settings;
        let hash = key.hash();
        let now = Instant::now();
        let (tenant, loaded_at, due, may_reload, reloading, finished) = {
            let state = shared.state.borrow();
            let age = now.duration_since(state.loaded_at);
            (
                state.map.tenant_for_hash(&hash).cloned(),
                state.loaded_at,
                // A map past its maximum staleness is always due, whatever `refresh` says.
                age >= settings.refresh.min(settings.max_staleness),
                now.duration_since(state.attempted_at) >= settings.min_reload_gap,
                state.reloading,
                state.finished,
            )
        };
        if tenant.is_some() && !due {
            return Ok(tenant);
        }
        // The map is due, or the key is unknown (perhaps rotated in a moment ago).
        let wait_after = match may_reload.then(|| shared.start_reload()).flatten() {
            Some(started_after) => started_after,
            // Someone else's reload: only an unknown key waits for it; a known key keeps
            // working on the current map until the reload lands.
            None if reloading && tenant.is_none() => finished,
            None => return shared.unless_too_stale(tenant, loaded_at),
        };
        shared.wait_for_reload_after(wait_after).await;
        let (tenant, loaded_at) = {
            let state = shared.state.borrow();
            (state.map.tenant_for_hash(&hash).cloned(), state.loaded_at)
        };
        shared.unless_too_stale(tenant, loaded_at)
    }
}

impl Shared {
    /// `tenant`, found in the map loaded at `loaded_at`, unless that map is past its maximum
    /// staleness: then no key can be trusted, revoked ones included.
    fn unless_too_stale(
        &self,
        tenant: Option<TenantId>,
        loaded_at: Instant,
    ) -> Result<Option<TenantId>, AuthError> {
        let age = Instant::now().duration_since(loaded_at);
        let max = self.settings.max_staleness;
        if age <= max {
            return Ok(tenant);
        }
        let source = self.source.describe();
        if self.stale_report_due() {
            tracing::error!(
                source = %source,
                age_secs = age.as_secs(),
                max_staleness_secs = max.as_secs(),
                "the API key map has not been reloaded within its maximum staleness: refusing \
                 every key until the source can be read again"
            );
        }
        Err(AuthError::Unavailable(format!(
            "the API key map from {source} was last loaded {}s ago, longer than its maximum \
             staleness ({}s), and cannot be reloaded",
            age.as_secs(),
            max.as_secs()
        )))
    }

    /// True at most once per [`STALE_LOG_GAP`].
    fn stale_report_due(&self) -> bool {
        let now = Instant::now();
        let mut last = self
            .stale_logged_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match *last {
            Some(at) if now.duration_since(at) < STALE_LOG_GAP => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }

    /// Marks a reload as running unless one already is; answers how many had finished before it.
    fn try_begin_reload(&self) -> Option<u64> {
        let mut finished_before = None;
        self.state.send_if_modified(|state| {
            if state.reloading {
                return false;
            }
            state.reloading = true;
            state.attempted_at = Instant::now();
            finished_before = Some(state.finished);
            true
        });
        finished_before
    }

    /// Starts a reload in its own task unless one is running; answers how many had finished
    /// before it.
    fn start_reload(self: &Arc<Self>) -> Option<u64> {
        let finished_before = self.try_begin_reload()?;
        let shared = Arc::clone(self);
        tokio::spawn(async move {
            // Failures are logged by `load_and_commit`; the last good map stays.
            let _ = shared.load_and_commit().await;
        });
        Some(finished_before)
    }

    /// Waits, up to `reload_wait`, until more than `finished_before` reloads have finished.
    async fn wait_for_reload_after(&self, finished_before: u64) {
        let mut changes = self.state.subscribe();
        let finished = changes.wait_for(|state| state.finished > finished_before);
        if tokio::time::timeout(self.settings.reload_wait, finished)
            .await
            .is_err()
        {
            tracing::debug!(
                source = %self.source.describe(),
                "the API key map is still reloading; answering from the current one"
            );
        }
    }

    /// Loads the map and makes it current. The caller has marked a reload as running.
    async fn load_and_commit(&self) -> Result<(), AuthError> {
        let mut in_flight = InFlight {
            state: &self.state,
            done: false,
        };
        let started = Instant::now();
        let loaded = self.source.load().await;
        match &loaded {
            Ok(map) => tracing::debug!(
                source = %self.source.describe(),
                keys = map.len(),
                tenants = map.tenant_count(),
                "reloaded the API key map"
            ),
            Err(error) => tracing::warn!(
                source = %self.source.describe(),
                %error,
                "could not reload the API key map; keeping the last good one"
            ),
        }
        match loaded {
            Ok(map) => {
                in_flight.finish(Some((Arc::new(map), started)));
                Ok(())
            }
            Err(error) => {
                in_flight.finish(None);
                Err(error)
            }
        }
    }
}

/// Ends a reload: on `finish`, or on drop if the load panicked or was cancelled, so a lost
/// reload never blocks every later one.
struct InFlight<'a> {
    state: &'a watch::Sender<State>,
    done: bool,
}

impl InFlight<'_> {
    fn finish(&mut self, loaded: Option<(Arc<KeyMap>, Instant)>) {
        self.done = true;
        self.state.send_modify(|state| {
            if let Some((map, loaded_at)) = loaded {
                state.map = map;
                state.loaded_at = loaded_at;
            }
            state.finished += 1;
            state.reloading = false;
        });
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.state.send_modify(|state| {
                state.finished += 1;
                state.reloading = false;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    const OLD_KEY: &str = "mb_oldOLDoldOLDold";
    const NEW_KEY: &str = "mb_newNEWnewNEWnew";

    /// A source whose text the test changes; counts loads; can be made to fail or to hang.
    struct FakeSource {
        text: Mutex<Result<String, String>>,
        loads: AtomicUsize,
        hang: Mutex<Option<Arc<tokio::sync::Notify>>>,
    }

    impl FakeSource {
        fn new(text: &str) -> Arc<Self> {
            Arc::new(Self {
                text: Mutex::new(Ok(text.to_owned())),
                loads: AtomicUsize::new(0),
                hang: Mutex::new(None),
            })
        }

        fn set(&self, text: Result<&str, &str>) {
            *self.text.lock().expect("lock") = text.map(str::to_owned).map_err(str::to_owned);
        }

        fn loads(&self) -> usize {
            self.loads.load(Ordering::SeqCst)
        }
    }

    #[async_trait::async_trait]
    impl KeyMapSource for FakeSource {
        async fn load(&self) -> Result<KeyMap, AuthError> {
            self.loads.fetch_add(1, Ordering::SeqCst);
            let hang = self.hang.lock().expect("lock").clone();
            if let Some(release) = hang {
                release.notified().await;
            }
            let text = self.text.lock().expect("lock").clone();
            match text {
                Ok(text) => crate::key_map_source::parse(self, &text),
                Err(reason) => Err(AuthError::Unavailable(reason)),
            }
        }

        fn describe(&self) -> String {
            "the test source".to_owned()
        }
    }

    fn key(text: &str) -> ApiKey {
        ApiKey::new(text).expect("key")
    }

    fn acme() -> Option<TenantId> {
        Some(TenantId::parse("acme").expect("tenant"))
    }

    fn settings() -> RefreshSettings {
        RefreshSettings {
            refresh: Duration::from_secs(60),
            min_reload_gap: Duration::from_secs(2),
            reload_wait: Duration::from_secs(2),
            max_staleness: Duration::from_secs(15 * 60),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn rotation_lets_the_new_key_in_and_the_old_key_out_after_refresh() {
        let source = FakeSource::new(&format!(r#"{{"{OLD_KEY}": "acme"}}"#));
        let keys = RefreshingKeys::new(source.clone(), settings())
            .await
            .expect("first load");
        assert_eq!(keys.resolve(&key(OLD_KEY)).await.expect("resolve"), acme());
        assert_eq!(source.loads(), 1, "a fresh map answers from memory");

        // Rotate: both keys for a while, as a rotation does.
        source.set(Ok(&format!(
            r#"{{"{OLD_KEY}": "acme", "{NEW_KEY}": "acme"}}"#
        )));
        // Within the minimum gap an unknown key is refused without asking the source.
        assert_eq!(keys.resolve(&key(NEW_KEY)).await.expect("resolve"), None);
        assert_eq!(source.loads(), 1);
        // After it, the unknown key makes one reload, and works.
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(keys.resolve(&key(NEW_KEY)).await.expect("resolve"), acme());
        assert_eq!(source.loads(), 2);

        // Retire the old key: it keeps working until the map is `refresh` old...
        source.set(Ok(&format!(r#"{{"{NEW_KEY}": "acme"}}"#)));
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(keys.resolve(&key(OLD_KEY)).await.expect("resolve"), acme());
        assert_eq!(source.loads(), 2);
        // ...and the first resolve after that reloads and refuses it.
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(keys.resolve(&key(OLD_KEY)).await.expect("resolve"), None);
        assert_eq!(keys.resolve(&key(NEW_KEY)).await.expect("resolve"), acme());
        assert_eq!(source.loads(), 3);
        assert_eq!(keys.current().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_reload_keeps_the_last_good_map() {
        let source = FakeSource::new(&format!(r#"{{"{OLD_KEY}": "acme"}}"#));
        let keys = RefreshingKeys::new(source.clone(), settings())
            .await
            .expect("first load");

        source.set(Err("the store is down"));
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(keys.resolve(&key(OLD_KEY)).await.expect("resolve"), acme());
        assert_eq!(source.loads(), 2);
        let error = keys.reload().await.expect_err("the store is down");
        assert_eq!(
            error.to_string(),
            "the key store is unavailable: the store is down"
        );

        // An invalid map is a failed reload too.
        source.set(Ok(r#"{"mb_x": "Not A Tenant"}"#));
        let error = keys.reload().await.expect_err("invalid map");
        assert_eq!(
            error.to_string(),
            "the test source does not hold a valid key map: entry 1: the tenant is not a valid \
             tenant name (1 to 64 lower-case letters, digits, '-' or '_')"
        );
        assert_eq!(keys.resolve(&key(OLD_KEY)).await.expect("resolve"), acme());

        // The map is still stale: the next attempt comes after the minimum gap, not at once.
        let loads = source.loads();
        assert_eq!(keys.resolve(&key(OLD_KEY)).await.expect("resolve"), acme());
        assert_eq!(source.loads(), loads);
        source.set(Ok(&format!(r#"{{"{NEW_KEY}": "acme"}}"#)));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(keys.resolve(&key(OLD_KEY)).await.expect("resolve"), None);
        assert_eq!(source.loads(), loads + 1);
    }

    #[tokio::test]
    async fn the_first_load_must_succeed() {
        let source = FakeSource::new("[]");
        let error = RefreshingKeys::new(source, settings())
            .await
            .expect_err("not a map");
        assert_eq!(
            error.to_string(),
            "the test source does not hold a valid key map: it is not a JSON object; expected \
             {\"<api key>\": \"<tenant>\", ...}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_reload_does_not_hold_resolves_and_runs_once() {
        let source = FakeSource::new(&format!(r#"{{"{OLD_KEY}": "acme"}}"#));
        let keys = RefreshingKeys::new(source.clone(), settings())
            .await
            .expect("first load");
        let release = Arc::new(tokio::sync::Notify::new());
        *source.hang.lock().expect("lock") = Some(release.clone());
        source.set(Ok(&format!(r#"{{"{NEW_KEY}": "acme"}}"#)));
        tokio::time::advance(Duration::from_secs(61)).await;

        // The resolve that starts the reload waits `reload_wait`, then answers from the old map.
        let started = Instant::now();
        assert_eq!(keys.resolve(&key(OLD_KEY)).await.expect("resolve"), acme());
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(2) && waited < Duration::from_secs(3),
            "{waited:?}"
        );
        // Others answer at once, and start no second load.
        let started = Instant::now();
        assert_eq!(keys.resolve(&key(OLD_KEY)).await.expect("resolve"), acme());
        assert_eq!(started.elapsed(), Duration::ZERO);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(keys.resolve(&key(OLD_KEY)).await.expect("resolve"), acme());
        assert_eq!(source.loads(), 2);

        // When the load ends, its map is used.
        *source.hang.lock().expect("lock") = None;
        release.notify_one();
        let mut changes = keys.shared.state.subscribe();
        changes
            .wait_for(|state| !state.reloading)
            .await
            .expect("sender alive");
        assert_eq!(keys.resolve(&key(NEW_KEY)).await.expect("resolve"), acme());
        assert_eq!(source.loads(), 2);
        // The retired key, now unknown, asks the source once more before it is refused.
        assert_eq!(keys.resolve(&key(OLD_KEY)).await.expect("resolve"), None);
        assert_eq!(source.loads(), 3);
    }

    /// Log lines written while `logs` is the current thread's subscriber.
    #[derive(Clone, Default)]
    struct Logs(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Logs {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Logs {
        /// Captures this thread's logs (a paused-clock test runs every task on it).
        fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
            let logs = Self::default();
            let writer = logs.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .finish();
            (logs, tracing::subscriber::set_default(subscriber))
        }

        fn errors(&self) -> Vec<String> {
            let text = String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned();
            text.lines()
                .filter(|line| line.contains("ERROR"))
                .map(str::to_owned)
                .collect()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_map_that_cannot_be_reloaded_for_too_long_refuses_every_key() {
        let (logs, _guard) = Logs::capture();
        let source = FakeSource::new(&format!(r#"{{"{OLD_KEY}": "acme"}}"#));
        let keys = RefreshingKeys::new(source.clone(), settings())
            .await
            .expect("first load");
        source.set(Err("the store is down"));

        // Stale but within the maximum: the last good map answers.
        tokio::time::advance(Duration::from_secs(14 * 60)).await;
        assert_eq!(keys.resolve(&key(OLD_KEY)).await.expect("resolve"), acme());
        assert!(logs.errors().is_empty(), "{:?}", logs.errors());

        // Past it: every key is refused as unavailable (503 at the gate, a denial in the
        // authorizer), a known key, a revoked one and an unknown one alike.
        tokio::time::advance(Duration::from_secs(2 * 60)).await;
        for presented in [OLD_KEY, NEW_KEY] {
            let error = keys
                .resolve(&key(presented))
                .await
                .expect_err("too stale to trust");
            assert!(matches!(error, AuthError::Unavailable(_)), "{error:?}");
            let text = error.to_string();
            assert!(text.contains("the test source"), "{text}");
            assert!(text.contains("maximum staleness (900s)"), "{text}");
            assert!(!text.contains(&presented[3..]), "no key in errors: {text}");
        }

        // Loudly, naming the source, but once a minute rather than once per request.
        for _ in 0..20 {
            tokio::time::advance(Duration::from_secs(2)).await;
            assert!(keys.resolve(&key(OLD_KEY)).await.is_err());
        }
        let errors = logs.errors();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("the test source"), "{}", errors[0]);
        assert!(!errors[0].contains(&OLD_KEY[3..]), "{}", errors[0]);
        tokio::time::advance(Duration::from_secs(25)).await;
        assert!(keys.resolve(&key(OLD_KEY)).await.is_err());
        assert_eq!(logs.errors().len(), 2, "{:?}", logs.errors());

        // The source comes back: the next attempt loads it and keys work again.
        source.set(Ok(&format!(r#"{{"{NEW_KEY}": "acme"}}"#)));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(keys.resolve(&key(NEW_KEY)).await.expect("resolve"), acme());
        assert_eq!(keys.resolve(&key(OLD_KEY)).await.expect("resolve"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_maximum_staleness_below_refresh_still_reloads_in_time() {
        let source = FakeSource::new(&format!(r#"{{"{OLD_KEY}": "acme"}}"#));
        let keys = RefreshingKeys::new(
            source.clone(),
            RefreshSettings {
                refresh: Duration::from_secs(3600),
                max_staleness: Duration::from_secs(60),
                ..settings()
            },
        )
        .await
        .expect("first load");
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(keys.resolve(&key(OLD_KEY)).await.expect("resolve"), acme());
        assert_eq!(
            source.loads(),
            2,
            "a map past its maximum staleness is reloaded"
        );
    }

    #[tokio::test]
    async fn debug_shows_no_keys() {
        let source = FakeSource::new(&format!(r#"{{"{OLD_KEY}": "acme"}}"#));
        let keys = RefreshingKeys::new(source, settings())
            .await
            .expect("first load");
        let debug = format!("{keys:?}");
        assert!(debug.contains("KeyMap { keys: 1, tenants: 1 }"), "{debug}");
        assert!(!debug.contains(&OLD_KEY[3..]), "{debug}");
    }
}
