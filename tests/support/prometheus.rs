//! Scraping a Prometheus endpoint and reading it with the reference parser: PyPI
//! `prometheus-client`'s `text_string_to_metric_families`, run by the peers' Python
//! (`tests/peers/prometheus_parse.py`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Deserialize;
use tokio::io::AsyncWriteExt;

/// One metric family as the parser read it.
#[derive(Debug, Deserialize)]
pub struct Family {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub samples: Vec<Sample>,
}

/// One sample: its full name (`…_total`, `…_bucket`), labels and value.
#[derive(Debug, Deserialize)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed exposition.
#[derive(Debug)]
pub struct Scrape {
    pub families: Vec<Family>,
}

impl Scrape {
    /// The samples named `name` whose labels include `labels`.
    pub fn samples<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.families
            .iter()
            .flat_map(|f| &f.samples)
            .filter(move |s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
    }

    /// The sum of the samples named `name` whose labels include `labels` (0 if none).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples(name, labels).map(|s| s.value).sum()
    }

    /// The value of the one sample named `name` with exactly `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let exact: Vec<&Sample> = self
            .samples(name, labels)
            .filter(|s| s.labels.len() == labels.len())
            .collect();
        assert!(
            exact.len() <= 1,
            "several samples {name}{labels:?}: {exact:?}"
        );
        exact.first().map(|s| s.value)
    }

    /// The type (`counter`, `gauge`, `histogram`, …) of the family named `name` (the
    /// parser names a counter's family without its `_total`).
    pub fn kind(&self, name: &str) -> Option<&str> {
        self.families
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.kind.as_str())
    }
}

/// The peers' Python with `prometheus_client`; `None` (skip) or a panic under `CI` when it
/// is missing.
pub fn parser() -> Option<PathBuf> {
    crate::peers::python_with("prometheus_client")
}

/// Parses `text` with the reference parser; panics if it refuses the text.
pub async fn parse(python: &Path, text: &str) -> Scrape {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers/prometheus_parse.py");
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the Prometheus parser");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(text.as_bytes()).await.expect("write");
    drop(stdin);
    let out = crate::wait::within("the Prometheus parser", child.wait_with_output())
        .await
        .expect("run the Prometheus parser");
    assert!(
        out.status.success(),
        "prometheus_client refused the exposition: {}\n--- exposition ---\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    Scrape {
        families: serde_json::from_slice(&out.stdout).expect("the parser's JSON"),
    }
}
