//! The accept loop: serves HTTP/1.1 and HTTP/2 (prior knowledge) on a bound listener
//! until a shutdown future resolves, then drains in-flight requests and streams. Every
//! connection has two clocks, to its first request (`first_request`) and while it has
//! none in flight (`idle`), and a place in the listener's budget.
//!
//! Taking a bound listener and a shutdown future (as mini-redis does) lets tests bind
//! port 0 and run many servers side by side.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use super::body::BoxError;
use super::dormant::Dormant;
use super::first_request::{FirstRequest, Seen};
use super::idle::{Activity, Counted};
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
/// HTTP/2 preface, a slow request line); one that has had no request in flight for
/// `limits.idle_timeout` is closed gracefully (GOAWAY on HTTP/2).
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
    serve_counting(listener, service, shutdown, limits, &Accepted::default()).await;
}

/// Connections a listener has accepted, for the mock's connection count.
#[derive(Debug, Default)]
pub struct Accepted(AtomicU64);

impl Accepted {
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// [`serve`], counting the connections it accepts into `accepted`.
pub async fn serve_counting<S, B, F>(
    listener: TcpListener,
    service: S,
    shutdown: F,
    limits: ConnectionLimits,
    accepted: &Accepted,
) where
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
    // Every connection holds a receiver; a send asks them all to close gracefully, and
    // the drain is over when the last one is dropped.
    let (stopping, _) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        // The place in the budget is taken before the accept, so a full listener leaves
        // new connections in the backlog instead of holding their descriptors.
        let accepted_now = tokio::select! {
            accepted = accept(&listener, &budget) => accepted,
            () = &mut shutdown => break,
        };
        let Some((stream, permit)) = accepted_now else { continue };
        accepted.0.fetch_add(1, Relaxed);
        let _ = stream.set_nodelay(true);
        let (seen, activity) = (Seen::default(), Activity::default());
        let service = FirstRequest::new(Counted::new(service.clone(), activity.clone()), seen.clone());
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
        let (header_timeout, idle_timeout) = (limits.header_timeout, limits.idle_timeout);
        let stop = stopping.subscribe();
        tokio::spawn(async move {
            let driven = drive(connection, |connection| connection.graceful_shutdown(), &activity, idle_timeout, stop);
            match seen.within(header_timeout, driven).await {
                Some(Err(error)) => tracing::debug!(%error, "connection ended with an error"),
                None => tracing::debug!(?header_timeout, "closed a connection that sent no request in time"),
                Some(Ok(())) => {}
            }
            drop(permit);
        });
    }
    drop(listener);
    stopping.send_replace(());
    if tokio::time::timeout(limits.drain_timeout, stopping.closed()).await.is_err() {
        let drain_timeout = limits.drain_timeout;
        tracing::warn!(?drain_timeout, "drain timed out; closing remaining connections");
    }
}

/// Runs `connection` to its end, asking it to close gracefully (`close`: HTTP/2 sends
/// GOAWAY, HTTP/1 closes after the response in flight) once the listener stops or once
/// it has had no request in flight for `idle_timeout`.
async fn drive<C: Future>(
    connection: C,
    close: impl FnOnce(Pin<&mut C>),
    activity: &Activity,
    idle_timeout: Duration,
    mut stop: watch::Receiver<()>,
) -> C::Output {
    tokio::pin!(connection);
    // The watchers are polled only when they fire, not on each of the connection's wakes.
    let why = tokio::select! {
        biased;
        output = &mut connection => return output,
        () = Dormant::new(activity.idle_for(idle_timeout)) => "idle",
        // A closed channel stops the connection as well.
        _ = Dormant::new(stop.changed()) => "stopping",
    };
    tracing::debug!(why, "closing a connection gracefully");
    close(connection.as_mut());
    connection.await
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
