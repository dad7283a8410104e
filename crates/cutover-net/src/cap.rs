//! What bounds one upstream's connections: how many may be opening at once (pacing, so a
//! burst does not flood the upstream's accept queue) and how many may be open at once
//! (`max_connections`, idle ones included, so that a thousand concurrent streams hold at
//! most that many descriptors and upstream slots). A connection holds its place in the
//! cap for as long as it exists (`OpenSlot`), in the in-task pool's `Link` or, for the
//! TLS client, in the IO object hyper-util keeps (`Held`); the place frees when the
//! connection is dropped, and a request waiting for one then opens its own. The in-task
//! pool waits within the request, so the request's first-byte deadline bounds it; the
//! TLS client's connects wait at most `open_wait` (the same deadline), because hyper-util
//! lets a connect run on after the request that started it was served by a connection
//! freed meanwhile, and unbounded, such connects would pile up for as long as the
//! upstream stays busy. Capped or not, it counts the connections open (and being opened)
//! and the times a caller found the cap full and waited, for the metrics.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use tokio::sync::{AcquireError, Semaphore, TryAcquireError};

/// How many connections of one upstream may be opening, and open, at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionCaps {
    /// Connects (TLS handshakes included) in progress at once, at most.
    pub connecting: usize,
    /// Connections open at once, at most; `None`: no cap.
    pub open: Option<usize>,
    /// How long a connect that may outlive its request (the TLS client's) waits for a
    /// place under the cap before it fails; the in-task pool's requests wait within their
    /// own deadline.
    pub open_wait: Duration,
}

/// Why a new connection got no place under its upstream's cap.
#[derive(Debug, thiserror::Error)]
pub enum CapError {
    #[error("every connection to the upstream (max_connections {most}) stayed busy for {waited:?}")]
    Busy { most: usize, waited: Duration },
    #[error("the upstream's connections are closing")]
    Closed(#[from] AcquireError),
}

/// The places of an upstream's open connections (when they are capped) and their counts.
/// Cloning shares them.
#[derive(Clone)]
pub struct OpenCap(Arc<Places>);

#[derive(Debug)]
struct Places {
    /// Free places; `None`: no cap.
    free: Option<Semaphore>,
    most: usize,
    open: AtomicUsize,
    waited: AtomicU64,
}

/// One open connection's place in its upstream's cap (a permit of `free`, taken and
/// given back by hand so that a connection carries one pointer for it), counted while it
/// exists.
#[derive(Debug)]
pub struct OpenSlot(Arc<Places>);

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Relaxed);
        if let Some(free) = &self.0.free {
            free.add_permits(1);
        }
    }
}

impl OpenCap {
    pub fn new(most: Option<usize>) -> OpenCap {
        let most = most.map(|most| most.max(1));
        OpenCap(Arc::new(Places {
            free: most.map(Semaphore::new),
            most: most.unwrap_or(0),
            open: AtomicUsize::new(0),
            waited: AtomicU64::new(0),
        }))
    }

    /// A place for a new connection, once one is free; at once when there is no cap.
    pub async fn enter(&self) -> Result<OpenSlot, CapError> {
        if let Some(free) = &self.0.free {
            let permit = match free.try_acquire() {
                Ok(permit) => permit,
                Err(full) => {
                    if matches!(full, TryAcquireError::NoPermits) {
                        self.0.waited.fetch_add(1, Relaxed);
                    }
                    free.acquire().await?
                }
            };
            // Given back by the slot's drop.
            permit.forget();
        }
        self.0.open.fetch_add(1, Relaxed);
        Ok(OpenSlot(self.0.clone()))
    }

    /// [`OpenCap::enter`], giving up after `wait`.
    pub async fn enter_within(&self, wait: Duration) -> Result<OpenSlot, CapError> {
        let most = self.0.most;
        tokio::time::timeout(wait, self.enter()).await.unwrap_or(Err(CapError::Busy { most, waited: wait }))
    }

    /// Connections open or being opened now.
    pub fn open(&self) -> usize {
        self.0.open.load(Relaxed)
    }

    /// Times so far a new connection was wanted with the cap full, and its caller waited.
    pub fn waited(&self) -> u64 {
        self.0.waited.load(Relaxed)
    }
}

/// A connection's IO holding its place in the cap: everything is the inner IO's.
pub struct Held<T> {
    io: T,
    _slot: OpenSlot,
}

impl<T> Held<T> {
    pub fn new(io: T, slot: OpenSlot) -> Held<T> {
        Held { io, _slot: slot }
    }
}

impl<T: Read + Unpin> Read for Held<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for Held<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}

impl<T: Connection> Connection for Held<T> {
    fn connected(&self) -> Connected {
        self.io.connected()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_place_frees_when_its_connection_is_dropped_and_no_cap_never_waits() {
        let cap = OpenCap::new(Some(2));
        let (first, _second) = (cap.enter().await.unwrap(), cap.enter().await.unwrap());
        assert_eq!((cap.open(), cap.waited()), (2, 0));
        let third = tokio::spawn({
            let cap = cap.clone();
            async move { cap.enter().await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        assert!(!third.is_finished(), "a third connection waits while two are open");
        drop(first);
        third.await.unwrap().unwrap();
        assert_eq!((cap.open(), cap.waited()), (1, 1), "the third came and went; it waited once");
        let uncapped = OpenCap::new(None);
        let mut slots = Vec::new();
        for _ in 0..10_000 {
            slots.push(uncapped.enter().await.unwrap());
        }
        assert_eq!(slots.len(), 10_000, "no cap: every connection has a place at once");
        assert_eq!((uncapped.open(), uncapped.waited()), (10_000, 0), "counted all the same");
    }

    #[tokio::test(start_paused = true)]
    async fn a_bounded_wait_for_a_place_gives_up_after_it_naming_the_cap() {
        let cap = OpenCap::new(Some(1));
        let _only = cap.enter().await.unwrap();
        let started = tokio::time::Instant::now();
        let wait = Duration::from_secs(5);
        let Err(CapError::Busy { most, waited }) = cap.enter_within(wait).await else {
            panic!("a second place under a cap of 1")
        };
        assert_eq!((most, waited, started.elapsed()), (1, Duration::from_secs(5), Duration::from_secs(5)));
    }
}
