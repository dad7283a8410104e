//! The PostgreSQL schema's versions: the SQL files of `migrations/postgres/`, compiled
//! in, each applied once and in order, in one transaction with its row in
//! `cutover_schema_version`, under an advisory lock so that instances starting together
//! migrate once. A database newer than this build is refused rather than misread.

use tokio_postgres::Client;

use crate::{DatabaseError, StoreError};

/// Every migration, in order: (version, SQL). Add a file and a line; never edit one.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_fleet.sql")),
    (2, include_str!("../../migrations/postgres/0002_shadow_share.sql")),
];

/// The schema version this build runs.
pub const CURRENT: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// An arbitrary constant: the advisory lock that serialises migrations.
const MIGRATION_LOCK: i64 = 0x0063_7574_6f76_6572;

/// Brings the schema up to `CURRENT`; answers the versions it applied.
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>, StoreError> {
    let failed = |during| move |source| StoreError::from(DatabaseError::Postgres { during, source });
    let transaction = client.transaction().await.map_err(failed("migration"))?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(failed("migration lock"))?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS cutover_schema_version (
                 version INTEGER PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .map_err(failed("schema version table"))?;
    let row = transaction
        .query_one("SELECT COALESCE(MAX(version), 0) FROM cutover_schema_version", &[])
        .await
        .map_err(failed("schema version"))?;
    let found: i32 = row.get(0);
    if found > CURRENT {
        return Err(DatabaseError::Schema(format!(
            "the database is at schema version {found}, newer than this build's {CURRENT}: upgrade cutover"
        ))
        .into());
    }
    let mut applied = Vec::new();
    for (version, sql) in MIGRATIONS.iter().filter(|(version, _)| *version > found) {
        transaction.batch_execute(sql).await.map_err(failed("migration"))?;
        transaction
            .execute("INSERT INTO cutover_schema_version (version) VALUES ($1)", &[version])
            .await
            .map_err(failed("migration"))?;
        applied.push(*version);
    }
    transaction.commit().await.map_err(failed("migration commit"))?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_rise_by_one_from_one() {
        for (index, (version, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, index as i32 + 1);
        }
    }
}
