//! Fair shares of a bounded resource per tenant: the one place Membrain decides who may run
//! heavy work now (time-series reads in `membrain-ts-service`, CPU-heavy request work in
//! `membrain-api`).
//!
//! A [`FairGate`] lets at most `slots` calls run at once, and one tenant hold at most half of
//! them (at least one), so a tenant sending heavy work always leaves slots for the others. Calls
//! beyond that wait in a bounded queue — again at most half of it per tenant — and past it are
//! refused at once ([`Refusal`]), so a flood is turned away cheaply instead of piling up until
//! every call times out.
//!
//! A call takes its tenant's permit before a global one: a tenant over its share waits without
//! holding a slot another tenant could use. Tokio's semaphores are fair (first come, first
//! served), so waiting calls are admitted in order.
//!
//! Admitted work runs through the gate's [`CpuUse`] ([`FairGate::run_blocking`]), which counts
//! each tenant's CPU time and runs a tenant that used more than its part lately at low OS
//! priority: on few cores, bounding how many calls run is not enough (see [`cpu`]).
//!
//! The gate is keyed by tenant by default; any key that names who waits works the same (the SQL
//! store's writer is shared by tenants and the ingest worker, each a lane of its own).
//!
//! Architecture invariant: knows tenants and semaphores only — no HTTP, storage or error types
//! of the callers, which turn a [`Refusal`] into their own answer.

pub mod cpu;
mod holders;

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use membrain_memory::TenantId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use cpu::{CpuUse, Priority, WorkFailed, run_at, run_in_background};
pub use holders::{HeldKeys, Hold, Holders};

/// How much may run and wait at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FairShares {
    /// Calls running at once, over all tenants.
    pub slots: usize,
    /// Calls waiting for a slot, over all tenants; more are refused.
    pub queued: usize,
}

impl FairShares {
    /// Slots one tenant may hold: half, so another tenant always finds one (one at least).
    pub fn per_tenant_slots(&self) -> usize {
        (self.slots / 2).max(1)
    }

    /// Places in the queue one tenant may take.
    pub fn per_tenant_queued(&self) -> usize {
        (self.queued / 2).max(1)
    }
}

/// Why a call was not admitted; the caller words the answer (503 busy, `TsError::Busy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The tenant's part of the queue is full: `waiting` of its calls wait, and it runs at most
    /// `per_tenant_slots` at once.
    TenantQueueFull {
        waiting: usize,
        per_tenant_slots: usize,
    },
    /// The whole queue is full: `running` calls run and `waiting` wait.
    QueueFull { running: usize, waiting: usize },
    /// The gate was closed (never, in practice: its semaphores are not closed).
    Closed,
}

/// A tenant's calls: its slots, and how many of its calls hold or wait for one.
struct TenantCalls {
    slots: Arc<Semaphore>,
    /// Calls of this tenant between admission and the end of their work.
    calls: usize,
    /// Of those, the ones waiting.
    queued: usize,
}

struct Counts<K> {
    tenants: HashMap<K, TenantCalls>,
    queued: usize,
}

/// Who a gate's calls are counted for: a tenant, or any lane a caller names.
pub trait Lane: Hash + Eq + Clone + Send + Sync + 'static {}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> Lane for K {}

/// See the crate docs. Shared by its users through an `Arc`.
pub struct FairGate<K: Lane = TenantId> {
    shares: FairShares,
    slots: Arc<Semaphore>,
    counts: Mutex<Counts<K>>,
    cpu: CpuUse<K>,
}

impl<K: Lane> std::fmt::Debug for FairGate<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FairGate")
            .field("shares", &self.shares)
            .finish_non_exhaustive()
    }
}

/// A call's slot (its tenant's and the gate's), given back when dropped.
pub struct FairPermit<K: Lane = TenantId> {
    _slot: OwnedSemaphorePermit,
    _tenant_slot: OwnedSemaphorePermit,
    _call: Call<K>,
}

impl<K: Lane> std::fmt::Debug for FairPermit<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FairPermit").finish_non_exhaustive()
    }
}

/// A call counted against its tenant from admission until dropped.
struct Call<K: Lane> {
    gate: Arc<FairGate<K>>,
    tenant: K,
}

impl<K: Lane> Drop for Call<K> {
    fn drop(&mut self) {
        let mut counts = self.gate.counts();
        if let Some(calls) = counts.tenants.get_mut(&self.tenant) {
            calls.calls -= 1;
            if calls.calls == 0 {
                counts.tenants.remove(&self.tenant);
            }
        }
    }
}

/// A place in the queue, given back when the wait ends (admitted, or abandoned at a deadline).
struct Queued<'a, K: Lane> {
    gate: &'a FairGate<K>,
    tenant: &'a K,
}

impl<K: Lane> Drop for Queued<'_, K> {
    fn drop(&mut self) {
        let mut counts = self.gate.counts();
        counts.queued -= 1;
        if let Some(calls) = counts.tenants.get_mut(self.tenant) {
            calls.queued -= 1;
        }
    }
}

