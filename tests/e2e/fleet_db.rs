//! A throwaway PostgreSQL cluster for the fleet tests: `initdb` in a temporary directory,
//! `pg_ctl` to start and stop it (the outage test stops it under load), removed on drop.
//! PostgreSQL refuses to run as root, so as root (CI) every command runs as `nobody`
//! through `setpriv`, in a directory handed to it. Without PostgreSQL's binaries the
//! cluster is `None` and the tests that need it say they were skipped (`.ci/run`
//! installs Debian's `postgresql`, so CI always has them).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The database role the tests connect as (trust authentication, loopback only).
const ROLE: &str = "cutover";

pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_root: bool,
}

impl Cluster {
    /// A new cluster, started; `None` (with a message saying the test is skipped) when
    /// no PostgreSQL binaries are installed.
    pub fn start(tag: &str) -> Option<Cluster> {
        let Some(bin) = binaries() else {
            println!("SKIPPED {tag}: no PostgreSQL binaries (initdb, pg_ctl) found; install Debian's postgresql");
            return None;
        };
        let as_root = run_output("id", &["-u"]).trim() == "0";
        let dir = std::env::temp_dir().join(format!("cutover-pg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if as_root {
            let owned = Command::new("chown").args(["-R", "nobody:nogroup"]).arg(&dir).status().unwrap();
            assert!(owned.success(), "cannot hand {} to nobody", dir.display());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cluster = Cluster { bin, dir, port, as_root };
        let data = cluster.data();
        cluster.run("initdb", &["-D", &data, "-U", ROLE, "--auth=trust", "-E", "UTF8", "--no-sync"]);
        cluster.start_server();
        Some(cluster)
    }

    /// The connection string, as the gateways read it from the environment.
    pub fn url(&self) -> String {
        format!("postgres://{ROLE}@127.0.0.1:{}/postgres", self.port)
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// Starts the server (again, after `stop`) and waits until it accepts connections.
    pub fn start_server(&self) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.display());
        let log = self.dir.join("server.log").display().to_string();
        self.run("pg_ctl", &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "start"]);
    }

    /// Stops the server at once (`-m immediate`: connections dropped, as a crash would).
    pub fn stop_server(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
    }

    /// Runs one SQL statement with `psql` and answers its unaligned output.
    pub fn sql(&self, statement: &str) -> String {
        let psql = self.bin.join("psql");
        let port = self.port.to_string();
        let output = Command::new(&psql)
            .args(["-h", "127.0.0.1", "-p", &port, "-U", ROLE, "-d", "postgres", "-At", "-c", statement])
            .output()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", psql.display()));
        assert!(output.status.success(), "{statement}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// `tool` of the cluster's PostgreSQL, as `nobody` when the tests run as root
    /// (initdb and pg_ctl refuse root).
    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        if self.as_root {
            let mut command = Command::new("setpriv");
            command.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"]).arg(&program);
            command
        } else {
            Command::new(&program)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let program = self.bin.join(tool);
        let output = self
            .command(tool)
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", program.display()));
        assert!(
            output.status.success(),
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The directory of `initdb` and `pg_ctl`: Debian's versioned one, else the `PATH`'s.
fn binaries() -> Option<PathBuf> {
    let debian = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(debian)
        .map(|entries| entries.filter_map(|entry| entry.ok()).map(|entry| entry.path().join("bin")).collect())
        .unwrap_or_default();
    versions.sort();
    if let Some(bin) = versions.into_iter().rev().find(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
    {
        return Some(bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists())
}

fn run_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default()
}
