//! The request path: a client request is authenticated, read within the size limit,
//! matched to a route, split to an arm by its sticky bucket, forwarded to that arm's
//! upstream (falling back to the other before the first byte), and streamed back —
//! translated at the arm's edge when its upstream speaks the other API.

// The service and what it reads of a request.
mod path;
mod request;
mod service;
pub mod split;

// Admission: requests in flight, gateway-wide and per client connection.
mod admission;

// One request's attempts: routing runtime, the exchange with an upstream, retries and
// fallback, failures and their errors, the breaker, shadow copies.
mod breaker;
mod error;
mod exchange;
mod expected;
mod failure;
mod forward;
mod gateway;
mod retry;
mod shadow;
// An arm that speaks the other API: its request and answer translated at its edge.
mod translation;

// What comes back: headers that cross, the event-stream framer, the body stack.
mod body;
pub mod headers;

pub use admission::Admission;
pub use error::{EarlyStreamError, GatewayError, TransportError, stream_error_event};
pub use gateway::{Gateway, SharedGateway, keeps_health};
pub use service::ProxyService;
