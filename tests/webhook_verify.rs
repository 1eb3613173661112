//! Cross-implementation checks against the Standard Webhooks reference implementation
//! (PyPI `standardwebhooks`, installed by scripts/install-peers.sh): deliveries it signs are
//! accepted and dispatched by our server, and our signatures pass its verifier.

use listener_core::webhook::{signed_headers, WebhookSecret};
use listener_e2e::record::Recorder;
use listener_e2e::wait::within;
use listener_e2e::webhook::{now, Server, SECRET};

fn script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/standardwebhooks_peer.py")
}

fn body_file(body: &[u8]) -> tempfile_path::TempFile {
    tempfile_path::TempFile::with(body)
}

mod tempfile_path {
    /// A file removed on drop.
    pub struct TempFile(pub std::path::PathBuf);
    impl TempFile {
        pub fn with(bytes: &[u8]) -> Self {
            let path = std::env::temp_dir().join(format!(
                "listener-webhook-{}-{}.json",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            ));
            std::fs::write(&path, bytes).unwrap();
            TempFile(path)
        }
    }
    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_signed_by_the_reference_implementation_are_accepted_and_dispatched() {
    let Some(python) = listener_e2e::peers::python_peer() else {
        return;
    };
    let mut rec = Recorder::new();
    let server = Server::plain(&rec);
    let body = listener_e2e::fixtures::bytes("v3_slack_receive_message.json");
    let file = body_file(&body);
    let out = within(
        "the reference implementation to post",
        tokio::process::Command::new(&python)
            .arg(script())
            .args(["post", &server.url, SECRET, "msg_from_python"])
            .arg(&file.0)
            .output(),
    )
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "200");
    let seen = rec.next().await;
    assert_eq!(seen.event.event_id, "msg_from_python");
    assert_eq!(seen.event.trigger_slug, "SLACK_RECEIVE_MESSAGE");
    assert_eq!(
        seen.event.payload["text"],
        "who broke the staging deploy again"
    );

    within("shutdown", server.handle.shutdown()).await.unwrap();
}

#[tokio::test]
async fn our_signatures_pass_the_reference_verifier() {
    let Some(python) = listener_e2e::peers::python_peer() else {
        return;
    };
    let body = br#"{"id":"evt_1","type":"composio.trigger.message","metadata":{},"data":{"x":1}}"#;
    let verify = |secret: &'static str, headers: Vec<(String, String)>| {
        let python = python.clone();
        let file = body_file(body);
        async move {
            let map: serde_json::Map<String, serde_json::Value> = headers
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect();
            let out = tokio::process::Command::new(&python)
                .arg(script())
                .args([
                    "verify",
                    secret,
                    &serde_json::Value::Object(map).to_string(),
                ])
                .arg(&file.0)
                .output()
                .await
                .unwrap();
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        }
    };
    let std_secret = WebhookSecret::standard(SECRET).unwrap();
    let headers: Vec<(String, String)> = signed_headers(&std_secret, "msg_rust", now(), body)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    assert_eq!(verify(SECRET, headers.clone()).await, "OK");

    // Their verifier refuses our signature when the id was changed after signing...
    let mut tampered = headers.clone();
    tampered[0].1 = "msg_other".into();
    assert!(verify(SECRET, tampered).await.starts_with("FAIL"));
    // ...and a Composio-scheme signature (raw secret bytes) is not a Standard Webhooks one.
    let composio: Vec<(String, String)> =
        signed_headers(&WebhookSecret::composio(SECRET), "msg_rust", now(), body)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
    assert!(verify(SECRET, composio).await.starts_with("FAIL"));
}
