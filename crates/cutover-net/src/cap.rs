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
//! upstream stays busy.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

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

/// The places of an upstream's open connections, when they are capped.
#[derive(Clone, Default)]
pub struct OpenCap(Option<Places>);

#[derive(Clone)]
struct Places {
    free: Arc<Semaphore>,
    most: usize,
}

/// One open connection's place in its upstream's cap (nothing when there is no cap).
#[derive(Debug)]
pub struct OpenSlot {
    _permit: Option<OwnedSemaphorePermit>,
}

impl OpenCap {
    pub fn new(most: Option<usize>) -> OpenCap {
        OpenCap(most.map(|most| Places { free: Arc::new(Semaphore::new(most.max(1))), most: most.max(1) }))
    }

    /// A place for a new connection, once one is free; at once when there is no cap.
    pub async fn enter(&self) -> Result<OpenSlot, CapError> {
        let Some(places) = &self.0 else { return Ok(OpenSlot { _permit: None }) };
        Ok(OpenSlot { _permit: Some(places.free.clone().acquire_owned().await?) })
    }

    /// [`OpenCap::enter`], giving up after `wait`.
    pub async fn enter_within(&self, wait: Duration) -> Result<OpenSlot, CapError> {
        let most = self.0.as_ref().map_or(0, |places| places.most);
        tokio::time::timeout(wait, self.enter()).await.unwrap_or(Err(CapError::Busy { most, waited: wait }))
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
        let third = tokio::spawn({
            let cap = cap.clone();
            async move { cap.enter().await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        assert!(!third.is_finished(), "a third connection waits while two are open");
        drop(first);
        third.await.unwrap().unwrap();
        let uncapped = OpenCap::new(None);
        let mut slots = Vec::new();
        for _ in 0..10_000 {
            slots.push(uncapped.enter().await.unwrap());
        }
        assert_eq!(slots.len(), 10_000, "no cap: every connection has a place at once");
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
