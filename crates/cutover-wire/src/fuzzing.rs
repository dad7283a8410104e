//! The fuzz targets' properties, in the crate they check: `fuzz/` (cargo-fuzz, nightly,
//! `scripts/fuzz`) calls them on the fuzzer's inputs, and the suite replays the committed
//! seeds and reproducers through them (`tests`), so the properties are compiled and run
//! with every change, not only when someone fuzzes. Each function panics when a property
//! fails. Built for the crate's tests and with the `fuzzing` feature (the fuzz package's).

mod json_scanner;
mod sse_framer;

pub use json_scanner::json_scanner;
pub use sse_framer::sse_framer;

#[cfg(test)]
mod tests;
