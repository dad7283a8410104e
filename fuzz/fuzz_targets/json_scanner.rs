//! Fuzzes the wire crate through `cutover_wire::fuzzing::json_scanner`, which holds the
//! properties checked and is replayed on the committed seeds and reproducers by the
//! crate's own tests.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cutover_wire::fuzzing::json_scanner(data));
