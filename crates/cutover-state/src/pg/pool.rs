//! A small pool of PostgreSQL connections: at most `MAX_IDLE` kept open between calls,
//! a new one opened when none is idle (within `CONNECT_TIMEOUT`), and a connection that
//! failed or timed out is dropped, never handed out again. Every call through `call` is
//! bounded by `CALL_TIMEOUT`: the control path waits for the database that long at most,
//! and the request path never does.

use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use crate::{DatabaseError, StoreError};

/// Connections kept open between calls.
const MAX_IDLE: usize = 4;
/// The longest wait for a new connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest wait for one call (a query or a transaction).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);

pub struct Pool {
    config: tokio_postgres::Config,
    idle: Mutex<Vec<Client>>,
}

impl Pool {
    pub fn new(mut config: tokio_postgres::Config) -> Pool {
        config.connect_timeout(CONNECT_TIMEOUT);
        config.keepalives_idle(Duration::from_secs(10));
        config.application_name("cutover");
        Pool { config, idle: Mutex::new(Vec::new()) }
    }

    /// A connection of its own (for `LISTEN`), driven by `on_message` for what the
    /// server sends unasked.
    pub async fn dedicated(
        &self,
    ) -> Result<
        (Client, tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>),
        StoreError,
    > {
        match tokio::time::timeout(CONNECT_TIMEOUT, self.config.connect(NoTls)).await {
            Ok(Ok(pair)) => Ok(pair),
            Ok(Err(source)) => Err(DatabaseError::Postgres { during: "connect", source }.into()),
            Err(_) => Err(DatabaseError::Unreachable { during: "connect", seconds: CONNECT_TIMEOUT.as_secs() }.into()),
        }
    }

    async fn take(&self) -> Result<Client, StoreError> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
            match idle {
                Some(client) if !client.is_closed() => return Ok(client),
                Some(_) => continue,
                None => break,
            }
        }
        let (client, connection) = self.dedicated().await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "state database connection closed");
            }
        });
        Ok(client)
    }

    fn give_back(&self, client: Client) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE && !client.is_closed() {
            idle.push(client);
        }
    }

    /// Runs `work` on a pooled connection within `CALL_TIMEOUT` (connecting included).
    /// The connection goes back to the pool only if `work` got an answer in time.
    pub async fn call<T, W, F>(&self, during: &'static str, work: W) -> Result<T, StoreError>
    where
        W: FnOnce(Client) -> F,
        F: Future<Output = (Client, Result<T, StoreError>)>,
    {
        let attempt = async {
            let client = self.take().await?;
            let (client, result) = work(client).await;
            // A refusal the server answered (a lost compare-and-set, a superseded epoch)
            // leaves a healthy connection (an open transaction is rolled back on drop).
            let healthy = match &result {
                Ok(_) | Err(StoreError::Stale { .. } | StoreError::Fenced { .. }) => true,
                Err(StoreError::Database(DatabaseError::Postgres { source, .. })) => source.as_db_error().is_some(),
                Err(_) => false,
            };
            if healthy {
                self.give_back(client);
            }
            result
        };
        match tokio::time::timeout(CALL_TIMEOUT, attempt).await {
            Ok(result) => result,
            Err(_) => Err(DatabaseError::Unreachable { during, seconds: CALL_TIMEOUT.as_secs() }.into()),
        }
    }
}

/// `tokio_postgres::Error` as a `StoreError` naming what was being done.
pub fn failed(during: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |source| DatabaseError::Postgres { during, source }.into()
}
