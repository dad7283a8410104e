//! The container image (`Containerfile`, built by `scripts/image` from the static binary
//! of `scripts/release`), run with podman on the host network in front of two mocks:
//! `/healthz` and `/readyz` answer, a chat completion is proxied, the process is not
//! root, `podman stop` (SIGTERM) lets an in-flight stream finish with `[DONE]` and the
//! container exits 0, and the state file on its volume carries the weight into a new
//! container. Where podman cannot run, the test prints why and does nothing else.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};

use crate::binary::{Mock, Scratch, Streaming, get, post_json, sse_data};
use crate::wait::until;

const ADMIN_TOKEN: &str = "admin-token-image";
/// The release build the image needs, on a cold machine: a few minutes on 2 cores.
const IMAGE_BUILD_WITHIN: Duration = Duration::from_secs(1800);
/// What podman needs on this kind of machine (see `scripts/image`).
const PODMAN_FLAGS: [&str; 6] = ["--storage-driver", "vfs", "--runtime", "runc", "--cgroup-manager", "cgroupfs"];

/// podman with this machine's flags and a containers.conf without default ulimits.
struct Podman {
    conf: PathBuf,
}

impl Podman {
    fn new(scratch: &Scratch) -> Podman {
        Podman { conf: scratch.write("containers.conf", "[containers]\ndefault_ulimits = []\n") }
    }

    fn command(&self) -> Command {
        let mut command = Command::new("podman");
        command.args(PODMAN_FLAGS).env("CONTAINERS_CONF", &self.conf);
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap_or_else(|error| panic!("podman {args:?}: {error}"))
    }

    /// `podman ARGS`, which must succeed; its stdout, trimmed.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(output.status.success(), "podman {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Why podman cannot run containers here, if it cannot.
    fn unavailable(&self) -> Option<String> {
        match self.command().arg("info").output() {
            Err(error) => Some(format!("podman is not installed ({error}); apt-get install podman buildah runc")),
            Ok(output) if !output.status.success() => {
                Some(format!("`podman info` failed: {}", String::from_utf8_lossy(&output.stderr).trim()))
            }
            Ok(_) => None,
        }
    }
}

/// A container, removed (forcibly) on drop; its log printed when the test fails.
struct Container<'a> {
    podman: &'a Podman,
    name: String,
}

impl Container<'_> {
    fn inspect(&self, format: &str) -> String {
        self.podman.ok(&["inspect", "--format", format, &self.name])
    }

    fn log(&self) -> String {
        let output = self.podman.run(&["logs", &self.name]);
        String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("----- log of container {} -----\n{}----- end -----", self.name, self.log());
        }
        let _ = self.podman.run(&["rm", "--force", "--time", "0", &self.name]);
    }
}

/// Builds the image with `scripts/image` (the release build first) and returns its name.
async fn build_image() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut command = tokio::process::Command::new(root.join("scripts/image"));
    command.current_dir(root).kill_on_drop(true);
    let output = tokio::time::timeout(IMAGE_BUILD_WITHIN, command.output())
        .await
        .unwrap_or_else(|_| panic!("scripts/image did not finish within {IMAGE_BUILD_WITHIN:?}"))
        .unwrap_or_else(|error| panic!("cannot run scripts/image: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "scripts/image failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let (image, size) = stdout.trim().split_once(' ').unwrap_or_else(|| panic!("scripts/image printed {stdout:?}"));
    println!("image {image}: {size} bytes");
    image.to_owned()
}

/// Ports for the proxy and admin listeners, free a moment ago.
fn two_ports() -> (u16, u16) {
    let listeners = [0, 1].map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let ports = listeners.each_ref().map(|listener| listener.local_addr().unwrap().port());
    (ports[0], ports[1])
}

/// The configuration mounted at /etc/cutover/cutover.toml: two mocks, the state on the
/// volume.
fn config(proxy: u16, admin: u16, primary: &Mock, candidate: &Mock) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:{proxy}\"\nadmin_listen = \"127.0.0.1:{admin}\"\n\n\
         [admin]\ntoken_env = \"ADMIN_TOKEN\"\n\n[state]\npath = \"/var/lib/cutover/cutover.db\"\n\n\
         [upstreams.primary]\nbase_url = \"{}\"\n\n[upstreams.candidate]\nbase_url = \"{}\"\n\n\
         [[routes]]\nname = \"default\"\nprimary = \"primary\"\ncandidate = \"candidate\"\nsticky = \"header:x-user-id\"\n",
        primary.base_url(),
        candidate.base_url()
    )
}

