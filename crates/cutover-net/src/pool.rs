//! A plain-HTTP upstream's own HTTP/1 connections, driven inside the request's task.
//!
//! hyper-util's pooled client runs every connection in a task of its own, so each chunk
//! of an answer crosses from that task to the request's through a channel and a wake-up;
//! here the request's task polls the connection itself, while it waits for the response
//! head and then while it reads the body (`PooledBody`), and hands the connection back to
//! the pool when the body has ended. Keep-alive, at most `max_connecting` connections
//! being opened at once and, with `max_connections`, at most so many open (a request that
//! waits for either takes a connection freed in the meantime instead), idle connections
//! kept at most `IDLE_FOR` and at most `MAX_IDLE`.
//!
//! An idle reaper (one task per pool, while it keeps idle connections) looks at the idle
//! connections every `REAP_EVERY`, so one the upstream closed gives its descriptor back
//! without waiting for the next request. A connection that is handed out is first polled
//! once: one the upstream closed while it
//! sat idle is seen closed and dropped then. If the upstream closes it at the very moment
//! a request is handed to it, hyper gives the request back unsent and it is sent on
//! another connection; anything later is a failure for the caller's retry policy.
//!
//! Requests go out in origin form with the upstream's `Host`, as RFC 9112 requires and
//! as servers others wrote (h11, aiohttp, Node, Go) enforce. TLS upstreams keep
//! hyper-util's client (`client.rs`), which negotiates HTTP/2 by ALPN; both are reached
//! through `upstream::UpstreamConnections`.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{HeaderValue, Request, Response, Uri, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore};
use tokio::time::{Instant, Sleep};

use super::body::BoxError;
use super::cap::{ConnectionCaps, OpenCap, OpenSlot};

/// How long an idle connection is kept: shorter than the keep-alive timeouts of the
/// servers a plain-HTTP upstream usually runs on (uvicorn and Node.js close after 5 s,
/// hyper's header timeout here after 10 s), so that we close an idle connection before
/// the upstream does; otherwise a request may be written just as the upstream closes the
/// connection, and fail. A new connection on loopback or a LAN costs far less than that.
const IDLE_FOR: Duration = Duration::from_secs(4);

/// Idle connections kept per upstream at most; more are closed when they free up.
const MAX_IDLE: usize = 1024;

/// How often the idle connections are looked at, so that those the upstream closed (or
/// that have idled too long) give their descriptors back without waiting for traffic.
const REAP_EVERY: Duration = Duration::from_secs(1);

type Connection = http1::Connection<TokioIo<TcpStream>, Full<Bytes>>;

/// Why a request got no response head.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    Connect(#[source] BoxError),
    #[error("{0}")]
    Broken(#[source] BoxError),
    /// No response head by the caller's deadline.
    #[error("no response head in time")]
    HeadTimeout,
}

/// One connection: the handle that sends requests and the connection it drives.
struct Link {
    sender: http1::SendRequest<Full<Bytes>>,
    /// Boxed so that handing a connection around moves a pointer, not hyper's buffers.
    connection: Box<Connection>,
    /// The connection has ended (closed or failed): it is never polled again.
    ended: bool,
    /// When the response head of the request in flight is due. One timer per connection,
    /// not per request: each request moves it later, which tokio does without touching its
    /// timer wheel (the entry fires at the earlier time, finds itself moved and is filed
    /// again), so a request costs no timer of its own. Boxed: `Sleep` cannot move.
    head_timer: Pin<Box<Sleep>>,
    /// Its place in the upstream's cap, freed when the connection is dropped.
    _slot: OpenSlot,
}

