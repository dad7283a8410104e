//! The wire formats the gateway reads on the request path, and nothing above them: the
//! one-pass JSON scanner (`json`), the server-sent-event framer every stream is forwarded
//! through (`sse`), and usage as OpenAI's endpoints report it, read from whole answers and
//! streamed events and taken back out of a chunk (`usage`); and the one format it writes
//! for scrapers, Prometheus text (`prometheus`).
//!
//! This crate knows bytes and the OpenAI wire format's members; it knows no route, no
//! upstream, no configuration and no metric, so everything above can use it and it can
//! be fuzzed and tested alone (`fuzz/`).

pub mod json;
pub mod prometheus;
pub mod sse;
pub mod usage;

// Edges: the fuzz targets' properties (the crate's tests and the `fuzzing` feature).
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
