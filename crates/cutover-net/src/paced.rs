//! Paced connection establishment: at most so many new connections to one upstream are
//! being opened at once. A burst of new streams would otherwise open one connection each,
//! all at the same moment, and the upstream's accept queue turns the excess into connect
//! timeouts; paced, the burst waits briefly and reuses the connections that free up.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use tokio::sync::Semaphore;
use tower_service::Service;

use super::body::BoxError;
use super::cap::{ConnectionCaps, Held, OpenCap};

/// A connector that lets at most `caps.connecting` connections be established at once
/// (it holds a slot from the start of a connect until the connection, TLS included, is
/// up or failed) and, with `caps.open`, at most so many exist: a connect first waits for
/// a place (at most `caps.open_wait`: hyper-util may run it on after its request was
/// served), which the connection then holds (`Held`) until hyper-util drops it.
#[derive(Clone)]
pub struct Paced<C> {
    inner: C,
    slots: Arc<Semaphore>,
    open: OpenCap,
    open_wait: Duration,
}

impl<C> Paced<C> {
    /// The places and counts of the connections it opens.
    pub fn open_cap(&self) -> &OpenCap {
        &self.open
    }

    pub fn new(inner: C, caps: ConnectionCaps) -> Paced<C> {
        Paced {
            inner,
            slots: Arc::new(Semaphore::new(caps.connecting.max(1))),
            open: OpenCap::new(caps.open),
            open_wait: caps.open_wait,
        }
    }
}

impl<C> Service<Uri> for Paced<C>
where
    C: Service<Uri> + Clone + Send + 'static,
    C::Future: Send,
    C::Error: Into<BoxError>,
{
    type Response = Held<C::Response>;
    type Error = BoxError;
    /// One allocation per new connection, never per request.
    type Future = Pin<Box<dyn Future<Output = Result<Held<C::Response>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Readiness is awaited inside the call, once a slot is held.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let (mut inner, slots, open, open_wait) =
            (self.inner.clone(), self.slots.clone(), self.open.clone(), self.open_wait);
        Box::pin(async move {
            let place = open.enter_within(open_wait).await?;
            let _slot = slots.acquire_owned().await?;
            std::future::poll_fn(|cx| inner.poll_ready(cx)).await.map_err(Into::into)?;
            let io = inner.call(uri).await.map_err(Into::into)?;
            Ok(Held::new(io, place))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    use super::*;

    /// A connector whose connects take a second, counting how many run at once.
    #[derive(Clone, Default)]
    struct Slow {
        running: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
    }

    impl Service<Uri> for Slow {
        type Response = ();
        type Error = std::convert::Infallible;
        type Future = Pin<Box<dyn Future<Output = Result<(), Self::Error>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Uri) -> Self::Future {
            let this = self.clone();
            Box::pin(async move {
                let now = this.running.fetch_add(1, SeqCst) + 1;
                this.most.fetch_max(now, SeqCst);
                tokio::time::sleep(Duration::from_secs(1)).await;
                this.running.fetch_sub(1, SeqCst);
                Ok(())
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_connects_runs_at_most_slots_at_once_and_all_complete() {
        let slow = Slow::default();
        let caps = ConnectionCaps { connecting: 4, open: None, open_wait: Duration::ZERO };
        let mut paced = Paced::new(slow.clone(), caps);
        let connects: Vec<_> = (0..40).map(|_| tokio::spawn(paced.call(Uri::from_static("http://upstream")))).collect();
        for connect in connects {
            assert!(connect.await.unwrap().is_ok());
        }
        assert_eq!(slow.most.load(SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn under_a_cap_a_connect_waits_for_a_place_and_gives_up_after_open_wait() {
        let caps = ConnectionCaps { connecting: 4, open: Some(1), open_wait: Duration::from_secs(3) };
        let mut paced = Paced::new(Slow::default(), caps);
        let uri = Uri::from_static("http://upstream");
        let held = paced.call(uri.clone()).await.expect("the first connection");
        let started = tokio::time::Instant::now();
        let refused = paced.call(uri.clone()).await.err().expect("no second connection under a cap of 1");
        assert_eq!(started.elapsed(), Duration::from_secs(3));
        assert!(refused.to_string().contains("max_connections 1"), "{refused}");
        // Once the first connection is gone, its place is the next connect's.
        let waiting = tokio::spawn(paced.call(uri));
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(held);
        assert!(waiting.await.unwrap().is_ok());
    }
}
