//! A server this project did not write (uvicorn, aiohttp, Node, a Go binary, nginx) as a
//! child process of the test: output kept in the scratch directory and printed when the
//! test fails, killed and reaped on drop. (The harness's `Process` runs only `cutover`.)

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::binary::Scratch;

/// A loopback address whose port was free a moment ago.
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// `N` loopback addresses whose ports were free a moment ago, distinct: every listener is
/// held until all are picked (two `free_addr` calls in a row can give the same port, and
/// CI once saw nginx serve both of a relay's servers on one).
pub fn free_addrs<const N: usize>() -> [SocketAddr; N] {
    let listeners: [TcpListener; N] = std::array::from_fn(|_| TcpListener::bind("127.0.0.1:0").unwrap());
    listeners.map(|listener| listener.local_addr().unwrap())
}

pub struct Server {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Server {
    /// Starts `command` with stdin closed and stdout and stderr in `NAME.log`; `hint` says
    /// what to install when it cannot start.
    pub fn spawn(scratch: &Scratch, name: &str, command: &mut Command, hint: &str) -> Server {
        let log = scratch.path().join(format!("{name}.log"));
        let output = std::fs::File::create(&log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {name} ({error}): {hint}"));
        Server { name: name.to_owned(), child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails with the log, and `hint`, if the server has exited.
    fn still_running(&mut self, hint: &str) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited at start with {status}: {hint}\n{}", self.name, self.log());
        }
    }

    /// Waits until `addr` accepts connections and the server is still running after that
    /// (a server that lost the port to another process exits instead of serving it).
    pub async fn ready(mut self, addr: SocketAddr, hint: &str) -> Server {
        crate::wait::until(&format!("{} to listen on {addr}", self.name), async || {
            self.still_running(hint);
            tokio::net::TcpStream::connect(addr).await.ok()?;
            self.still_running(hint);
            Some(())
        })
        .await;
        self
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("----- output of {} -----\n{}----- end of {} -----", self.name, self.log(), self.name);
        }
    }
}
