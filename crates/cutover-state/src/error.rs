//! What can go wrong keeping a rollout's state: the SQLite file's own problems, the
//! PostgreSQL database's, and the ones both stores share (the evidence, the event log, a
//! fleet writer's refusals), which callers act on without knowing the store.

/// A problem of either store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The SQLite state file's.
    #[error(transparent)]
    File(#[from] FileError),
    /// The fleet's PostgreSQL database's.
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// An event row whose kind this build does not know (written by another version):
    /// the rest of the file stays usable, and the event log says which row it cannot show.
    #[error("state store: event {id} of route {route:?} has a kind this version does not know: {kind:?}")]
    UnknownEventKind { id: i64, route: String, kind: String },
    /// A step's evidence that JSON cannot hold: nothing was written in its place.
    #[error("route {route:?}: its {what} could not be serialised ({source}); nothing was written")]
    EvidenceEncode { route: String, what: &'static str, source: serde_json::Error },
    /// Stored evidence that does not parse; `place` names the store and the row.
    #[error(
        "{place}: the evidence saved for route {route:?} does not parse ({source}). Refused, not read as an empty \
         step (the step would start its evidence over, or be judged without it): restore the row, or delete it \
         to start the step's evidence over on purpose"
    )]
    EvidenceCorrupt { place: String, route: String, source: serde_json::Error },
    // A fleet's writer acts on these two (a lost lease, a lost race), whatever the store.
    /// A controller write by an instance whose lease epoch is no longer the current one.
    #[error("this instance no longer leads the fleet (its lease epoch {epoch} was superseded): write refused")]
    Fenced { epoch: i64 },
    /// A compare-and-set on a route's row that lost: another instance changed it first.
    #[error("route {route:?} was changed by another gateway of the fleet in the meantime")]
    Stale { route: String },
}

/// A problem of the SQLite state file. The first group refuses a start (each names the
/// file and says what to do); the rest are failures of a running store.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(
        "state file {path} is in use by another cutover process{}: one SQLite state file serves one gateway. \
         Stop the other gateway or give this one its own [state] path; gateways that share one rollout \
         (a fleet) need the PostgreSQL backend ([state] backend = \"postgres\")",
        by_pid(*.holder)
    )]
    Locked { path: String, holder: Option<u32> },
    #[error("state file {path} is empty (0 bytes), so it holds no rollout state{REFUSED}")]
    Empty { path: String },
    #[error("state file {path} is not a cutover state file: {reason}{REFUSED}")]
    NotCutover { path: String, reason: String },
    #[error("state file {path} holds values this gateway cannot run with: {}{REFUSED}", .problems.join("; "))]
    Invalid { path: String, problems: Vec<String> },
    #[error("state file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("state file {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("state file: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// SQLite's own errors, where the `?` of a store call meets them.
impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> StoreError {
        StoreError::File(FileError::Sqlite(error))
    }
}

/// A problem of the fleet's PostgreSQL database.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The connection string (in the variable `[state] url_env` names) is not one
    /// PostgreSQL's client reads; the message leaves it out, since it may hold a password.
    #[error("state database: the connection string (the variable [state] url_env names) does not parse")]
    Url,
    /// PostgreSQL refused or failed a call; `during` says which.
    #[error("state database ({during}): {source}")]
    Postgres { during: &'static str, source: tokio_postgres::Error },
    /// PostgreSQL did not answer in time: down, cut off, or overloaded.
    #[error("state database did not answer within {seconds}s ({during})")]
    Unreachable { during: &'static str, seconds: u64 },
    /// The database holds a schema this build cannot run with.
    #[error("state database schema: {0}")]
    Schema(String),
}

/// What a refused state file's message ends with: why not start over, and how to.
const REFUSED: &str = ". Refusing to start rather than begin again at pending 0%; move the file away, \
     or run `cutover serve --reset-state` to move it aside and start over";

fn by_pid(holder: Option<u32>) -> String {
    holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
}
