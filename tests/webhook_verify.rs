//! The verifier against published data and real third-party implementations:
//!
//! - the Standard Webhooks specification's test vectors (positive and negative), and the same
//!   payloads under Composio's raw-secret scheme, through the public API;
//! - the Standard Webhooks reference implementation (PyPI `standardwebhooks`) and Composio's
//!   own Python SDK (PyPI `composio`), both installed by scripts/install-peers.sh: deliveries
//!   the reference implementation signs are accepted and dispatched by our server, and our
//!   signatures pass both verifiers, each under its own key scheme.

use std::time::Duration;

use listener_core::webhook::{
    sign, signed_headers, verify, verify_signature, VerifyError, WebhookSecret, DEFAULT_TOLERANCE,
};
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

/// Test vectors of the Standard Webhooks reference libraries, copied as data from
/// `standard-webhooks/standard-webhooks`, `libraries/python/tests/test_webhooks.py` (the same
/// values are in `libraries/javascript/src/webhook.test.ts` and `libraries/go/webhook_test.go`;
/// the partial and malformed signatures come from the JavaScript file, the year-2000 timestamp
/// from the Go file).
mod spec {
    pub const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    pub const PAYLOAD: &[u8] = br#"{"test": 2432232314}"#;
    /// Base64; the libraries accept it with or without the `whsec_` prefix.
    pub const SECRET: &str = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    /// `test_sign_function`: this timestamp and key give this signature.
    pub const TIMESTAMP: i64 = 1614265330;
    pub const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    /// `test_invalid_signature_raises_error` (the last character changed).
    pub const INVALID_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=";
    /// "invalid signature throws error" (JavaScript): not even valid base64 of a MAC.
    pub const GARBAGE_SIGNATURE: &str = "v1,dawfeoifkpqwoekfpqoekf";
    /// `test_multi_sig_payload_is_valid`: wrong or other-version signatures around a valid one.
    pub const OTHER_SIGNATURES: [&str; 3] = [
        "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
        "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
        "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
    ];
    /// "invalid timestamp fails when ignoring tolerance" (Go): 2000-01-01T00:00:00Z.
    pub const YEAR_2000: i64 = 946684800;
    /// The tests' tolerance: five minutes.
    pub const TOLERANCE_SECS: i64 = 300;
}

/// The same payloads under Composio's scheme: the key is the secret string's UTF-8 bytes,
/// `whsec_` prefix and all. Computed as Composio's Python SDK computes them
/// (`composio/core/models/triggers.py`, `_verify_webhook_signature`:
/// `hmac.new(key=secret.encode("utf-8"), msg=f"{id}.{timestamp}.{payload}".encode("utf-8"),
/// digestmod=hashlib.sha256)`, base64, `v1,` prefix), for `spec::MSG_ID`, `spec::TIMESTAMP`
/// and `spec::PAYLOAD`.
mod composio {
    /// Secret `whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw`.
    pub const PREFIXED_SIGNATURE: &str = "v1,TcxlhK9b6UD6iVI1ZU2tTqp8PEVfYRseNNfa6b+LcUg=";
    /// Secret `MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw`.
    pub const BARE_SIGNATURE: &str = "v1,ELhqG0Ku1gwOc1f4jyKdp3SFGFLAOdJ9bvpWLciCakI=";
}

fn vector_headers(id: &str, timestamp: &str, signature: &str) -> Vec<(String, String)> {
    vec![
        ("webhook-id".into(), id.into()),
        ("webhook-timestamp".into(), timestamp.into()),
        ("webhook-signature".into(), signature.into()),
    ]
}

/// Checks a fixed-time vector: the timestamp check is off (tolerance 0), as the reference
/// libraries' "ignoring tolerance" variants do; the tolerance cases below sign as of now.
fn check_fixed(
    headers: &[(String, String)],
    secrets: &[WebhookSecret],
) -> Result<(String, i64), VerifyError> {
    verify_signature(headers, spec::PAYLOAD, secrets, Duration::ZERO)
}

