//! How Membrain's (tenant, database, table) maps onto one Timestream database: a Timestream
//! table named `{tenant}.{database}.{table}`. None of the three names can hold a '.', so the
//! mapping is unambiguous both ways, and a tenant's tables are exactly those with its prefix.

use membrain_memory::TenantId;
use membrain_timeseries::{DatabaseName, TableName, TableRef, TsError};

/// Timestream's longest table name.
const MAX_TIMESTREAM_TABLE_NAME: usize = 256;

/// The Timestream table holding `table` of `tenant`.
pub fn physical_table(tenant: &TenantId, table: &TableRef) -> Result<String, TsError> {
    let name = format!("{}.{}.{}", tenant.as_str(), table.database, table.table);
    if name.len() > MAX_TIMESTREAM_TABLE_NAME {
        return Err(TsError::invalid(
            "table",
            format!(
                "{table} is too long for Timestream: tenant, database and table names together \
                 may have at most {} characters; choose shorter names",
                MAX_TIMESTREAM_TABLE_NAME - 2
            ),
        ));
    }
    Ok(name)
}

/// The prefix every Timestream table of `tenant` has.
pub fn tenant_prefix(tenant: &TenantId) -> String {
    format!("{}.", tenant.as_str())
}

/// The Membrain table behind a Timestream table name, when it is one of `tenant`'s.
pub fn membrain_table(tenant: &TenantId, physical: &str) -> Option<TableRef> {
    let rest = physical.strip_prefix(&tenant_prefix(tenant))?;
    let (database, table) = rest.split_once('.')?;
    Some(TableRef::new(
        DatabaseName::parse(database).ok()?,
        TableName::parse(table).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(raw: &str) -> TenantId {
        TenantId::parse(raw).unwrap()
    }

    #[test]
    fn tables_map_both_ways_and_stay_with_their_tenant() {
        let table = TableRef::parse("transit", "bus_position").unwrap();
        let physical = physical_table(&tenant("alice"), &table).unwrap();
        assert_eq!(physical, "alice.transit.bus_position");
        assert_eq!(membrain_table(&tenant("alice"), &physical), Some(table));
        assert_eq!(membrain_table(&tenant("ali"), &physical), None);
        assert_eq!(membrain_table(&tenant("alice"), "alice.onlyone"), None);
        assert_eq!(membrain_table(&tenant("alice"), "alice.a.b.c"), None);
    }

    #[test]
    fn names_too_long_for_timestream_are_refused() {
        let long = "x".repeat(200);
        let table = TableRef::parse(&long, &long).unwrap();
        let error = physical_table(&tenant("alice"), &table).unwrap_err();
        assert!(error.to_string().contains("at most 254"), "{error}");
    }
}
