//! The accept loop: serves HTTP/1.1 and HTTP/2 (prior knowledge) on a bound listener
//! until a shutdown future resolves, then drains in-flight requests and streams. Every
//! connection has a clock (`first_request`) and a place in the listener's budget.
//!
//! Taking a bound listener and a shutdown future (as mini-redis does) lets tests bind
//! port 0 and run many servers side by side.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::body::BoxError;
use super::first_request::{FirstRequest, Seen};
use crate::config::ConnectionLimits;

/// Serves `service` on `listener` until `shutdown` resolves, then stops accepting,
/// lets open requests (streams included) finish, and returns once they have, or
/// after `limits.drain_timeout`.
///
/// At most `limits.max_connections` connections are open at once: the next one is
/// accepted only when one closes, and waits in the kernel's backlog meanwhile. Each
/// listener has a budget of its own, so a saturated proxy port leaves the admin port
/// (and `/healthz`) answering. A connection that has not produced a request within
/// `limits.header_timeout` of its accept is closed, whatever it sent (nothing, half an
/// HTTP/2 preface, a slow request line).
///
/// A service that answers `Err` makes hyper drop the connection without a response,
/// which is how the mock simulates a reset before headers.
pub async fn serve<S, B, F>(listener: TcpListener, service: S, shutdown: F, limits: ConnectionLimits)
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    F: Future<Output = ()>,
{
    let builder = builder(&limits);
    let budget = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // The place in the budget is taken before the accept, so a full listener leaves
        // new connections in the backlog instead of holding their descriptors.
        let accepted = tokio::select! {
            accepted = accept(&listener, &budget) => accepted,
            () = &mut shutdown => break,
        };
        let Some((stream, permit)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let seen = Seen::default();
        let service = FirstRequest::new(service.clone(), seen.clone());
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
        let connection = graceful.watch(connection);
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            match seen.within(header_timeout, connection).await {
                Some(Err(error)) => tracing::debug!(%error, "connection ended with an error"),
                None => tracing::debug!(?header_timeout, "closed a connection that sent no request in time"),
                Some(Ok(())) => {}
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown()).await.is_err() {
        let drain_timeout = limits.drain_timeout;
        tracing::warn!(?drain_timeout, "drain timed out; closing remaining connections");
    }
}

/// The connection builder: HTTP/1 with its header clock (which also bounds the silence
/// between two requests of a kept-alive connection), HTTP/2 with keep-alive pings and a
/// cap on concurrent streams.
fn builder(limits: &ConnectionLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.http2_keepalive)
        .keep_alive_timeout(limits.http2_keepalive)
        .max_concurrent_streams(limits.http2_max_streams);
    builder
}

/// The next connection with its place in the budget; `None` after a failed accept.
async fn accept(
    listener: &TcpListener,
    budget: &Arc<Semaphore>,
) -> Option<(tokio::net::TcpStream, tokio::sync::OwnedSemaphorePermit)> {
    // The semaphore is never closed, so this fails only if it were.
    let permit = budget.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, _peer)) => Some((stream, permit)),
        Err(error) => {
            // EMFILE and friends: back off instead of spinning on the error.
            tracing::warn!(%error, "accept failed");
            tokio::time::sleep(Duration::from_millis(50)).await;
            None
        }
    }
}
