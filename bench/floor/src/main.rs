//! The floor under cutover's hot path: the least a reverse proxy built on the same stack
//! (tokio's multi-threaded runtime, hyper's HTTP/1 server and client) can do. Each client
//! connection gets one keep-alive connection to the upstream, opened on its first
//! request; requests and answers pass through untouched, bodies streamed frame by frame.
//! No routing, no key check, no metrics, no reading of the bodies. `bench/run.sh`
//! measures it beside nginx and cutover: what the stack costs, and what cutover's
//! features cost above it.
//!
//!   cutover-floor LISTEN_ADDR UPSTREAM_ADDR

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: cutover-floor LISTEN_ADDR UPSTREAM_ADDR";
    let listen: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let upstream: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let listener = TcpListener::bind(listen).await?;
    loop {
        let (client, _) = listener.accept().await?;
        client.set_nodelay(true)?;
        tokio::spawn(async move {
            let link: Arc<Mutex<Option<SendRequest<Incoming>>>> = Arc::default();
            let service = service_fn(move |request| forward(request, upstream, link.clone()));
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(client), service).await;
        });
    }
}

/// Sends `request` on this client connection's upstream connection, opened if need be.
async fn forward(
    request: Request<Incoming>,
    upstream: SocketAddr,
    link: Arc<Mutex<Option<SendRequest<Incoming>>>>,
) -> Result<Response<Incoming>, Error> {
    let taken = link.lock().map_err(|_| "poisoned")?.take();
    let mut sender = match taken {
        Some(sender) if !sender.is_closed() => sender,
        _ => {
            let stream = TcpStream::connect(upstream).await?;
            stream.set_nodelay(true)?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            sender
        }
    };
    sender.ready().await?;
    let response = sender.send_request(request).await;
    *link.lock().map_err(|_| "poisoned")? = Some(sender);
    Ok(response?)
}