#[test]
fn standard_webhooks_vectors_sign_and_verify() {
    let prefixed = format!("whsec_{}", spec::SECRET);
    for secret in [
        WebhookSecret::standard(spec::SECRET).unwrap(),
        WebhookSecret::standard(prefixed.clone()).unwrap(),
    ] {
        assert_eq!(
            sign(&secret, spec::MSG_ID, spec::TIMESTAMP, spec::PAYLOAD),
            spec::SIGNATURE
        );
    }
    let ts = spec::TIMESTAMP.to_string();
    let h = vector_headers(spec::MSG_ID, &ts, spec::SIGNATURE);
    // With and without the prefix (Standard Webhooks scheme), and a scheme-less `whsec_`
    // secret, which is tried both ways.
    for secret in [
        WebhookSecret::standard(spec::SECRET).unwrap(),
        WebhookSecret::standard(prefixed.clone()).unwrap(),
        WebhookSecret::new(prefixed.clone()),
    ] {
        let (id, timestamp) = check_fixed(&h, &[secret]).unwrap();
        assert_eq!((id.as_str(), timestamp), (spec::MSG_ID, spec::TIMESTAMP));
    }
    // Several signatures, one valid: passes.
    let multi = [
        spec::OTHER_SIGNATURES[0],
        spec::OTHER_SIGNATURES[1],
        spec::SIGNATURE,
        spec::OTHER_SIGNATURES[2],
    ]
    .join(" ");
    let std_secret = [WebhookSecret::standard(spec::SECRET).unwrap()];
    assert!(check_fixed(&vector_headers(spec::MSG_ID, &ts, &multi), &std_secret).is_ok());
}

#[test]
fn standard_webhooks_negative_vectors_fail_each_with_its_own_error() {
    let secret = [WebhookSecret::standard(spec::SECRET).unwrap()];
    let ts = spec::TIMESTAMP.to_string();
    let good = vector_headers(spec::MSG_ID, &ts, spec::SIGNATURE);
    for (i, name) in ["webhook-id", "webhook-timestamp", "webhook-signature"]
        .into_iter()
        .enumerate()
    {
        let mut h = good.clone();
        h.remove(i);
        let err = check_fixed(&h, &secret).unwrap_err();
        assert!(
            matches!(err, VerifyError::MissingHeader(n) if n == name),
            "{name}: {err}"
        );
        assert_eq!(err.to_string(), format!("missing `{name}` header"));
    }
    let h = vector_headers(spec::MSG_ID, "hello", spec::SIGNATURE);
    assert!(matches!(
        check_fixed(&h, &secret),
        Err(VerifyError::MalformedTimestamp)
    ));
    let partial = &spec::SIGNATURE[..8];
    for bad in [
        spec::INVALID_SIGNATURE,
        spec::GARBAGE_SIGNATURE,
        partial,
        "v1,",
        spec::OTHER_SIGNATURES[0],
    ] {
        let h = vector_headers(spec::MSG_ID, &ts, bad);
        assert!(
            matches!(check_fixed(&h, &secret), Err(VerifyError::Mismatch)),
            "{bad}"
        );
    }
    // Only a `v2,` signature: no v1 signature at all.
    let h = vector_headers(spec::MSG_ID, &ts, spec::OTHER_SIGNATURES[1]);
    assert!(matches!(
        check_fixed(&h, &secret),
        Err(VerifyError::NoV1Signature)
    ));
    // The signature is bound to the timestamp, even with the tolerance off.
    let h = vector_headers(spec::MSG_ID, &spec::YEAR_2000.to_string(), spec::SIGNATURE);
    assert!(matches!(
        check_fixed(&h, &secret),
        Err(VerifyError::Mismatch)
    ));
    // The right signature under another key scheme does not verify.
    let composio = [WebhookSecret::composio(format!("whsec_{}", spec::SECRET))];
    assert!(matches!(
        check_fixed(&good, &composio),
        Err(VerifyError::Mismatch)
    ));
    // An empty body.
    assert!(matches!(
        verify_signature(&good, b"", &secret, Duration::ZERO),
        Err(VerifyError::EmptyBody)
    ));
}