impl Link {
    /// Drives the connection's reading and writing; true once it has ended.
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.ended && self.connection.poll_without_shutdown(cx).is_ready() {
            self.ended = true;
        }
        self.ended
    }

    /// The response head of the request about to be sent is due by `deadline`.
    fn head_due(&mut self, deadline: Instant) {
        self.head_timer.as_mut().reset(deadline);
    }

    /// Whether `deadline`, when the head is due, has passed; else the task is woken when
    /// the timer fires (and, on a timer set for an earlier request, the check comes again).
    fn head_overdue(&mut self, deadline: Instant, cx: &mut Context<'_>) -> bool {
        while self.head_timer.as_mut().poll(cx).is_ready() {
            if Instant::now() >= deadline {
                return true;
            }
            self.head_timer.as_mut().reset(deadline);
        }
        false
    }

    /// Whether a request can be sent now: polled once, so that a close that arrived while
    /// the connection sat idle is seen.
    fn ready_now(&mut self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        !self.drive(&mut cx) && matches!(self.sender.poll_ready(&mut cx), Poll::Ready(Ok(())))
    }
}

/// The idle connections of one upstream and what paces new ones.
pub struct Http1Pool {
    /// `host:port`, connected to.
    authority: String,
    /// What each request's `Host` says: the upstream's authority as its URL gives it.
    host: HeaderValue,
    connect_timeout: Duration,
    /// Newest at the back: the warmest connection is reused first.
    idle: Mutex<VecDeque<(Instant, Link)>>,
    /// Signalled when a connection goes back to the pool.
    freed: Notify,
    connecting: Semaphore,
    open: OpenCap,
    /// Whether the idle reaper runs: started with the first connection kept idle.
    reaping: AtomicBool,
}

impl Http1Pool {
    pub fn new(authority: String, host: HeaderValue, connect_timeout: Duration, caps: ConnectionCaps) -> Http1Pool {
        Http1Pool {
            authority,
            host,
            connect_timeout,
            idle: Mutex::new(VecDeque::new()),
            freed: Notify::new(),
            connecting: Semaphore::new(caps.connecting.max(1)),
            open: OpenCap::new(caps.open),
            reaping: AtomicBool::new(false),
        }
    }

    /// Sends `request` and returns the response head with a body that drives the
    /// connection until it ends, then gives the connection back. An absolute URI is sent
    /// in origin form (RFC 9112 §3.2.1: absolute form is for proxies), with the pool's
    /// `Host` whatever the caller set. With a `deadline`, the head is due by then, waiting
    /// for a connection included; past it, `SendError::HeadTimeout`.
    pub async fn send(
        self: &Arc<Self>,
        mut request: Request<Full<Bytes>>,
        deadline: Option<Instant>,
    ) -> Result<Response<PooledBody>, SendError> {
        if request.uri().scheme().is_some() {
            let origin = request.uri().path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
            *request.uri_mut() = Uri::from(origin);
        }
        request.headers_mut().insert(header::HOST, self.host.clone());
        loop {
            let (mut link, reused) = match (self.take_idle(), deadline) {
                (Some(link), _) => (link, true),
                (None, None) => self.checkout().await?,
                (None, Some(deadline)) => {
                    tokio::time::timeout_at(deadline, self.checkout()).await.map_err(|_| SendError::HeadTimeout)??
                }
            };
            if let Some(deadline) = deadline {
                link.head_due(deadline);
            }
            let mut response = std::pin::pin!(link.sender.try_send_request(request));
            let outcome = poll_fn(|cx| {
                if let Poll::Ready(outcome) = response.as_mut().poll(cx) {
                    return Poll::Ready(outcome.map_err(Unsent::from));
                }
                if !link.drive(cx) {
                    return match deadline {
                        Some(deadline) if link.head_overdue(deadline, cx) => Poll::Ready(Err(Unsent::Overdue)),
                        _ => Poll::Pending,
                    };
                }
                // hyper answers the request in flight before its connection ends.
                match response.as_mut().poll(cx) {
                    Poll::Ready(outcome) => Poll::Ready(outcome.map_err(Unsent::from)),
                    Poll::Pending => Poll::Ready(Err(Unsent::Closed)),
                }
            })
            .await;
            match outcome {
                Ok(response) => {
                    let (parts, incoming) = response.into_parts();
                    let body = PooledBody { incoming, link: Some(link), pool: self.clone() };
                    return Ok(Response::from_parts(parts, body));
                }
                Err(Unsent::Returned(again, _)) if reused => request = *again,
                Err(Unsent::Returned(_, error)) => return Err(SendError::Broken(error.into())),
                Err(Unsent::Failed(error)) => return Err(SendError::Broken(error.into())),
                Err(Unsent::Closed) => return Err(SendError::Broken("the upstream closed the connection".into())),
                // The request is in flight on `link`, which is dropped here: HTTP/1 cannot
                // abandon a request, so its connection closes.
                Err(Unsent::Overdue) => return Err(SendError::HeadTimeout),
            }
        }
    }

