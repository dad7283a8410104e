//! `cutover --version`: the crate's version and the git commit the binary was built
//! from, so that a running gateway (or an image) can be traced to its source.

use std::process::Command;

use crate::binary::BIN;

#[test]
fn version_names_the_release_and_the_commit_it_was_built_from() {
    let output = Command::new(BIN).arg("--version").env_clear().output().unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(output.status.success(), "{printed}");
    let expected_prefix = format!("cutover {} (commit ", env!("CARGO_PKG_VERSION"));
    let commit = printed
        .strip_prefix(&expected_prefix)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not `{expected_prefix}…)`: {printed:?}"));
    // Built from a git checkout (as the suite always is), the commit is its HEAD.
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned());
    match head {
        Some(head) => assert_eq!(commit, head, "{printed}"),
        None => assert!(commit == "unknown" || commit.len() == 40, "{printed}"),
    }
}