/// `test_old_timestamp_fails` / `test_new_timestamp_fails`: signed (validly) as of now minus
/// or plus more than the tolerance. The reference tests use tolerance + 1 s; here the margin
/// is wider so the clock ticking during the test cannot bring the timestamp back inside (the
/// exact boundary is a unit test of the verifier with a fixed clock).
#[test]
fn standard_webhooks_tolerance_vectors() {
    let secret = WebhookSecret::standard(spec::SECRET).unwrap();
    let now = listener_e2e::webhook::now();
    let outside = spec::TOLERANCE_SECS + 60;
    let at = |ts: i64| {
        let h = signed_headers(&secret, spec::MSG_ID, ts, spec::PAYLOAD);
        verify_signature(
            &h,
            spec::PAYLOAD,
            std::slice::from_ref(&secret),
            DEFAULT_TOLERANCE,
        )
    };
    assert!(at(now).is_ok());
    assert!(matches!(at(now - outside), Err(VerifyError::TooOld { .. })));
    assert!(matches!(at(now + outside), Err(VerifyError::TooNew { .. })));
    // Disabling the check accepts both (`VerifyIgnoringTimestamp` in the Go library).
    for ts in [now - outside, now + outside] {
        let h = signed_headers(&secret, spec::MSG_ID, ts, spec::PAYLOAD);
        assert!(verify_signature(
            &h,
            spec::PAYLOAD,
            std::slice::from_ref(&secret),
            Duration::ZERO
        )
        .is_ok());
    }
}

#[test]
fn the_same_vectors_under_composio_raw_secret_scheme() {
    let ts = spec::TIMESTAMP.to_string();
    let prefixed = format!("whsec_{}", spec::SECRET);
    let cases = [
        (prefixed.as_str(), composio::PREFIXED_SIGNATURE),
        (spec::SECRET, composio::BARE_SIGNATURE),
    ];
    for (secret, expected) in cases {
        // Our signer, Composio's way, gives the SDK's signature...
        let raw = WebhookSecret::composio(secret);
        assert_eq!(
            sign(&raw, spec::MSG_ID, spec::TIMESTAMP, spec::PAYLOAD),
            expected
        );
        // ...which verifies under the Composio scheme and under a scheme-less secret (raw
        // bytes are always tried), but not under the Standard Webhooks scheme.
        let h = vector_headers(spec::MSG_ID, &ts, expected);
        assert!(check_fixed(&h, &[raw]).is_ok(), "{secret}");
        assert!(
            check_fixed(&h, &[WebhookSecret::new(secret)]).is_ok(),
            "{secret}"
        );
        let standard = WebhookSecret::standard(secret).unwrap();
        assert!(matches!(
            check_fixed(&h, &[standard]),
            Err(VerifyError::Mismatch)
        ));
        // A scheme-less secret signs the way Composio's senders do.
        assert_eq!(
            sign(
                &WebhookSecret::new(secret),
                spec::MSG_ID,
                spec::TIMESTAMP,
                spec::PAYLOAD
            ),
            expected
        );
    }
    // A scheme-less secret without `whsec_` is used raw only: the spec's signature (base64
    // key) does not verify under it.
    let h = vector_headers(spec::MSG_ID, &ts, spec::SIGNATURE);
    assert!(matches!(
        check_fixed(&h, &[WebhookSecret::new(spec::SECRET)]),
        Err(VerifyError::Mismatch)
    ));
    // Rotation: old and new secrets, of either scheme, at once.
    let both = [
        WebhookSecret::composio("whsec_new"),
        WebhookSecret::composio(prefixed.clone()),
    ];
    let h = vector_headers(spec::MSG_ID, &ts, composio::PREFIXED_SIGNATURE);
    assert!(check_fixed(&h, &both).is_ok());
    assert!(matches!(
        check_fixed(&h, &both[..1]),
        Err(VerifyError::Mismatch)
    ));
}