    /// An idle connection that is ready, or a new one; true when reused. A new one needs
    /// a place in the cap, then a connecting slot; a connection freed meanwhile is taken
    /// instead. The caller's first-byte deadline bounds the wait.
    async fn checkout(&self) -> Result<(Link, bool), SendError> {
        loop {
            if let Some(link) = self.take_idle() {
                return Ok((link, true));
            }
            let slot = tokio::select! {
                biased;
                () = self.freed.notified() => continue,
                slot = self.open.enter() => slot.map_err(|error| SendError::Connect(error.into()))?,
            };
            tokio::select! {
                biased;
                () = self.freed.notified() => continue,
                permit = self.connecting.acquire() => {
                    let _permit = permit.map_err(|error| SendError::Connect(error.into()))?;
                    if let Some(link) = self.take_idle() {
                        return Ok((link, true));
                    }
                    return self.connect(slot).await.map(|link| (link, false));
                }
            }
        }
    }

    /// The places and counts of its connections.
    pub fn open_cap(&self) -> &OpenCap {
        &self.open
    }

    fn take_idle(&self) -> Option<Link> {
        let now = Instant::now();
        loop {
            let (since, mut link) = self.idle.lock().ok()?.pop_back()?;
            if now.duration_since(since) < IDLE_FOR && link.ready_now() {
                return Some(link);
            }
        }
    }

    /// Back to the pool after an answer ended; the oldest go first when they are stale or
    /// too many.
    fn give_back(self: &Arc<Self>, link: Link) {
        let now = Instant::now();
        let Ok(mut idle) = self.idle.lock() else { return };
        while idle.front().is_some_and(|(since, _)| now.duration_since(*since) >= IDLE_FOR) || idle.len() >= MAX_IDLE {
            idle.pop_front();
        }
        idle.push_back((now, link));
        drop(idle);
        self.freed.notify_one();
        if !self.reaping.swap(true, Relaxed) {
            tokio::spawn(reap(Arc::downgrade(self)));
        }
    }

    fn idle_count(&self) -> usize {
        self.idle.lock().map_or(0, |idle| idle.len())
    }

    /// Drops the idle connections that have ended or idled too long; the others keep their
    /// order. They are looked at outside the lock, so requests never wait for it.
    fn reap_once(&self) {
        let now = Instant::now();
        let Some(looked_at) = self.idle.lock().ok().map(|mut idle| std::mem::take(&mut *idle)) else { return };
        let alive: Vec<(Instant, Link)> = looked_at
            .into_iter()
            .filter_map(|(since, mut link)| {
                (now.duration_since(since) < IDLE_FOR && link.ready_now()).then_some((since, link))
            })
            .collect();
        if let Ok(mut idle) = self.idle.lock() {
            // Connections freed meanwhile are newer: the survivors go in front of them.
            for entry in alive.into_iter().rev() {
                idle.push_front(entry);
            }
        }
    }

    async fn connect(&self, slot: OpenSlot) -> Result<Link, SendError> {
        let connect = TcpStream::connect(self.authority.as_str());
        let stream = match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                // The upstream's address is not named: this message may reach a client,
                // and the caller names the upstream by its configured name.
                return Err(SendError::Connect(format!("tcp connect: {error}").into()));
            }
            Err(_) => {
                let timeout = self.connect_timeout;
                return Err(SendError::Connect(format!("tcp connect: timed out after {timeout:?}").into()));
            }
        };
        stream.set_nodelay(true).map_err(|error| SendError::Connect(error.into()))?;
        let (sender, connection) =
            http1::handshake(TokioIo::new(stream)).await.map_err(|error| SendError::Connect(error.into()))?;
        let head_timer = Box::pin(tokio::time::sleep(Duration::ZERO));
        Ok(Link { sender, connection: Box::new(connection), ended: false, head_timer, _slot: slot })
    }
}

