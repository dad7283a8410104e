//! The request path: a client request is authenticated, read within the size limit,
//! matched to a route, split to an arm by its sticky bucket, forwarded to that arm's
//! upstream (falling back to the other before the first byte), and streamed back.

mod body;
mod breaker;
mod error;
mod exchange;
mod failure;
mod forward;
mod gateway;
pub mod headers;
mod request;
mod retry;
mod service;
mod shadow;
pub mod split;
pub mod sse;

pub use error::{GatewayError, TransportError, stream_error_event};
pub use gateway::Gateway;
pub use service::ProxyService;
