//! What a fleet shows: `GET /admin/fleet` (the leader and its lease, each instance with
//! its last report and the weights it applies, and this instance's own view) and the
//! fleet's gauges on each instance's `/metrics`.

use std::fmt::Write as _;

use cutover_wire::prometheus::LabelValue;
use serde_json::{Value, json};

use super::run::Fleet;
use cutover_state::StoreError;
use cutover_state::pg::FleetRows;

impl Fleet {
    /// The fleet as the database has it, with this instance's own view. Without the
    /// database, this instance's view alone, saying so.
    pub async fn status(&self) -> Value {
        let store = &self.store;
        let lease = store.lease();
        let local = json!({
            "instance": store.instance(),
            "leads": lease.leads(),
            "lease_epoch": lease.epoch(),
            "lease_remaining_seconds": lease.remaining().map(|left| left.as_secs_f64()),
            "database_reachable": store.reachable(),
            // Without the database no decision is taken but a rollback (on local evidence).
            "decisions": decisions(lease.leads(), store.reachable()),
            "flush_lag_seconds": self.flush_lag(),
            "buffered_requests": self.buffered(),
            "schema_version": store.schema_version(),
        });
        match store.fleet_rows().await {
            Ok(FleetRows { lease, instances, tables }) => {
                let leader = lease.map(|row| {
                    json!({
                        "instance": row.get::<_, Option<String>>(0),
                        "epoch": row.get::<_, i64>(1),
                        "expires_in_seconds": row.get::<_, f64>(2),
                    })
                });
                let instances: Vec<Value> = instances
                    .iter()
                    .map(|row| {
                        let applied: Value = serde_json::from_str(row.get::<_, &str>(4)).unwrap_or(Value::Null);
                        json!({
                            "instance": row.get::<_, String>(0),
                            "started_at": row.get::<_, i64>(1),
                            "last_report": row.get::<_, i64>(2),
                            "seconds_since_report": row.get::<_, f64>(3),
                            "applied_weights": applied,
                            "buffered_requests": row.get::<_, i64>(5),
                        })
                    })
                    .collect();
                // How many rows each table holds: bounded by the live instances and the
                // routes (`retention`), which this shows.
                let tables: serde_json::Map<String, Value> =
                    tables.into_iter().map(|(table, rows)| (table.to_owned(), json!(rows))).collect();
                json!({
                    "backend": "postgres",
                    "this": local,
                    "leader": leader,
                    "instances": instances,
                    "tables": tables,
                    "instance_expiry_seconds": store.expiry().as_secs_f64(),
                })
            }
            Err(error) => json!({"backend": "postgres", "this": local, "error": unreachable(&error)}),
        }
    }

    /// `cutover_fleet_*` gauges, appended to the metrics page.
    pub fn render_metrics(&self, page: &mut String) {
        let instance = LabelValue(self.store.instance());
        let gauge = |page: &mut String, name: &str, help: &str, value: f64| {
            let _ =
                writeln!(page, "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{instance=\"{instance}\"}} {value}");
        };
        gauge(
            page,
            "cutover_fleet_leader",
            "1 while this instance leads the fleet (runs the controller).",
            f64::from(u8::from(self.store.lease().leads())),
        );
        gauge(
            page,
            "cutover_fleet_database_up",
            "1 while the last call to the fleet's database got an answer.",
            f64::from(u8::from(self.store.reachable())),
        );
        gauge(
            page,
            "cutover_fleet_flush_lag_seconds",
            "Seconds since the database last took this instance's evidence.",
            self.flush_lag(),
        );
        gauge(
            page,
            "cutover_fleet_buffered_requests",
            "Requests in this instance's evidence that the database does not have yet.",
            self.buffered() as f64,
        );
    }
}

/// What this instance's controller does now.
fn decisions(leads: bool, reachable: bool) -> &'static str {
    match (leads, reachable) {
        (_, false) => {
            "held: the database is unreachable, so no decision is taken but a rollback (applied here, saved when it returns)"
        }
        (true, true) => "leading",
        (false, true) => "following: the leader decides",
    }
}

fn unreachable(error: &StoreError) -> String {
    format!("the fleet's database is not answering ({error}): shown is this instance's own view")
}

/// `GET /admin/fleet` of a gateway on SQLite: one instance, no fleet.
pub fn single() -> Value {
    json!({"backend": "sqlite", "note": "one gateway with its own SQLite state file: no fleet ([state] backend = \"postgres\" makes one)"})
}
