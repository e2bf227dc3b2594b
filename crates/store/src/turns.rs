//! Turns at the connections: whose statement runs next.
//!
//! SQLite has one writer connection and a pool of readers, PostgreSQL one bounded pool for both,
//! and sqlx hands connections out first come, first served. A tenant with many requests in
//! flight (its own rate and in-flight caps allow dozens) would then stand in front of every other
//! tenant — and in front of the ingest worker, which completes every tenant's jobs one write at a
//! time, so one tenant's rewrites would delay everyone's ingest by seconds, and one tenant's
//! searches (each reading its memories a chunk at a time) would take every connection and leave
//! the others waiting for one. A [`FairGate`] in front of each pool gives each lane (a tenant,
//! the ingest worker, upkeep) its turn: one lane holds (or waits first in line for) at most half
//! the pool's connections, so on SQLite's one writer a write waits for at most one of each other
//! lane's, and on a pool of eight a lane with dozens queued leaves four to the others.
//!
//! On PostgreSQL reads and writes share the one pool, so they share one gate: a lane's reads and
//! writes together stay within its half.

use std::sync::Arc;
use std::time::Duration;

use membrain_fair::{FairGate, FairPermit, FairShares};
use membrain_memory::TenantId;
use sqlx::pool::PoolConnection;

use crate::StoreError;
use crate::error::DbContext;

/// Who is waiting for a connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Lane {
    /// A tenant's request: adds, updates, deletes, links, imports, and everything it reads.
    Tenant(TenantId),
    /// The ingest worker: claims, lease renewals, completions. It schedules tenants fairly
    /// itself, so it waits in one lane of its own.
    Ingest,
    /// Everything else: the background embedder, pruning, keys.
    Upkeep,
}

impl Lane {
    pub(crate) fn tenant(tenant: &TenantId) -> Self {
        Self::Tenant(tenant.clone())
    }
}

/// A lane's turn at a pool, held until its statement or transaction ends.
pub(crate) type Turn = FairPermit<Lane>;

/// A reader connection with the lane's turn that let it be taken: both are given back together.
pub(crate) struct Reader {
    connection: PoolConnection<sqlx::Any>,
    _turn: Turn,
}

impl std::ops::Deref for Reader {
    type Target = sqlx::AnyConnection;

    fn deref(&self) -> &Self::Target {
        &self.connection
    }
}

impl std::ops::DerefMut for Reader {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.connection
    }
}

/// The gates in front of the writer and reader pools.
#[derive(Debug, Clone)]
pub(crate) struct Turns {
    write: Arc<FairGate<Lane>>,
    /// On PostgreSQL the same gate as `write` (one pool).
    read: Arc<FairGate<Lane>>,
    /// How long a statement waits for its turn: as long as it would wait for a connection.
    wait: Duration,
}

impl Turns {
    /// `write_connections` and `read_connections`: the pools' sizes; `shared`: whether reads and
    /// writes draw on the same pool (PostgreSQL).
    pub(crate) fn new(
        write_connections: u32,
        read_connections: u32,
        shared: bool,
        wait: Duration,
    ) -> Self {
        let gate = |connections: u32| {
            FairGate::new(FairShares {
                slots: usize::try_from(connections).unwrap_or(1).max(1),
                // Waiting statements are bounded by each tenant's requests in flight, not here:
                // a statement refused half-way through a request would only be retried.
                queued: 1 << 16,
            })
        };
        let write = gate(write_connections);
        let read = if shared {
            Arc::clone(&write)
        } else {
            gate(read_connections)
        };
        Self { write, read, wait }
    }

    /// `lane`'s turn at the writer.
    pub(crate) async fn write(&self, lane: Lane) -> Result<Turn, StoreError> {
        self.turn(&self.write, lane, "waiting for a turn to write")
            .await
    }

    /// A reader connection, once `lane`'s turn has come.
    pub(crate) async fn read(
        &self,
        lane: Lane,
        pool: &sqlx::AnyPool,
    ) -> Result<Reader, StoreError> {
        let turn = self
            .turn(&self.read, lane, "waiting for a turn to read")
            .await?;
        let connection = pool.acquire().await.during("acquiring a connection")?;
        Ok(Reader {
            connection,
            _turn: turn,
        })
    }

    async fn turn(
        &self,
        gate: &Arc<FairGate<Lane>>,
        lane: Lane,
        operation: &'static str,
    ) -> Result<Turn, StoreError> {
        match tokio::time::timeout(self.wait, gate.admit(&lane)).await {
            Ok(Ok(turn)) => Ok(turn),
            // Answered like a pool with no free connection: the database is busy, retry.
            Ok(Err(_)) | Err(_) => Err(StoreError::Database {
                operation,
                source: sqlx::Error::PoolTimedOut,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy() -> Lane {
        Lane::tenant(&TenantId::parse("busy").unwrap_or_else(|e| panic!("{e}")))
    }

    #[tokio::test]
    async fn a_lane_with_writes_queued_does_not_stand_in_front_of_another() {
        // One connection, as on SQLite.
        let turns = Turns::new(1, 4, false, Duration::from_secs(5));
        let held = turns.write(busy()).await.expect("the first write");
        // The busy tenant queues three more writes, then the ingest worker one.
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut waiting = Vec::new();
        for (n, lane) in [(1, busy()), (2, busy()), (3, busy()), (4, Lane::Ingest)] {
            let (turns, order) = (turns.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                let _turn = turns.write(lane).await.expect("a turn");
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

    #[tokio::test]
    async fn on_one_pool_a_lane_holds_half_of_it_for_reads_and_writes_together() {
        // PostgreSQL: one pool of four, shared by reads and writes.
        let turns = Turns::new(4, 4, true, Duration::from_millis(50));
        let first = turns.write(busy()).await.expect("a write");
        let second = turns.read.admit(&busy()).await.expect("a read");
        // The busy lane holds its half: its next statement waits, and gives up at the deadline.
        assert!(
            turns.write(busy()).await.is_err(),
            "a third statement of one lane waits past the deadline"
        );
        // Other lanes still find the other half at once.
        let ingest = turns.write(Lane::Ingest).await.expect("the worker writes");
        let other = Lane::tenant(&TenantId::parse("other").unwrap_or_else(|e| panic!("{e}")));
        let read = turns
            .read
            .admit(&other)
            .await
            .expect("another tenant reads");
        drop((first, second, ingest, read));
        assert!(turns.write(busy()).await.is_ok(), "turns come back");
    }
}
