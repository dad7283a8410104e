//! The accept loop: serves HTTP/1.1 and HTTP/2 (prior knowledge) on a bound listener
//! until a shutdown future resolves, then drains in-flight requests and streams. Every
//! connection has two clocks, to each request head (`head_clock`) and while it has none
//! in flight (`idle`), and a place in the listener's budget.
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
use super::head_clock::{FirstRequest, Seen};
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
/// HTTP/2 preface, a slow request line), and so is an HTTP/1 connection whose next request
/// head has not arrived within `limits.header_timeout` of the end of its last request;
/// one that has had no request in flight for `limits.idle_timeout` is closed gracefully
/// (GOAWAY on HTTP/2).
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
            let clocks = Clocks { activity: &activity, seen: &seen, idle_timeout, header_timeout };
            let driven = drive(connection, |connection| connection.graceful_shutdown(), clocks, stop);
            match seen.within(header_timeout, driven).await.flatten() {
                Some(Err(error)) => tracing::debug!(%error, "connection ended with an error"),
                None => tracing::debug!(?header_timeout, "closed a connection whose request head was late"),
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

/// A connection's clocks, as `drive` keeps them.
struct Clocks<'a> {
    activity: &'a Activity,
    seen: &'a Seen,
    idle_timeout: Duration,
    header_timeout: Duration,
}

/// Runs `connection` to its end, asking it to close gracefully (`close`: HTTP/2 sends
/// GOAWAY, HTTP/1 closes after the response in flight) once the listener stops, once it
/// has had no request in flight for `idle_timeout`, or once an HTTP/1 connection's next
/// request head is late. A late head gets one more `header_timeout` to close, after which
/// the connection is dropped: half a head is no request to finish.
async fn drive<C: Future>(
    connection: C,
    close: impl FnOnce(Pin<&mut C>),
    clocks: Clocks<'_>,
    mut stop: watch::Receiver<()>,
) -> Option<C::Output> {
    tokio::pin!(connection);
    // The watchers are polled only when they fire, not on each of the connection's wakes.
    let (why, late_head) = tokio::select! {
        biased;
        output = &mut connection => return Some(output),
        () = Dormant::new(clocks.activity.idle_for(clocks.idle_timeout)) => ("idle", false),
        () = Dormant::new(clocks.seen.late_head(clocks.activity, clocks.header_timeout)) => ("late request head", true),
        // A closed channel stops the connection as well.
        _ = Dormant::new(stop.changed()) => ("stopping", false),
    };
    tracing::debug!(why, "closing a connection gracefully");
    close(connection.as_mut());
    if late_head {
        return tokio::time::timeout(clocks.header_timeout, connection).await.ok();
    }
    Some(connection.await)
}

/// The connection builder: HTTP/1 without hyper's header timer (the head clock does its
/// work for less, `head_clock`), HTTP/2 with keep-alive pings and a cap on concurrent
/// streams.
fn builder(limits: &ConnectionLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().header_read_timeout(None);
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
