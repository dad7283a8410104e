//! Stamps the binary with the git commit it was built from, for `cutover --version`:
//! `CUTOVER_BUILD_COMMIT` when set (a build from a source archive, or inside an image
//! build that has no `.git`), else `git rev-parse HEAD` of the source tree, else
//! `unknown`. Cargo reruns this when HEAD moves (the files git keeps it in), not on
//! every build.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=CUTOVER_BUILD_COMMIT");
    let commit = std::env::var("CUTOVER_BUILD_COMMIT")
        .ok()
        .filter(|commit| !commit.trim().is_empty())
        .or_else(git_head)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=CUTOVER_COMMIT={}", commit.trim());
}

/// HEAD's commit, and the files whose change moves it, watched for reruns.
fn git_head() -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let output = Command::new("git").args(args).output().ok()?;
        output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "HEAD"])?;
    // A missing file would rerun this on every build: only those that exist are watched.
    let watch = |file: &Path| {
        if file.exists() {
            println!("cargo:rerun-if-changed={}", file.display());
        }
    };
    // HEAD is per worktree; branches and packed refs are shared by all of them.
    if let (Some(git_dir), Some(common_dir)) =
        (git(&["rev-parse", "--git-dir"]), git(&["rev-parse", "--git-common-dir"]))
    {
        watch(&Path::new(&git_dir).join("HEAD"));
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watch(&Path::new(&common_dir).join(branch));
        }
        watch(&Path::new(&common_dir).join("packed-refs"));
    }
    Some(commit)
}