/// The idle reaper of one pool: it runs while the pool keeps idle connections, and ends
/// when none is left (the next one kept starts it again) or with the pool.
async fn reap(pool: Weak<Http1Pool>) {
    loop {
        tokio::time::sleep(REAP_EVERY).await;
        let Some(pool) = pool.upgrade() else { return };
        pool.reap_once();
        if pool.idle_count() == 0 {
            pool.reaping.store(false, Relaxed);
            // A connection kept between the count and the store saw the reaper running
            // and started none: this one goes on for it.
            if pool.idle_count() == 0 || pool.reaping.swap(true, Relaxed) {
                return;
            }
        }
    }
}

/// Why a request got no response on a connection.
enum Unsent {
    /// Never written: hyper gives the request back, to be sent elsewhere.
    /// Boxed: the rare case should not make every outcome as large as a request.
    Returned(Box<Request<Full<Bytes>>>, hyper::Error),
    Failed(hyper::Error),
    /// The connection ended without an answer.
    Closed,
    /// Sent, but no head came by the deadline.
    Overdue,
}

impl From<hyper::client::conn::TrySendError<Request<Full<Bytes>>>> for Unsent {
    fn from(mut error: hyper::client::conn::TrySendError<Request<Full<Bytes>>>) -> Unsent {
        match error.take_message() {
            Some(request) => Unsent::Returned(Box::new(request), error.into_error()),
            None => Unsent::Failed(error.into_error()),
        }
    }
}

/// A response body read from a pooled connection: each poll drives the connection, and
/// the connection goes back to the pool once the body has ended. A body dropped before
/// its end closes its connection (HTTP/1 cannot abandon an answer half-read).
pub struct PooledBody {
    incoming: Incoming,
    link: Option<Link>,
    pool: Arc<Http1Pool>,
}

