//! The process's own gauges: resident memory, open file descriptors and their limit (the
//! standard `process_*` names that Prometheus client libraries export), and the async
//! runtime's live task count. They are what a leak shows in first, so the soak benchmark
//! and the load tests read them from `/metrics` like an operator's dashboard would.
//! Read from `/proc/self` on Linux at scrape time; elsewhere a gauge that cannot be read
//! is left out rather than reported as zero.

use std::fmt::Write;

use cutover_wire::prometheus::header;

/// Appends the process gauges to a metrics page.
pub fn render_process(out: &mut String) {
    if let Some(bytes) = resident_bytes() {
        header(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        let _ = writeln!(out, "process_resident_memory_bytes {bytes}");
    }
    if let Some(open) = open_fds() {
        header(out, "process_open_fds", "gauge", "Number of open file descriptors.");
        let _ = writeln!(out, "process_open_fds {open}");
    }
    if let Some(max) = max_fds() {
        header(out, "process_max_fds", "gauge", "Maximum number of open file descriptors (soft limit).");
        let _ = writeln!(out, "process_max_fds {max}");
    }
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        header(out, "cutover_runtime_tasks", "gauge", "Tasks alive on the async runtime.");
        let _ = writeln!(out, "cutover_runtime_tasks {}", runtime.metrics().num_alive_tasks());
    }
}

/// `VmRSS` of `/proc/self/status`, which the kernel gives in kB.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn open_fds() -> Option<usize> {
    // The directory's own descriptor, opened to list it, is counted too: take it out.
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count().saturating_sub(1))
}

/// The soft limit from `/proc/self/limits`: `Max open files  1024  4096  files`.
fn max_fds() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn renders_memory_descriptors_and_tasks_of_this_process() {
        let mut page = String::new();
        render_process(&mut page);
        let value = |name: &str| -> f64 {
            let line = page.lines().find(|line| line.starts_with(&format!("{name} "))).unwrap_or_default();
            line.rsplit(' ').next().and_then(|value| value.parse().ok()).unwrap_or(-1.0)
        };
        assert!(value("process_resident_memory_bytes") > 1_000_000.0, "{page}");
        assert!(value("process_open_fds") >= 3.0, "stdin, stdout, stderr at least: {page}");
        assert!(value("process_max_fds") >= value("process_open_fds"), "{page}");
        assert!(value("cutover_runtime_tasks") >= 0.0, "{page}");
    }
}
