//! Small statistics helpers.

use std::time::Duration;

/// The median of some rates.
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

/// The `q` quantile (0..=1) of sorted durations.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Milliseconds with three decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// CPU time (user + system) this process has used so far, from `/proc/self/stat`
/// (zero where that is unavailable).
pub fn cpu_time() -> Duration {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| parse_stat(&stat))
        .map_or(Duration::ZERO, |(cpu, _)| cpu)
}

/// CPU time used so far by process `pid` and its children (one level: uvicorn's workers),
/// from `/proc/*/stat`; zero where that is unavailable.
pub fn tree_cpu_time(pid: u32) -> Duration {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    entries
        .filter_map(|e| {
            let e = e.ok()?;
            let own: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let (cpu, ppid) = parse_stat(&stat)?;
            (own == pid || ppid == pid).then_some(cpu)
        })
        .sum()
}

/// (utime + stime, ppid) from a `/proc/<pid>/stat` line.
fn parse_stat(stat: &str) -> Option<(Duration, u32)> {
    // Fields after the command name (which is in parentheses and may hold spaces): state,
    // ppid, …; utime and stime are fields 14 and 15 of the line, indexes 11 and 12 here.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // The kernel's USER_HZ is 100 on Linux.
    Some((Duration::from_millis(ticks * 10), ppid))
}
