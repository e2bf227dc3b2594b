//! [`ReadGate`]: who may read now. At most `max_concurrent_reads` reads run at once, and one
//! tenant holds at most half of them (at least one), so a tenant sending heavy queries always
//! leaves slots for the others. Calls beyond that wait in a bounded queue — again at most half
//! of it per tenant — and past it are answered [`TsError::Busy`] at once, so a flood is turned
//! away cheaply instead of piling up until every call times out.
//!
//! A call takes its tenant's permit before a global one: a tenant over its share waits without
//! holding a slot another tenant could use. Tokio's semaphores are fair (first come, first
//! served), so waiting calls are admitted in order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use membrain_memory::TenantId;
use membrain_timeseries::TsError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
    /// Slots one tenant may hold: half, so another tenant always finds one (one at least).
    pub fn per_tenant_reads(&self) -> usize {
        (self.max_concurrent_reads / 2).max(1)
    }

    /// Places in the queue one tenant may take.
    pub fn per_tenant_queued(&self) -> usize {
        (self.max_queued_reads / 2).max(1)
    }
}

/// A tenant's reads in flight: its slots, and how many of its calls hold or wait for one.
struct TenantReads {
    slots: Arc<Semaphore>,
    /// Calls of this tenant between admission and the end of their read.
    calls: usize,
    /// Of those, the ones waiting.
    queued: usize,
}

struct Counts {
    tenants: HashMap<TenantId, TenantReads>,
    queued: usize,
}

/// See the module docs. Shared by every clone of a service.
pub struct ReadGate {
    settings: ReadSettings,
    slots: Arc<Semaphore>,
    counts: Mutex<Counts>,
}

impl std::fmt::Debug for ReadGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadGate")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A read's slot (its tenant's and the server's), given back when dropped.
#[derive(Debug)]
pub struct ReadPermit {
    _slot: OwnedSemaphorePermit,
    _tenant_slot: OwnedSemaphorePermit,
    _call: Call,
}

/// A call counted against its tenant from admission until dropped.
#[derive(Debug)]
struct Call {
    gate: Arc<ReadGate>,
    tenant: TenantId,
}

impl Drop for Call {
    fn drop(&mut self) {
        let mut counts = self.gate.counts();
        if let Some(reads) = counts.tenants.get_mut(&self.tenant) {
            reads.calls -= 1;
            if reads.calls == 0 {
                counts.tenants.remove(&self.tenant);
            }
        }
    }
}

/// A place in the queue, given back when the wait ends (admitted, or abandoned at a deadline).
struct Queued<'a> {
    gate: &'a ReadGate,
    tenant: &'a TenantId,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        let mut counts = self.gate.counts();
        counts.queued -= 1;
        if let Some(reads) = counts.tenants.get_mut(self.tenant) {
            reads.queued -= 1;
        }
    }
}

impl ReadGate {
    /// Settings of zero are taken as one: a gate that admits nothing would hang every read.
    pub fn new(settings: ReadSettings) -> Arc<Self> {
        let settings = ReadSettings {
            max_concurrent_reads: settings.max_concurrent_reads.max(1),
            max_queued_reads: settings.max_queued_reads.max(1),
            ..settings
        };
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(settings.max_concurrent_reads)),
            settings,
            counts: Mutex::new(Counts {
                tenants: HashMap::new(),
                queued: 0,
            }),
        })
    }

    pub fn settings(&self) -> &ReadSettings {
        &self.settings
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        // Every change under this lock is a counter update that cannot panic half-way.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a slot for `tenant`, or answers busy at once when the queue (or the tenant's
    /// part of it) is full. Dropping the future gives back its place in the queue.
    pub async fn admit(self: &Arc<Self>, tenant: &TenantId) -> Result<ReadPermit, TsError> {
        let (call, tenant_slots, held) = {
            let mut guard = self.counts();
            let counts = &mut *guard;
            let per_tenant = self.settings.per_tenant_reads();
            let reads = counts
                .tenants
                .entry(tenant.clone())
                .or_insert_with(|| TenantReads {
                    slots: Arc::new(Semaphore::new(per_tenant)),
                    calls: 0,
                    queued: 0,
                });
            reads.calls += 1;
            // Counted from here: dropping `call` undoes it, on every path out.
            let call = Call {
                gate: Arc::clone(self),
                tenant: tenant.clone(),
            };
            let tenant_slots = Arc::clone(&reads.slots);
            // A slot free on both counts: no queue (a freed permit goes to a waiter first, so
            // this never overtakes one).
            let held = match Arc::clone(&tenant_slots).try_acquire_owned() {
                Ok(tenant_slot) => match Arc::clone(&self.slots).try_acquire_owned() {
                    Ok(slot) => {
                        drop(guard);
                        return Ok(ReadPermit {
                            _slot: slot,
                            _tenant_slot: tenant_slot,
                            _call: call,
                        });
                    }
                    Err(_) => Some(tenant_slot),
                },
                Err(_) => None,
            };
            if reads.queued >= self.settings.per_tenant_queued() {
                let waiting = reads.queued;
                drop(guard);
                return Err(TsError::Busy(format!(
                    "your tenant already has {waiting} time-series reads waiting (and runs at most \
                     {per_tenant} at once), its share of this server: retry when one has finished, \
                     in a second or so"
                )));
            }
            if counts.queued >= self.settings.max_queued_reads {
                let queued = counts.queued;
                drop(guard);
                return Err(TsError::Busy(format!(
                    "the server is busy: {} time-series reads are running and {queued} are \
                     waiting, as many as it queues: retry in a second",
                    self.settings.max_concurrent_reads
                )));
            }
            reads.queued += 1;
            counts.queued += 1;
            (call, tenant_slots, held)
        };
        let _queued = Queued { gate: self, tenant };
        let tenant_slot = match held {
            Some(tenant_slot) => tenant_slot,
            None => tenant_slots.acquire_owned().await.map_err(closed)?,
        };
        let slot = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .map_err(closed)?;
        Ok(ReadPermit {
            _slot: slot,
            _tenant_slot: tenant_slot,
            _call: call,
        })
    }

    /// Reads running or waiting now (for tests and logs).
    pub fn in_flight(&self) -> usize {
        self.counts()
            .tenants
            .values()
            .map(|reads| reads.calls)
            .sum()
    }
}

fn closed(_: tokio::sync::AcquireError) -> TsError {
    // The semaphores are never closed; answer as a failure of ours if they ever are.
    TsError::Internal("the read gate is closed".into())
}