#[test]
fn verify_decodes_the_event_and_checks_the_version_header() {
    let secret = WebhookSecret::new("whsec_c2VjcmV0");
    let body = listener_e2e::fixtures::bytes("v1_slack_receive_message.json");
    let mut h: Vec<(String, String)> =
        signed_headers(&secret, "msg_v1", listener_e2e::webhook::now(), &body)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
    h.push(("x-composio-delivery-attempt".into(), "4".into()));
    let plain = verify(&h, &body, std::slice::from_ref(&secret), DEFAULT_TOLERANCE).unwrap();
    assert_eq!(plain.envelope, listener_core::Envelope::V1);
    assert_eq!(plain.event.event_id, "msg_v1");
    assert_eq!(plain.event.metadata.delivery_attempt, Some(4));
    h.push(("x-composio-webhook-version".into(), "V1".into()));
    assert!(verify(&h, &body, std::slice::from_ref(&secret), DEFAULT_TOLERANCE).is_ok());
    h.last_mut().unwrap().1 = "V3".into();
    let err = verify(&h, &body, std::slice::from_ref(&secret), DEFAULT_TOLERANCE).unwrap_err();
    assert!(matches!(err, VerifyError::VersionMismatch { .. }), "{err}");
    assert!(!err.is_auth_failure());
    // The signature is checked before the body is even parsed.
    h.pop();
    let err = verify(&h, b"not json", &[secret], DEFAULT_TOLERANCE).unwrap_err();
    assert!(matches!(err, VerifyError::Mismatch), "{err}");
}

/// Composio's own Python SDK (`composio.core.models.triggers.Triggers.verify_webhook`, from
/// the pinned `composio` package) accepts deliveries our signer signs with a scheme-less
/// `whsec_` secret (as Composio's senders do), and refuses the same delivery signed the
/// Standard Webhooks way, which our verifier still accepts under that scheme-less secret.
#[tokio::test]
async fn composio_sdk_verifies_our_signatures() {
    let Some(python) = listener_e2e::peers::python_peer() else {
        return;
    };
    // One interpreter for all checks (importing the SDK takes seconds): argv is the secret,
    // a JSON list of header maps and the body file; one output line per header map.
    const SDK_CHECK: &str = r#"
import json, sys
from composio.core.models.base import allow_tracking
allow_tracking.set(False)  # no telemetry from a test
from composio.core.models.triggers import Triggers
secret, requests, body_file = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
body = open(body_file, "rb").read().decode("utf-8")
triggers = Triggers.__new__(Triggers)  # verify_webhook needs no client or API key
for headers in requests:
    try:
        result = triggers.verify_webhook(
            id=headers["webhook-id"], payload=body, secret=secret,
            signature=headers["webhook-signature"], timestamp=headers["webhook-timestamp"])
        print("OK", result["version"].value, result["payload"]["trigger_slug"])
    except Exception as e:
        print("FAIL:", type(e).__name__, e)
"#;
    let secret = "whsec_Y29tcG9zaW8tc2RrLWNoZWNr";
    let body = listener_e2e::fixtures::bytes("v3_slack_receive_message.json");
    let file = body_file(&body);
    let standard = WebhookSecret::standard(secret).unwrap();
    let requests: Vec<serde_json::Value> = [WebhookSecret::new(secret), standard.clone()]
        .iter()
        .map(|scheme| {
            signed_headers(scheme, "msg_sdk", now(), &body)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v)))
                .collect::<serde_json::Map<_, _>>()
                .into()
        })
        .collect();
    let out = within(
        "Composio's SDK",
        tokio::process::Command::new(&python)
            .args(["-c", SDK_CHECK, secret])
            .arg(serde_json::Value::Array(requests).to_string())
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
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0], "OK V3 SLACK_RECEIVE_MESSAGE");
    assert!(
        lines[1].starts_with("FAIL: WebhookSignatureVerificationError"),
        "{}",
        lines[1]
    );
    // Ours accepts both, under the one scheme-less secret.
    let h = signed_headers(&standard, "msg_sdk", now(), &body);
    assert!(verify(&h, &body, &[WebhookSecret::new(secret)], DEFAULT_TOLERANCE).is_ok());
}
