//! The committed seeds and reproducers of each fuzz target, replayed through its
//! properties.

use std::path::PathBuf;

/// The files of `fuzz/<kind>/<target>`, by name.
fn inputs(kind: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz").join(kind).join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files.into_iter().map(|path| (path.display().to_string(), std::fs::read(&path).unwrap())).collect()
}

/// Every seed and reproducer of `target` through `check`; there must be some.
fn replay(target: &str, check: fn(&[u8]), kinds: &[&str]) {
    let inputs: Vec<_> = kinds.iter().flat_map(|kind| inputs(kind, target)).collect();
    assert!(!inputs.is_empty(), "no committed input for {target}");
    for (name, data) in inputs {
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{name} fails {target}'s properties");
    }
}

#[test]
fn the_sse_framers_seeds_and_reproducers_keep_its_properties() {
    replay("sse_framer", super::sse_framer, &["seeds", "regressions"]);
}

#[test]
fn the_json_scanners_seeds_keep_its_properties() {
    replay("json_scanner", super::json_scanner, &["seeds"]);
}
