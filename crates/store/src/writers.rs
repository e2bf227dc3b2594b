//! Turns at the writer: who may write next.
//!
//! SQLite has one writer connection and PostgreSQL a bounded pool, and both hand connections out
//! first come, first served. A tenant with many writes in flight (its own rate and in-flight
//! caps allow dozens) would then stand in front of every other tenant's write — and in front of
//! the ingest worker, which completes every tenant's jobs one write at a time, so one tenant's
//! rewrites would delay everyone's ingest by seconds. A [`FairGate`] in front of the writer
//! gives each lane (a tenant, the ingest worker, upkeep) its turn: a write waits for at most one
//! write of each other lane that is waiting too, and one lane holds at most half the
//! connections.

use std::sync::Arc;
use std::time::Duration;

use membrain_fair::{FairGate, FairPermit, FairShares};
use membrain_memory::TenantId;

use crate::StoreError;

/// Who is waiting to write.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Writer {
    /// A tenant's request: adds, updates, deletes, links, imports.
    Tenant(TenantId),
    /// The ingest worker: claims, lease renewals, completions. It schedules tenants fairly
    /// itself, so it waits in one lane of its own.
    Ingest,
    /// Everything else: the background embedder, pruning, keys.
    Upkeep,
}

impl Writer {
    pub(crate) fn tenant(tenant: &TenantId) -> Self {
        Self::Tenant(tenant.clone())
    }
}

/// A lane's turn at the writer, held until the write's transaction ends.
pub(crate) type WriteTurn = FairPermit<Writer>;

#[derive(Debug, Clone)]
pub(crate) struct Writers {
    gate: Arc<FairGate<Writer>>,
    /// How long a write waits for its turn: as long as it would wait for a connection.
    wait: Duration,
}

impl Writers {
    /// `connections`: the writer pool's size.
    pub(crate) fn new(connections: u32, wait: Duration) -> Self {
        let slots = usize::try_from(connections).unwrap_or(1).max(1);
        Self {
            gate: FairGate::new(FairShares {
                slots,
                // Waiting writes are bounded by each tenant's requests in flight, not here: a
                // write refused half-way through a request would only be retried.
                queued: 1 << 16,
            }),
            wait,
        }
    }

    pub(crate) async fn turn(&self, writer: Writer) -> Result<WriteTurn, StoreError> {
        match tokio::time::timeout(self.wait, self.gate.admit(&writer)).await {
            Ok(Ok(turn)) => Ok(turn),
            // Answered like a pool with no free connection: the database is busy, retry.
            Ok(Err(_)) | Err(_) => Err(StoreError::Database {
                operation: "waiting for a turn to write",
                source: sqlx::Error::PoolTimedOut,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lane_with_writes_queued_does_not_stand_in_front_of_another() {
        // One connection, as on SQLite.
        let writers = Writers::new(1, Duration::from_secs(5));
        let busy = Writer::tenant(&TenantId::parse("busy").unwrap_or_else(|e| panic!("{e}")));
        let held = writers.turn(busy.clone()).await.expect("the first write");
        // The busy tenant queues three more writes, then the ingest worker one.
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut waiting = Vec::new();
        for (n, writer) in [
            (1, busy.clone()),
            (2, busy.clone()),
            (3, busy.clone()),
            (4, Writer::Ingest),
        ] {
            let (writers, order) = (writers.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                let _turn = writers.turn(writer).await.expect("a turn");
                order.lock().unwrap_or_else(|e| e.into_inner()).push(n);
            }));
            // Each in line before the next.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(held);
        for task in waiting {
            task.await.expect("joined");
        }
        let order = order.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let worker = order
            .iter()
            .position(|&n| n == 4)
            .expect("the worker wrote");
        assert!(
            worker <= 1,
            "the worker writes after at most one of the busy tenant's writes, not after all \
             three: {order:?}"
        );
    }
}