/// Starts a container of `image` named `name` with the config and state folders mounted,
/// and waits until its admin port says it is alive.
async fn run_container<'a>(
    podman: &'a Podman,
    image: &str,
    name: &str,
    (config_dir, state_dir): (&Path, &Path),
    admin: u16,
) -> Container<'a> {
    let config_mount = format!("{}:/etc/cutover:ro", config_dir.display());
    let state_mount = format!("{}:/var/lib/cutover", state_dir.display());
    let token = format!("ADMIN_TOKEN={ADMIN_TOKEN}");
    podman.ok(&[
        "run",
        "--detach",
        "--name",
        name,
        "--network",
        "host",
        "-v",
        &config_mount,
        "-v",
        &state_mount,
        "-e",
        &token,
        image,
    ]);
    let container = Container { podman, name: name.to_owned() };
    until("the container's /healthz", async || {
        assert_eq!(container.inspect("{{.State.Running}}"), "true", "the container stopped:\n{}", container.log());
        let alive = tokio::net::TcpStream::connect(("127.0.0.1", admin)).await.is_ok()
            && get(&format!("http://127.0.0.1:{admin}/healthz"), &[]).await.status == 200;
        alive.then_some(())
    })
    .await;
    container
}

fn weight_of(view: &Value) -> f64 {
    view["weight"].as_f64().unwrap_or_else(|| panic!("no weight in {view}"))
}

#[tokio::test]
async fn the_image_serves_as_non_root_drains_on_podman_stop_and_keeps_its_state_on_the_volume() {
    let scratch = Scratch::new("image");
    let podman = Podman::new(&scratch);
    if let Some(reason) = podman.unavailable() {
        println!("SKIPPED: {reason}");
        return;
    }
    let image = build_image().await;
    let primary = Mock::start(&scratch, "primary", &["--chunk-gap", "100", "--tokens", "20"], &[]).await;
    let candidate = Mock::start(&scratch, "candidate", &[], &[]).await;
    let (proxy, admin) = two_ports();
    let config_dir = scratch.path().join("etc");
    let state_dir = scratch.path().join("state");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::create_dir_all(&state_dir).unwrap();
    std::fs::write(config_dir.join("cutover.toml"), config(proxy, admin, &primary, &candidate)).unwrap();
    // The image's user owns its state, as a volume's owner would be set for it.
    std::os::unix::fs::chown(&state_dir, Some(65532), Some(65532)).unwrap();
    let name = format!("cutover-e2e-{}", std::process::id());
    let folders = (config_dir.as_path(), state_dir.as_path());
    let container = run_container(&podman, &image, &name, folders, admin).await;

    let admin_url = |path: &str| format!("http://127.0.0.1:{admin}{path}");
    let ready = get(&admin_url("/readyz"), &[]).await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    let pid = container.inspect("{{.State.Pid}}");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status.lines().find_map(|line| line.strip_prefix("Uid:")).unwrap_or_default().split_whitespace().next();
    assert_eq!(uid, Some("65532"), "the gateway runs as {uid:?}");

    let chat = json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]});
    let chat_url = format!("http://127.0.0.1:{proxy}/v1/chat/completions");
    let answer = post_json(&chat_url, &[("x-user-id", "u-1")], &chat).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("x-cutover-upstream"), Some("primary"));
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let set =
        post_json(&admin_url("/admin/rollouts/default/weight"), &[("authorization", &auth)], &json!({"weight": 37}))
            .await;
    assert_eq!(set.status, 200, "{}", set.text());

    // A stream in flight when the container is stopped ends whole, and the exit is clean.
    let streamed = json!({"model": "gpt-4.1", "stream": true, "messages": [{"role": "user", "content": "a story"}]});
    let mut stream = Streaming::open(&chat_url, &[("x-user-id", "reader-on-primary")], &streamed).await;
    let mut received = stream.next().await.expect("a first chunk").to_vec();
    let stop = {
        let (conf, name) = (podman.conf.clone(), name.clone());
        tokio::task::spawn_blocking(move || Podman { conf }.ok(&["stop", "--time", "30", &name]))
    };
    received.extend(stream.rest().await);
    stop.await.unwrap();
    let text = String::from_utf8_lossy(&received);
    assert_eq!(sse_data(&text).last().map(String::as_str), Some("[DONE]"), "the stream was cut:\n{text}");
    assert_eq!(container.inspect("{{.State.ExitCode}}"), "0", "{}", container.log());
    drop(container);

    // A new container on the same volume restores the weight set in the first.
    let again = run_container(&podman, &image, &format!("{name}-again"), folders, admin).await;
    let view = get(&admin_url("/admin/rollouts/default"), &[("authorization", &auth)]).await;
    assert_eq!(view.status, 200, "{}", view.text());
    assert_eq!(weight_of(&view.json()), 37.0, "{}\n{}", view.text(), again.log());
}
