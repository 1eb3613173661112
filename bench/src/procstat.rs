//! What a process holds, from `/proc/<pid>`: resident memory, its peak, open descriptors.

use std::time::Duration;

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in KiB; 0 where unreadable.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Resident set size of `pid`, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS")
}

/// Peak resident set size of `pid` over its life, in KiB.
pub fn hwm_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM")
}

/// Open file descriptors of `pid`.
pub fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// MiB with one decimal.
pub fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// Samples `pid`'s RSS and descriptors every `every` until dropped; keeps the peaks.
pub struct Sampler {
    peak: std::sync::Arc<std::sync::Mutex<(u64, usize)>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    pub fn start(pid: u32, every: Duration) -> Sampler {
        let peak = std::sync::Arc::new(std::sync::Mutex::new((rss_kib(pid), fds(pid))));
        let p = std::sync::Arc::clone(&peak);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let (r, f) = (rss_kib(pid), fds(pid));
                if let Ok(mut peak) = p.lock() {
                    peak.0 = peak.0.max(r);
                    peak.1 = peak.1.max(f);
                }
            }
        });
        Sampler { peak, task }
    }

    /// (peak RSS KiB, peak descriptors) so far.
    pub fn peak(&self) -> (u64, usize) {
        self.peak.lock().map_or((0, 0), |p| *p)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}
