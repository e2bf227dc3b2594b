//! [`ReadGate`]: who may read now — a [`FairGate`] over the read slots (at most
//! `max_concurrent_reads` at once, half of them at most for one tenant, a bounded queue), whose
//! refusals are answered [`TsError::Busy`] with what the caller can do.

use std::sync::Arc;
use std::time::Duration;

use membrain_fair::{FairGate, FairPermit, FairShares, Refusal};
use membrain_memory::TenantId;
use membrain_timeseries::TsError;

/// How reads are admitted and how long each may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSettings {
    /// Reads running at once, over all tenants.
    pub max_concurrent_reads: usize,
    /// Reads waiting for a slot, over all tenants; more are answered busy.
    pub max_queued_reads: usize,
    /// How long one read may take, waiting included.
    pub read_deadline: Duration,
}

/// Calls waiting for a slot, by default: a few seconds' worth of typical reads.
pub const DEFAULT_MAX_QUEUED_READS: usize = 64;

/// How long a read may take, by default: well inside a load balancer's 60 s idle timeout, and
/// far longer than any read an agent should need.
pub const DEFAULT_READ_DEADLINE: Duration = Duration::from_secs(10);

impl Default for ReadSettings {
    fn default() -> Self {
        Self {
            max_concurrent_reads: default_concurrent_reads(),
            max_queued_reads: DEFAULT_MAX_QUEUED_READS,
            read_deadline: DEFAULT_READ_DEADLINE,
        }
    }
}

/// One read per CPU: reads are CPU work (folding, filtering) or waits on a store that has its
/// own pool; more at once would only share the same cores.
pub fn default_concurrent_reads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

impl ReadSettings {
    fn shares(&self) -> FairShares {
        FairShares {
            slots: self.max_concurrent_reads,
            queued: self.max_queued_reads,
        }
    }

    /// Slots one tenant may hold: half, so another tenant always finds one (one at least).
    pub fn per_tenant_reads(&self) -> usize {
        self.shares().per_tenant_slots()
    }

    /// Places in the queue one tenant may take.
    pub fn per_tenant_queued(&self) -> usize {
        self.shares().per_tenant_queued()
    }
}

/// See the module docs. Shared by every clone of a service.
#[derive(Debug)]
pub struct ReadGate {
    settings: ReadSettings,
    gate: Arc<FairGate>,
}

/// A read's slot (its tenant's and the server's), given back when dropped.
pub type ReadPermit = FairPermit;

impl ReadGate {
    /// Settings of zero are taken as one: a gate that admits nothing would hang every read.
    pub fn new(settings: ReadSettings) -> Arc<Self> {
        let settings = ReadSettings {
            max_concurrent_reads: settings.max_concurrent_reads.max(1),
            max_queued_reads: settings.max_queued_reads.max(1),
            ..settings
        };
        Arc::new(Self {
            gate: FairGate::new(settings.shares()),
            settings,
        })
    }

    /// A gate that admits reads through `gate`, shared with other heavy work of the process
    /// (the API's CPU pool), so a tenant's share counts its reads and that work together. The
    /// shared gate's slots and queue apply; `settings` gives the read deadline.
    pub fn sharing(settings: ReadSettings, gate: Arc<FairGate>) -> Arc<Self> {
        Arc::new(Self { settings, gate })
    }

    pub fn settings(&self) -> &ReadSettings {
        &self.settings
    }

    /// Waits for a slot for `tenant`, or answers busy at once when the queue (or the tenant's
    /// part of it) is full. Dropping the future gives back its place in the queue.
    pub async fn admit(&self, tenant: &TenantId) -> Result<ReadPermit, TsError> {
        self.gate
            .admit(tenant)
            .await
            .map_err(|refusal| match refusal {
                Refusal::TenantQueueFull {
                    waiting,
                    per_tenant_slots,
                } => TsError::Busy(format!(
                    "your tenant already has {waiting} time-series reads waiting (and runs at most \
                 {per_tenant_slots} at once), its share of this server: retry when one has \
                 finished, in a second or so"
                )),
                Refusal::QueueFull { running, waiting } => TsError::Busy(format!(
                    "the server is busy: {running} time-series reads are running and {waiting} are \
                 waiting, as many as it queues: retry in a second"
                )),
                // The semaphores are never closed; answer as a failure of ours if they ever are.
                Refusal::Closed => TsError::Internal("the read gate is closed".into()),
            })
    }

    /// Whether `tenant` used more than its part of the CPU lately, so its reads' scans run at
    /// low OS priority (see `membrain_fair::cpu`).
    pub fn is_heavy(&self, tenant: &TenantId) -> bool {
        self.gate.cpu().priority(tenant) == membrain_fair::Priority::Low
    }

    /// Runs an admitted read's CPU work on a blocking thread, counted against `tenant`'s CPU
    /// share (see `membrain_fair::cpu`). A panic there is a bug: answered as internal.
    pub async fn run_blocking<T: Send + 'static>(
        &self,
        tenant: &TenantId,
        work: impl FnOnce() -> Result<T, TsError> + Send + 'static,
    ) -> Result<T, TsError> {
        self.gate
            .run_blocking(tenant, work)
            .await
            .map_err(|error| TsError::Internal(format!("a time-series task failed: {error}")))?
    }

    /// Reads running or waiting now (for tests and logs).
    pub fn in_flight(&self) -> usize {
        self.gate.in_flight()
    }
}
