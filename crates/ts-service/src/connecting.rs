//! [`ConnectingStore`]: a store that is still being reached. A server whose time-series database
//! is down (or not created yet) when it starts serves anyway: every time-series call answers
//! [`TsError::Unavailable`] with the reason until the connection, retried in the background,
//! succeeds; then calls go through. Without it a container would exit and be restarted over and
//! over for as long as the database is away.

use std::sync::{Arc, RwLock};

use membrain_memory::TenantId;
use membrain_timeseries::{
    BatchItem, DatabaseName, LatestQuery, LatestResult, RangeQuery, RangeResult, ReadLimits, Scan,
    SeriesPoints, Span, TableDescription, TableMeta, TableRef, TableSummary, TimeSeriesStore,
    TsError, WriteLimits, WriteOutcome,
};

enum State {
    /// Not reached yet: the last attempt's error.
    Waiting(String),
    Ready(Arc<dyn TimeSeriesStore>),
}

pub struct ConnectingStore {
    /// The store as logs show it (never a secret).
    described: String,
    state: RwLock<State>,
}

impl ConnectingStore {
    pub fn new(described: String, first_error: String) -> Self {
        Self {
            described,
            state: RwLock::new(State::Waiting(first_error)),
        }
    }

    /// The store is reached: calls go to it from now on.
    pub fn connected(&self, store: Arc<dyn TimeSeriesStore>) {
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = State::Ready(store);
    }

    /// Another attempt failed: calls report this error.
    pub fn failed(&self, error: String) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if let State::Waiting(last) = &mut *state {
            *last = error;
        }
    }

    fn store(&self) -> Result<Arc<dyn TimeSeriesStore>, TsError> {
        match &*self.state.read().unwrap_or_else(|e| e.into_inner()) {
            State::Ready(store) => Ok(store.clone()),
            State::Waiting(error) => Err(TsError::Unavailable(format!(
                "{} is not reachable yet ({error}); the server keeps trying: retry in a few \
                 seconds",
                self.described
            ))),
        }
    }
}

#[async_trait::async_trait]
impl TimeSeriesStore for ConnectingStore {
    fn describe(&self) -> String {
        self.described.clone()
    }

    async fn list_tables(
        &self,
        tenant: &TenantId,
        database: Option<&DatabaseName>,
    ) -> Result<Vec<TableSummary>, TsError> {
        self.store()?.list_tables(tenant, database).await
    }

    async fn describe_table(
        &self,
        tenant: &TenantId,
        table: &TableRef,
    ) -> Result<TableDescription, TsError> {
        self.store()?.describe_table(tenant, table).await
    }

    async fn table_meta(&self, tenant: &TenantId, table: &TableRef) -> Result<TableMeta, TsError> {
        self.store()?.table_meta(tenant, table).await
    }

    async fn write(
        &self,
        tenant: &TenantId,
        table: &TableRef,
        items: Vec<BatchItem>,
        limits: &WriteLimits,
    ) -> Result<WriteOutcome, TsError> {
        self.store()?.write(tenant, table, items, limits).await
    }

    async fn latest(
        &self,
        tenant: &TenantId,
        query: &LatestQuery,
        limits: &ReadLimits,
    ) -> Result<LatestResult, TsError> {
        self.store()?.latest(tenant, query, limits).await
    }

    async fn range(
        &self,
        tenant: &TenantId,
        query: &RangeQuery,
        limits: &ReadLimits,
    ) -> Result<RangeResult, TsError> {
        self.store()?.range(tenant, query, limits).await
    }

    async fn scan(
        &self,
        tenant: &TenantId,
        scan: &Scan,
        limits: &ReadLimits,
    ) -> Result<Vec<SeriesPoints>, TsError> {
        self.store()?.scan(tenant, scan, limits).await
    }

    async fn set_retention(
        &self,
        tenant: &TenantId,
        table: &TableRef,
        retention: Span,
    ) -> Result<TableDescription, TsError> {
        self.store()?.set_retention(tenant, table, retention).await
    }

    async fn drop_table(&self, tenant: &TenantId, table: &TableRef) -> Result<(), TsError> {
        self.store()?.drop_table(tenant, table).await
    }
}
