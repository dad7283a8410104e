//! The workspace's dependency graph is the architecture: every arrow between the
//! `crates/cutover-*` crates that a `Cargo.toml` declares is drawn in
//! `docs/architecture.md`'s crate graph, and every arrow drawn there is declared.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The graph the crates' manifests declare: each crate and the workspace crates among its
/// (normal) dependencies, short names (`cutover-model` → `model`).
fn declared(root: &Path) -> Graph {
    let mut graph = Graph::new();
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        let manifest: toml::Table = toml::from_str(&text).unwrap();
        let name = manifest["package"]["name"].as_str().unwrap().to_owned();
        let dependencies = manifest.get("dependencies").and_then(|table| table.as_table()).cloned().unwrap_or_default();
        let uses = dependencies
            .keys()
            .filter_map(|dependency| dependency.strip_prefix("cutover-"))
            .map(str::to_owned)
            .collect();
        graph.insert(name, uses);
    }
    graph
}

/// The graph `docs/architecture.md` draws between its `crate-graph` markers.
fn drawn(root: &Path) -> Graph {
    let text = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let start = text.find("<!-- crate-graph -->").expect("docs/architecture.md has a crate graph");
    let end = text.find("<!-- /crate-graph -->").expect("the crate graph ends");
    text[start..end]
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, uses)| (name.trim().to_owned(), uses.split_whitespace().map(str::to_owned).collect()))
        .collect()
}

#[test]
fn the_crates_depend_on_each_other_exactly_as_the_architecture_draws_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (declared, drawn) = (declared(root), drawn(root));
    assert!(declared.len() >= 10, "the workspace's crates are found: {declared:?}");
    assert_eq!(declared, drawn, "Cargo.toml files (left) against docs/architecture.md's crate graph (right)");
}

#[test]
fn the_model_and_the_wire_formats_depend_on_no_other_layer() {
    let declared = declared(Path::new(env!("CARGO_MANIFEST_DIR")));
    for bottom in ["cutover-model", "cutover-wire"] {
        assert_eq!(declared[bottom], BTreeSet::new(), "{bottom} is a bottom layer");
    }
}