impl PooledBody {
    fn release(&mut self) {
        if let Some(link) = self.link.take().filter(|link| !link.ended) {
            self.pool.give_back(link);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        if let Some(link) = this.link.as_mut() {
            link.drive(cx);
        }
        let frame = Pin::new(&mut this.incoming).poll_frame(cx);
        if matches!(frame, Poll::Ready(None)) || this.incoming.is_end_stream() {
            this.release();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        if self.incoming.is_end_stream() {
            self.release();
        }
    }
}

/// An upstream's response body, from hyper-util's client or from a pooled connection.
pub enum UpstreamBody {
    Shared(Incoming),
    Pooled(PooledBody),
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            UpstreamBody::Shared(incoming) => Pin::new(incoming).poll_frame(cx),
            UpstreamBody::Pooled(pooled) => Pin::new(pooled).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Shared(incoming) => incoming.is_end_stream(),
            UpstreamBody::Pooled(pooled) => pooled.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Shared(incoming) => incoming.size_hint(),
            UpstreamBody::Pooled(pooled) => pooled.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use http_body_util::BodyExt;
    use hyper::service::service_fn;
    use tokio::net::TcpListener;

    use super::*;

    /// How the test server treats a connection after its first answer.
    #[derive(Clone, Copy)]
    enum After {
        KeepAlive,
        Close,
    }

    /// An HTTP/1 server on loopback answering `hello` to everything; counts connections.
    async fn server(after: After) -> (String, Arc<AtomicUsize>) {
        let (address, accepted, _) = watched_server(after).await;
        (address, accepted)
    }

    /// The server, also telling the most connections it had open at once.
    async fn watched_server(after: After) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (accepted, open, most) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (count, peak) = (accepted.clone(), most.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Relaxed);
                peak.fetch_max(open.fetch_add(1, Relaxed) + 1, Relaxed);
                let service = service_fn(|_request: Request<Incoming>| async {
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
                });
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder.keep_alive(matches!(after, After::KeepAlive));
                let open = open.clone();
                tokio::spawn(async move {
                    let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                    open.fetch_sub(1, Relaxed);
                });
            }
        });
        (address, accepted, most)
    }

    fn pool(address: &str, max_connecting: usize) -> Arc<Http1Pool> {
        capped(address, ConnectionCaps { connecting: max_connecting, open: None, open_wait: Duration::from_secs(5) })
    }

    fn capped(address: &str, caps: ConnectionCaps) -> Arc<Http1Pool> {
        let host = HeaderValue::from_str(address).unwrap();
        Arc::new(Http1Pool::new(address.to_owned(), host, Duration::from_secs(5), caps))
    }

    async fn get(pool: &Arc<Http1Pool>) -> Result<Bytes, SendError> {
        get_path(pool, "/", None).await
    }

    /// `GET path`, its head due by `deadline`, read whole.
    async fn get_path(pool: &Arc<Http1Pool>, path: &str, deadline: Option<Instant>) -> Result<Bytes, SendError> {
        let request = Request::builder().uri(path).body(Full::new(Bytes::new())).unwrap();
        let response = pool.send(request, deadline).await?;
        Ok(response.into_body().collect().await.map_err(|error| SendError::Broken(error.into()))?.to_bytes())
    }

    /// A keep-alive server that answers `/N` after N milliseconds; counts connections.
    async fn slow_server() -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Relaxed);
                let service = service_fn(|request: Request<Incoming>| async move {
                    let millis: u64 = request.uri().path()[1..].parse().unwrap_or(0);
                    tokio::time::sleep(Duration::from_millis(millis)).await;
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        (address, accepted)
    }

    /// `GET /{delay_ms}` whose head is due within `due_in`.
    async fn get_due(pool: &Arc<Http1Pool>, delay_ms: u64, due_in: Duration) -> Result<Bytes, SendError> {
        get_path(pool, &format!("/{delay_ms}"), Some(Instant::now() + due_in)).await
    }

    #[tokio::test]
    async fn a_head_not_come_by_its_deadline_fails_then_and_its_connection_is_closed() {
        let (address, accepted) = slow_server().await;
        let pool = pool(&address, 4);
        let outcome = get_due(&pool, 5_000, Duration::from_millis(100)).await;
        assert!(matches!(outcome, Err(SendError::HeadTimeout)), "{outcome:?}");
        assert_eq!(get_due(&pool, 0, Duration::from_secs(5)).await.unwrap(), "hello");
        assert_eq!(accepted.load(Relaxed), 2, "the overdue request's connection is not reused");
    }

    #[tokio::test]
    async fn one_connections_timer_serves_deadlines_moved_later_and_earlier() {
        let (address, accepted) = slow_server().await;
        let pool = pool(&address, 4);
        // The timer is armed for 100 ms, then moved later: it must not cut the second
        // request short when the first one's time comes.
        assert_eq!(get_due(&pool, 0, Duration::from_millis(100)).await.unwrap(), "hello");
        assert_eq!(get_due(&pool, 400, Duration::from_secs(5)).await.unwrap(), "hello");
        // Moved earlier than it stands, it still fires in time.
        let outcome = get_due(&pool, 5_000, Duration::from_millis(150)).await;
        assert!(matches!(outcome, Err(SendError::HeadTimeout)), "{outcome:?}");
        assert_eq!(accepted.load(Relaxed), 1);
    }

    #[tokio::test]
    async fn sequential_requests_reuse_one_connection() {
        let (address, accepted) = server(After::KeepAlive).await;
        let pool = pool(&address, 4);
        for _ in 0..50 {
            assert_eq!(get(&pool).await.unwrap(), "hello");
        }
        assert_eq!(accepted.load(Relaxed), 1);
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closes_after_each_answer_is_never_reused() {
        let (address, accepted) = server(After::Close).await;
        let pool = pool(&address, 4);
        for _ in 0..10 {
            assert_eq!(get(&pool).await.unwrap(), "hello");
        }
        assert_eq!(accepted.load(Relaxed), 10);
    }

    #[tokio::test]
    async fn a_burst_opens_at_most_max_connecting_at_once_and_shares_what_frees_up() {
        let (address, accepted) = server(After::KeepAlive).await;
        let pool = pool(&address, 2);
        burst(&pool, 40).await;
        let opened = accepted.load(Relaxed);
        assert!((1..=40).contains(&opened), "{opened}");
        for _ in 0..10 {
            get(&pool).await.unwrap();
        }
        assert_eq!(accepted.load(Relaxed), opened, "the idle connections serve what follows");
    }

    /// `requests` requests at once, each of which must be answered `hello`.
    async fn burst(pool: &Arc<Http1Pool>, requests: usize) {
        let burst: Vec<_> = (0..requests)
            .map(|_| {
                tokio::spawn({
                    let pool = pool.clone();
                    async move { get(&pool).await.map(|body| body.len()) }
                })
            })
            .collect();
        for request in burst {
            assert_eq!(request.await.unwrap().unwrap(), 5);
        }
    }

    #[tokio::test]
    async fn a_capped_pool_serves_a_burst_on_at_most_its_cap_of_connections() {
        let (address, accepted, most) = watched_server(After::KeepAlive).await;
        let pool = capped(&address, ConnectionCaps { connecting: 8, open: Some(3), open_wait: Duration::from_secs(5) });
        burst(&pool, 60).await;
        let opened = accepted.load(Relaxed);
        assert!((1..=3).contains(&opened), "{opened} connections for a cap of 3");
        assert!(most.load(Relaxed) <= 3, "{} open at once", most.load(Relaxed));
    }

    #[tokio::test]
    async fn a_request_waiting_for_a_place_opens_one_when_a_connection_closes() {
        // Each answer closes its connection: a place frees for every request served.
        let (address, accepted) = server(After::Close).await;
        let pool = capped(&address, ConnectionCaps { connecting: 8, open: Some(2), open_wait: Duration::from_secs(5) });
        let served = tokio::time::timeout(Duration::from_secs(30), burst(&pool, 20)).await;
        assert!(served.is_ok(), "the requests beyond the cap waited for ever");
        assert_eq!(accepted.load(Relaxed), 20, "one connection per request");
    }

    #[tokio::test]
    async fn a_body_dropped_half_read_closes_its_connection_and_a_finished_one_is_kept() {
        let (address, accepted) = server(After::KeepAlive).await;
        let pool = pool(&address, 4);
        let request = Request::builder().uri("/").body(Full::new(Bytes::new())).unwrap();
        let response = pool.send(request, None).await.unwrap();
        drop(response);
        assert_eq!(pool.idle.lock().unwrap().len(), 0, "an unread answer leaves its connection unusable");
        get(&pool).await.unwrap();
        assert_eq!(accepted.load(Relaxed), 2);
        assert_eq!(pool.idle.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn the_reaper_drops_idle_connections_the_upstream_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (close, closed) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let service = service_fn(|_request: Request<Incoming>| async {
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
            });
            let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = closed => {}
            }
        });
        let pool = pool(&address, 1);
        get(&pool).await.unwrap();
        assert_eq!(pool.idle.lock().unwrap().len(), 1);
        close.send(()).unwrap();
        // The reaper looks every REAP_EVERY; the close reaches the socket at once.
        let mut looks = 0;
        while !pool.idle.lock().unwrap().is_empty() {
            looks += 1;
            assert!(looks < 10, "the closed connection is still kept idle");
            tokio::time::sleep(REAP_EVERY).await;
        }
        // With nothing left to look at, the reaper's task ends (no task per idle pool).
        tokio::time::sleep(REAP_EVERY * 2).await;
        assert!(!pool.reaping.load(Relaxed), "the reaper still runs over an empty pool");
    }

    #[tokio::test]
    async fn nothing_listening_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        drop(listener);
        assert!(matches!(get(&pool(&address, 1)).await, Err(SendError::Connect(_))));
    }
}
