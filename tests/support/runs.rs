//! Counting handler runs across listeners and processes: which node ran which event, how
//! often, and what is missing or doubled.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use listener_core::{Filter, Handler, Meta};

/// One handler run as a node reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub node: String,
    pub event_id: String,
    pub attempt: u32,
    /// `true` once the handler finished (a run started and never finished was cut).
    pub done: bool,
}

/// Runs reported by in-process handlers and by child processes' output lines.
#[derive(Clone, Default)]
pub struct Tally {
    runs: Arc<Mutex<Vec<RunRecord>>>,
}

impl Tally {
    pub fn new() -> Self {
        Self::default()
    }

    /// A handler named `counted`, matching every Slack message, that records each run as
    /// `node`'s, waiting `delay` before it finishes.
    pub fn handler(&self, node: &str, delay: Duration) -> Handler {
        let tally = self.clone();
        let node = node.to_owned();
        Handler::new(
            "counted",
            Filter::new().name("SLACK_RECEIVE_MESSAGE"),
            move |meta: Meta| {
                let tally = tally.clone();
                let node = node.clone();
                async move {
                    let index = tally.push(RunRecord {
                        node,
                        event_id: meta.event_id().to_owned(),
                        attempt: meta.attempt(),
                        done: false,
                    });
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    tally.finish(index);
                }
            },
        )
    }

    pub fn push(&self, run: RunRecord) -> usize {
        let mut runs = self.runs.lock().unwrap();
        runs.push(run);
        runs.len() - 1
    }

    pub fn finish(&self, index: usize) {
        self.runs.lock().unwrap()[index].done = true;
    }

    /// A line a child node printed: `START <node> <event_id> <attempt>` or
    /// `DONE <node> <event_id>`.
    pub fn read_line(&self, line: &str) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            ["START", node, id, attempt] => {
                self.push(RunRecord {
                    node: (*node).to_owned(),
                    event_id: (*id).to_owned(),
                    attempt: attempt.parse().unwrap_or(0),
                    done: false,
                });
            }
            ["DONE", node, id] => {
                let mut runs = self.runs.lock().unwrap();
                if let Some(run) = runs
                    .iter_mut()
                    .rev()
                    .find(|r| r.node == *node && r.event_id == *id && !r.done)
                {
                    run.done = true;
                }
            }
            _ => {}
        }
    }

    pub fn runs(&self) -> Vec<RunRecord> {
        self.runs.lock().unwrap().clone()
    }

    /// Events with at least one finished run.
    pub fn handled(&self) -> BTreeSet<String> {
        self.runs
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.done)
            .map(|r| r.event_id.clone())
            .collect()
    }

    /// Started runs per event.
    pub fn starts(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for r in self.runs.lock().unwrap().iter() {
            *out.entry(r.event_id.clone()).or_insert(0) += 1;
        }
        out
    }

    /// Finished runs per node.
    pub fn per_node(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for r in self.runs.lock().unwrap().iter().filter(|r| r.done) {
            *out.entry(r.node.clone()).or_insert(0) += 1;
        }
        out
    }
}

/// A listener child process (the `js-node` binary of this crate), whose output lines go
/// into a [`Tally`].
pub struct ChildNode {
    pub name: String,
    child: std::process::Child,
    ready: std::sync::mpsc::Receiver<()>,
}

impl ChildNode {
    /// Starts `bin` with `env` (plus `NODE_NAME=name`); its lines go to `tally`.
    pub fn spawn(bin: &str, name: &str, env: &[(String, String)], tally: &Tally) -> ChildNode {
        use std::io::BufRead;
        let mut cmd = std::process::Command::new(bin);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("NODE_NAME", name)
            .env(
                "RUST_LOG",
                std::env::var("NODE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start a js-node process");
        let stdout = child.stdout.take().expect("piped stdout");
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let tally = tally.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line == "READY" {
                    let _ = ready_tx.send(());
                }
                tally.read_line(&line);
            }
        });
        ChildNode {
            name: name.to_owned(),
            child,
            ready,
        }
    }

    /// Waits until the node says every source is connected.
    pub async fn wait_ready(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            match self.ready.try_recv() {
                Ok(()) => return,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    panic!("node {} exited before it was ready", self.name)
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => {}
            }
            assert!(
                std::time::Instant::now() < deadline,
                "node {} not ready within 30 s",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for it to exit.
    pub fn terminate(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for ChildNode {
    fn drop(&mut self) {
        self.kill();
    }
}
