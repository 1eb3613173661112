//! Logging dropped chunked events at a bounded rate.
//!
//! Every incomplete chunked event that is dropped (evicted to make room, or expired) is a
//! lost event, and each one is reported to the error hook. A hostile or broken server can
//! make the listener drop one per frame, so the log is bounded like the webhook server's
//! refusals: the first drop is a WARN line with its description, and the ones that follow
//! within [`PusherSource::chunk_drop_summary_interval`](super::PusherSource::chunk_drop_summary_interval)
//! are counted and written as one WARN summary (how many, and the last one's description)
//! once the interval has passed; each one is also logged at debug level.

use std::time::Duration;

use tokio::time::Instant;

/// How often dropped chunked events are summarized in the log unless told otherwise.
pub const DEFAULT_CHUNK_DROP_SUMMARY_INTERVAL: Duration = Duration::from_secs(10);

/// The log of one source's dropped chunked events (it outlives its connections).
#[derive(Debug)]
pub(crate) struct DropLog {
    interval: Duration,
    /// When the last WARN line was written.
    last_warn: Option<Instant>,
    /// Dropped since the last WARN line, not in a WARN line yet.
    pending: u64,
    /// The description of the last of those.
    last: String,
    /// Dropped since the source started.
    total: u64,
}

impl DropLog {
    pub(crate) fn new(interval: Duration) -> Self {
        DropLog {
            interval,
            last_warn: None,
            pending: 0,
            last: String::new(),
            total: 0,
        }
    }

    /// One dropped event, described: a WARN line if none was written for the last interval,
    /// counted for the next summary otherwise.
    pub(crate) fn record(&mut self, message: &str, now: Instant) {
        self.total += 1;
        tracing::debug!(%message, "chunked event dropped");
        if self.pending == 0 && !self.within_interval(now) {
            tracing::warn!(%message, total = self.total, "chunked event dropped");
            self.last_warn = Some(now);
            return;
        }
        self.pending += 1;
        self.last.clear();
        self.last.push_str(message);
        self.flush(now);
    }

    /// Writes the summary of the drops counted since the last WARN line, if the interval
    /// has passed since it.
    pub(crate) fn flush(&mut self, now: Instant) {
        if !self.within_interval(now) {
            self.summarize(now);
        }
    }

    /// Writes the summary of the drops counted so far, whenever the last WARN line was (the
    /// source is stopping).
    pub(crate) fn finish(&mut self) {
        self.summarize(Instant::now());
    }

    fn within_interval(&self, now: Instant) -> bool {
        self.last_warn
            .is_some_and(|at| now.saturating_duration_since(at) < self.interval)
    }

    fn summarize(&mut self, now: Instant) {
        if self.pending == 0 {
            return;
        }
        let dropped = std::mem::take(&mut self.pending);
        tracing::warn!(
            dropped,
            total = self.total,
            last = %self.last,
            "{dropped} more chunked events dropped since the last such line (each reported to the error hook)",
        );
        self.last.clear();
        self.last_warn = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// The WARN lines written while `f` runs (on this thread).
    fn warn_lines(f: impl FnOnce()) -> Vec<String> {
        #[derive(Clone)]
        struct Lines(Arc<Mutex<Vec<u8>>>);
        impl io::Write for Lines {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines(Arc::new(Mutex::new(Vec::new())));
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_of_drops_writes_one_line_per_interval() {
        let interval = Duration::from_secs(10);
        let mut log = DropLog::new(interval);
        let t = Instant::now();
        // 10,000 drops within one interval: the first is told, the rest counted.
        let lines = warn_lines(|| {
            for n in 0..10_000u64 {
                log.record(
                    &format!("`flood-{n}` evicted"),
                    t + Duration::from_micros(n),
                );
            }
            log.flush(t + Duration::from_secs(9));
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("`flood-0` evicted"), "{lines:?}");
        // Once the interval has passed, one summary with the count and the last one.
        let lines = warn_lines(|| log.flush(t + interval));
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("9999 more chunked events dropped")
                && lines[0].contains("`flood-9999` evicted")
                && lines[0].contains("total=10000"),
            "{lines:?}"
        );
        assert!(warn_lines(|| log.flush(t + interval * 5)).is_empty());
        // Drops that keep coming: at most one line per interval, none lost from the counts.
        let start = t + interval * 5;
        let lines = warn_lines(|| {
            for n in 0..1_000u64 {
                log.record("again", start + Duration::from_millis(n * 50));
            }
            log.finish();
        });
        // 50 s of drops: a line when they resume, then one per 10 s, and the last summary.
        assert!(lines.len() <= 7, "{lines:#?}");
        let told: u64 = lines
            .iter()
            .map(|l| {
                l.split("dropped=")
                    .nth(1)
                    .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1)
            })
            .sum();
        assert_eq!(told, 1_000, "{lines:#?}");
    }
}