impl<K: Lane> FairGate<K> {
    /// Shares of zero are taken as one: a gate that admits nothing would hang every call.
    pub fn new(shares: FairShares) -> Arc<Self> {
        let shares = FairShares {
            slots: shares.slots.max(1),
            queued: shares.queued.max(1),
        };
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(shares.slots)),
            shares,
            counts: Mutex::new(Counts {
                tenants: HashMap::new(),
                queued: 0,
            }),
            cpu: CpuUse::new(shares.slots),
        })
    }

    pub fn shares(&self) -> &FairShares {
        &self.shares
    }

    fn counts(&self) -> MutexGuard<'_, Counts<K>> {
        // Every change under this lock is a counter update that cannot panic half-way.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a slot for `tenant`, or is refused at once when the queue (or the tenant's
    /// part of it) is full. Dropping the future gives back its place in the queue.
    pub async fn admit(self: &Arc<Self>, tenant: &K) -> Result<FairPermit<K>, Refusal> {
        let (call, tenant_slots, held) = {
            let mut guard = self.counts();
            let counts = &mut *guard;
            let per_tenant = self.shares.per_tenant_slots();
            let calls = counts
                .tenants
                .entry(tenant.clone())
                .or_insert_with(|| TenantCalls {
                    slots: Arc::new(Semaphore::new(per_tenant)),
                    calls: 0,
                    queued: 0,
                });
            calls.calls += 1;
            // Counted from here: dropping `call` undoes it, on every path out.
            let call = Call {
                gate: Arc::clone(self),
                tenant: tenant.clone(),
            };
            let tenant_slots = Arc::clone(&calls.slots);
            // A slot free on both counts: no queue (a freed permit goes to a waiter first, so
            // this never overtakes one).
            let held = match Arc::clone(&tenant_slots).try_acquire_owned() {
                Ok(tenant_slot) => match Arc::clone(&self.slots).try_acquire_owned() {
                    Ok(slot) => {
                        drop(guard);
                        return Ok(FairPermit {
                            _slot: slot,
                            _tenant_slot: tenant_slot,
                            _call: call,
                        });
                    }
                    Err(_) => Some(tenant_slot),
                },
                Err(_) => None,
            };
            if calls.queued >= self.shares.per_tenant_queued() {
                let waiting = calls.queued;
                drop(guard);
                return Err(Refusal::TenantQueueFull {
                    waiting,
                    per_tenant_slots: per_tenant,
                });
            }
            if counts.queued >= self.shares.queued {
                let waiting = counts.queued;
                drop(guard);
                return Err(Refusal::QueueFull {
                    running: self.shares.slots,
                    waiting,
                });
            }
            calls.queued += 1;
            counts.queued += 1;
            (call, tenant_slots, held)
        };
        let _queued = Queued { gate: self, tenant };
        let tenant_slot = match held {
            Some(tenant_slot) => tenant_slot,
            None => tenant_slots
                .acquire_owned()
                .await
                .map_err(|_| Refusal::Closed)?,
        };
        let slot = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .map_err(|_| Refusal::Closed)?;
        Ok(FairPermit {
            _slot: slot,
            _tenant_slot: tenant_slot,
            _call: call,
        })
    }

    /// Runs admitted `work` for `tenant` on a blocking thread, at low OS priority when the
    /// tenant used more than its part of the CPU lately (see [`cpu`]), and counts its CPU time.
    /// Work admitted elsewhere for a tenant (ingest's embeddings) runs through the same
    /// [`CpuUse`], so the count covers all of its heavy work.
    pub async fn run_blocking<T, F>(&self, tenant: &K, work: F) -> Result<T, WorkFailed>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.cpu.run(tenant, work).await
    }

    /// The CPU time each tenant used lately, and where its work runs.
    pub fn cpu(&self) -> &CpuUse<K> {
        &self.cpu
    }

    /// Calls running or waiting now (for tests and logs).
    pub fn in_flight(&self) -> usize {
        self.counts()
            .tenants
            .values()
            .map(|calls| calls.calls)
            .sum()
    }

    /// Calls of `tenant` waiting now.
    pub fn waiting(&self, tenant: &K) -> usize {
        self.counts()
            .tenants
            .get(tenant)
            .map_or(0, |calls| calls.queued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn one_tenant_cannot_take_every_slot_and_its_queue_is_bounded() {
        let gate = FairGate::new(FairShares {
            slots: 2,
            queued: 2,
        });
        let (a, b) = (tenant("a"), tenant("b"));
        let first = gate.admit(&a).await.expect("a's first call runs");
        // a's second call waits (its share is one slot); its third finds a's queue full.
        let waiting = tokio::spawn({
            let (gate, a) = (gate.clone(), a.clone());
            async move { gate.admit(&a).await.map(drop) }
        });
        while gate.waiting(&a) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            gate.admit(&a).await.map(drop),
            Err(Refusal::TenantQueueFull {
                waiting: 1,
                per_tenant_slots: 1
            })
        );
        // b still finds the other slot while a holds its share.
        let b_runs = gate.admit(&b).await.expect("b runs beside a");
        drop(b_runs);
        drop(first);
        assert_eq!(waiting.await.expect("joined"), Ok(()));
        assert_eq!(gate.in_flight(), 0, "every call is forgotten once done");
    }

    #[tokio::test]
    async fn the_whole_queue_is_bounded_too() {
        let gate = FairGate::new(FairShares {
            slots: 1,
            queued: 1,
        });
        let (a, b, c) = (tenant("a"), tenant("b"), tenant("c"));
        let held = gate.admit(&a).await.expect("a runs");
        let queued = tokio::spawn({
            let (gate, b) = (gate.clone(), b.clone());
            async move { gate.admit(&b).await.map(drop) }
        });
        while gate.waiting(&b) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            gate.admit(&c).await.map(drop),
            Err(Refusal::QueueFull {
                running: 1,
                waiting: 1
            })
        );
        drop(held);
        assert_eq!(queued.await.expect("joined"), Ok(()));
    }

    #[tokio::test]
    async fn an_abandoned_wait_gives_its_place_back() {
        let gate = FairGate::new(FairShares {
            slots: 1,
            queued: 2,
        });
        let a = tenant("a");
        let held = gate.admit(&a).await.expect("runs");
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(20), gate.admit(&a)).await;
        assert!(waited.is_err(), "no slot within the deadline");
        assert_eq!(gate.waiting(&a), 0);
        drop(held);
        assert!(gate.admit(&a).await.is_ok());
    }
}
