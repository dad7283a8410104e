//! What bounds one upstream's connections: how many may be opening at once (pacing, so a
//! burst does not flood the upstream's accept queue) and how many may be open at once
//! (`max_connections`, idle ones included, so that a thousand concurrent streams hold at
//! most that many descriptors and upstream slots). A connection holds its place in the
//! cap for as long as it exists (`OpenSlot`), in the in-task pool's `Link` or, for the
//! TLS client, in the IO object hyper-util keeps (`Held`); the place frees when the
//! connection is dropped, and a request waiting for one then opens its own.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

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
}

/// The places of an upstream's open connections, when they are capped.
#[derive(Clone, Default)]
pub struct OpenCap(Option<Arc<Semaphore>>);

/// One open connection's place in its upstream's cap (nothing when there is no cap).
#[derive(Debug)]
pub struct OpenSlot {
    _permit: Option<OwnedSemaphorePermit>,
}

impl OpenCap {
    pub fn new(most: Option<usize>) -> OpenCap {
        OpenCap(most.map(|most| Arc::new(Semaphore::new(most.max(1)))))
    }

    /// A place for a new connection, once one is free; at once when there is no cap.
    pub async fn enter(&self) -> Result<OpenSlot, AcquireError> {
        match &self.0 {
            None => Ok(OpenSlot { _permit: None }),
            Some(places) => places.clone().acquire_owned().await.map(|permit| OpenSlot { _permit: Some(permit) }),
        }
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

    #[tokio::test]
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
}
