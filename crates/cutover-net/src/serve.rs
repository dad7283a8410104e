//! The accept loop: serves HTTP/1.1 and HTTP/2 (prior knowledge) on a bound listener
//! until a shutdown future resolves, then drains in-flight requests and streams. Every
//! connection has two clocks, to each request head (`head_clock`) and while it has none
//! in flight (`idle`), a place in the listener's budget and an entry among its open
//! connections (`open`).
//!
//! Taking a bound listener and a shutdown future (as mini-redis does) lets tests bind
//! port 0 and run many servers side by side.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use cutover_config::{ConnectionLimits, WhenFull};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::body::BoxError;
use super::dormant::Dormant;
use super::head_clock::{FirstRequest, Seen};
use super::idle::{Activity, Counted};
use super::open::{Membership, OpenConnections};

/// Serves `service` on `listener` until `shutdown` resolves, then stops accepting,
/// lets open requests (streams included) finish, and returns once they have; at
/// `limits.drain_timeout` it closes the connections still open and returns.
///
/// At most `limits.max_connections` connections are open at once. With `WhenFull::Wait`
/// the next one is accepted only when one closes, and waits in the kernel's backlog
/// meanwhile; with `WhenFull::CloseLongestIdle` it is accepted at once and the connection
/// that has had no request in flight for longest is closed to make room (it waits only
/// while every connection has one). Each listener has a budget of its own, so a saturated
/// proxy port leaves the admin port (and `/healthz`) answering. A connection that has not
/// produced a request within `limits.header_timeout` of its accept is closed, whatever it
/// sent (nothing, half an HTTP/2 preface, a slow request line), and so is an HTTP/1
/// connection whose next request head has not arrived within `limits.header_timeout` of
/// the end of its last request;
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
    let open = Arc::new(OpenConnections::default());
    // Every connection holds a receiver; `Stopping` asks them all to close gracefully,
    // `Cut` drops them, and the drain is over when the last one is dropped.
    let (stopping, _) = watch::channel(Phase::Serving);
    tokio::pin!(shutdown);
    loop {
        let accepted_now = tokio::select! {
            accepted = admit(&listener, &budget, &open, limits.when_full) => accepted,
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
        let membership = open.enter(activity.clone());
        tokio::spawn(async move {
            let clocks = Clocks { activity: &activity, seen: &seen, idle_timeout, header_timeout };
            let signals = Signals { stop, membership: &membership };
            let driven = drive(connection, |connection| connection.graceful_shutdown(), clocks, signals);
            match seen.within(header_timeout, driven).await {
                Some(Some(Err(error))) => tracing::debug!(%error, "connection ended with an error"),
                None => tracing::debug!(?header_timeout, "closed a connection without a request in time"),
                // `drive` dropped it and said why, or it ended well.
                Some(None | Some(Ok(()))) => {}
            }
            drop(permit);
        });
    }
    drop(listener);
    stopping.send_replace(Phase::Stopping);
    if tokio::time::timeout(limits.drain_timeout, stopping.closed()).await.is_err() {
        let (drain_timeout, open) = (limits.drain_timeout, stopping.receiver_count());
        stopping.send_replace(Phase::Cut);
        // Each task drops its connection on its next poll: this wait is not another drain.
        stopping.closed().await;
        tracing::warn!(?drain_timeout, closed = open, "drain timed out; closed the connections still open");
    }
}

/// Where the listener is in its life, as each connection's task watches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Draining: each connection closes once its requests in flight have been answered.
    Stopping,
    /// The drain timed out: each connection is dropped, whatever it has in flight.
    Cut,
}

/// What a connection's task is told by its listener: the phase of its life, and that
/// it is to close to admit another connection.
struct Signals<'a> {
    stop: watch::Receiver<Phase>,
    membership: &'a Membership,
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
/// has had no request in flight for `idle_timeout`, once an HTTP/1 connection's next
/// request head is late, or once the listener asks it to make room while it has a request
/// in flight. A late head gets one more `header_timeout` to close, after which the
/// connection is dropped: half a head is no request to finish. Dropped at once (`None`):
/// a connection asked to make room with nothing in flight, and any connection once the
/// drain has timed out.
async fn drive<C: Future>(
    connection: C,
    close: impl FnOnce(Pin<&mut C>),
    clocks: Clocks<'_>,
    signals: Signals<'_>,
) -> Option<C::Output> {
    let Signals { mut stop, membership } = signals;
    tokio::pin!(connection);
    // The watchers are polled only when they fire, not on each of the connection's wakes.
    let (why, late_head) = tokio::select! {
        biased;
        output = &mut connection => return Some(output),
        () = Dormant::new(clocks.activity.idle_for(clocks.idle_timeout)) => ("idle", false),
        () = Dormant::new(clocks.seen.late_head(clocks.activity, clocks.header_timeout)) => ("late request head", true),
        // A closed channel stops the connection as well.
        _ = Dormant::new(stop.wait_for(|phase| *phase != Phase::Serving)) => ("stopping", false),
        () = Dormant::new(membership.asked_to_close()) => {
            if clocks.activity.idle_since().is_some() {
                tracing::debug!("closed the longest-idle connection to admit a new one");
                return None;
            }
            // A request arrived since the listener chose this one: it is answered first.
            ("making room", false)
        }
    };
    tracing::debug!(why, "closing a connection gracefully");
    close(connection.as_mut());
    let grace = async {
        if late_head {
            tokio::time::sleep(clocks.header_timeout).await;
        } else {
            std::future::pending().await
        }
    };
    tokio::select! {
        biased;
        output = &mut connection => Some(output),
        () = grace => {
            tracing::debug!(header_timeout = ?clocks.header_timeout, "closed a connection whose request head was late");
            None
        }
        // The listener logs how many it cut.
        _ = stop.wait_for(|phase| *phase == Phase::Cut) => None,
    }
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

/// How long a connection admitted to a full `CloseLongestIdle` listener waits for the
/// place of the one asked to close before another is asked: that one may have taken a
/// request meanwhile, or every connection may have one in flight.
const MAKING_ROOM: Duration = Duration::from_millis(200);

/// The next connection with its place in the budget; `None` after a failed accept.
async fn admit(
    listener: &TcpListener,
    budget: &Arc<Semaphore>,
    open: &OpenConnections,
    when_full: WhenFull,
) -> Option<(TcpStream, OwnedSemaphorePermit)> {
    // The semaphore is never closed, so acquiring fails only if it were.
    if when_full == WhenFull::Wait {
        // The place in the budget is taken before the accept, so a full listener leaves
        // new connections in the backlog instead of holding their descriptors.
        let permit = budget.clone().acquire_owned().await.ok()?;
        return accept(listener).await.map(|stream| (stream, permit));
    }
    // The connection first: only a connection that is here makes another one close. It
    // holds a descriptor beyond the budget until it has a place, one at most.
    let stream = accept(listener).await?;
    loop {
        if let Ok(permit) = budget.clone().try_acquire_owned() {
            return Some((stream, permit));
        }
        open.close_longest_idle();
        if let Ok(permit) = tokio::time::timeout(MAKING_ROOM, budget.clone().acquire_owned()).await {
            return permit.ok().map(|permit| (stream, permit));
        }
    }
}

/// The next connection; `None` after a failed accept.
async fn accept(listener: &TcpListener) -> Option<TcpStream> {
    match listener.accept().await {
        Ok((stream, _peer)) => Some(stream),
        Err(error) => {
            // EMFILE and friends: back off instead of spinning on the error.
            tracing::warn!(%error, "accept failed");
            tokio::time::sleep(Duration::from_millis(50)).await;
            None
        }
    }
}
