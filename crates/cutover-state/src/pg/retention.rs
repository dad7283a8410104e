//! What keeps the fleet's tables bounded. Instance names change at every restart (the
//! default holds the pid) and each instance writes a row per route and step, so without
//! this `fleet_instances` and `step_evidence` would only grow. The leader, on its lease
//! loop, expires an instance silent for `EXPIRY_LEASES` leases: its report row goes, and
//! its evidence of each route's current step is folded into that step's `DEPARTED` row
//! (summed, so the step keeps every request it counted); evidence rows of steps no longer
//! current are deleted once as old as that. An expired instance that comes back starts
//! over from its next step (`Flushed::Expired`), so nothing is counted twice.

use std::collections::BTreeMap;

use tokio_postgres::Client;

use super::pool::failed;
use super::{UPSERT_EVIDENCE, fence};
use crate::StoreError;
use crate::evidence;
use cutover_live::stats::{StepSnapshot, StepStats};

/// Leases of silence after which an instance is expired: long enough that only a dead
/// (or long cut off) instance is, short enough that a restart loop stays a few rows.
pub const EXPIRY_LEASES: u32 = 6;

/// The `step_evidence.instance` of the row that holds the expired instances' evidence of
/// a step. `~` cannot be in an instance's name (`state.instance`), so no instance's own
/// row is ever taken for it.
pub const DEPARTED: &str = "~departed";

/// What one pass removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Instances expired.
    pub instances: u64,
    /// Their evidence rows of current steps, folded into the steps' `DEPARTED` rows.
    pub folded: u64,
    /// Evidence rows of steps no longer current, deleted.
    pub finished: u64,
}

/// One instance's (or the departed's) evidence row of a current step.
type StepKey = (String, i32, i64);

/// One pass, in one transaction fenced by the leader's `epoch`: instances other than
/// `me` silent for `expiry_secs` expired, their current evidence folded, old rows of
/// finished steps deleted. A row that does not parse is left where it is (the leader's
/// sum refuses the step while it is there, naming it), and the rest goes ahead.
pub async fn prune(client: &mut Client, epoch: i64, me: &str, expiry_secs: f64) -> Result<Pruned, StoreError> {
    let transaction = client.transaction().await.map_err(failed("retention"))?;
    fence(&transaction, epoch).await?;
    let expired: Vec<String> = transaction
        .query(
            "DELETE FROM fleet_instances WHERE last_report < now() - make_interval(secs => $1) AND instance <> $2
             RETURNING instance",
            &[&expiry_secs, &me],
        )
        .await
        .map_err(failed("retention"))?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut pruned = Pruned { instances: expired.len() as u64, ..Pruned::default() };
    if !expired.is_empty() {
        // Locked before the departed rows are read: the sums below are of rows no one
        // else changes meanwhile.
        let rows = transaction
            .query(
                "SELECT e.route, e.step, e.step_started_at, e.instance, e.requests, e.snapshot
                 FROM step_evidence e JOIN rollout_state s
                   ON s.route = e.route AND s.step = e.step AND s.step_started_at = e.step_started_at
                 WHERE e.instance = ANY($1) OR e.instance = $2
                 ORDER BY e.route, e.instance FOR UPDATE OF e",
                &[&expired, &DEPARTED],
            )
            .await
            .map_err(failed("retention"))?;
        let mut steps: BTreeMap<StepKey, Vec<(String, i64, String)>> = BTreeMap::new();
        for row in &rows {
            let key = (row.get(0), row.get(1), row.get(2));
            steps.entry(key).or_default().push((row.get(3), row.get(4), row.get(5)));
        }
        for (key, rows) in steps {
            let expired_rows = rows.iter().filter(|(instance, _, _)| instance != DEPARTED).count();
            if expired_rows == 0 {
                continue;
            }
            match fold(&key, &rows) {
                Ok((requests, snapshot)) => {
                    write_departed(&transaction, &key, &expired, requests, &snapshot).await?;
                    pruned.folded += expired_rows as u64;
                }
                Err(error) => tracing::warn!(route = %key.0, %error, "evidence of an expired instance left in place"),
            }
        }
    }
    pruned.finished = transaction
        .execute(
            "DELETE FROM step_evidence e WHERE e.flushed_at < now() - make_interval(secs => $1) AND NOT EXISTS (
                 SELECT 1 FROM rollout_state s
                 WHERE s.route = e.route AND s.step = e.step AND s.step_started_at = e.step_started_at)",
            &[&expiry_secs],
        )
        .await
        .map_err(failed("retention"))?;
    transaction.commit().await.map_err(failed("retention commit"))?;
    Ok(pruned)
}

/// The sum of a step's rows (the departed's and the expired instances'): its requests and
/// its snapshot's JSON.
fn fold((route, step, _): &StepKey, rows: &[(String, i64, String)]) -> Result<(i64, String), StoreError> {
    let sum = StepStats::default();
    let mut requests = 0;
    for (instance, count, json) in rows {
        let place = || format!("state database, step_evidence row of instance {instance:?} (step {step})");
        sum.restore(&evidence::decode::<StepSnapshot>(place, route, json)?);
        requests += count;
    }
    Ok((requests, evidence::encode(route, "departed instances' evidence", &sum.snapshot())?))
}

/// Replaces the expired instances' rows of one step by the departed row holding their sum.
async fn write_departed(
    transaction: &tokio_postgres::Transaction<'_>,
    (route, step, started_at): &StepKey,
    expired: &[String],
    requests: i64,
    snapshot: &str,
) -> Result<(), StoreError> {
    transaction
        .execute(
            "DELETE FROM step_evidence WHERE route = $1 AND step = $2 AND step_started_at = $3 AND instance = ANY($4)",
            &[route, step, started_at, &expired],
        )
        .await
        .map_err(failed("retention"))?;
    transaction
        .execute(UPSERT_EVIDENCE, &[route, step, started_at, &DEPARTED, &requests, &snapshot])
        .await
        .map_err(failed("retention"))?;
    Ok(())
}
