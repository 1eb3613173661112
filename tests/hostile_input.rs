//! Hostile bodies and headers on the webhook server, each correctly signed where a
//! signature can be made: deep nesting, huge numbers, a million-element array, every kind of
//! invalid UTF-8 in the body and in the headers. Each gets a clean answer (4xx, or 200 for a
//! valid event), never a panic, and the server serves a good delivery after each.

use std::net::SocketAddr;

use listener_core::webhook::{signed_headers, WebhookSecret, WebhookSource};
use listener_core::Listener;
use listener_e2e::record::Recorder;
use listener_e2e::wait::within;
use listener_e2e::webhook::{now, v3_body as body, Server, SECRET};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn server_with(rec: &Recorder, configure: impl FnOnce(WebhookSource) -> WebhookSource) -> Server {
    Server::start(
        rec,
        configure(Server::bind(&[SECRET])),
        Listener::builder().without_registered_handlers(),
    )
}

fn addr_of(server: &Server) -> SocketAddr {
    server.base.trim_start_matches("http://").parse().unwrap()
}

/// `body(id)` with its `"hello"` text replaced by `value` (raw bytes, not escaped).
fn body_with(id: &str, value: &[u8]) -> Vec<u8> {
    let b = body(id);
    let mark = b"\"hello\"";
    let at = b
        .windows(mark.len())
        .position(|w| w == mark)
        .expect("the text");
    let mut out = b[..at].to_vec();
    out.extend_from_slice(value);
    out.extend_from_slice(&b[at + mark.len()..]);
    out
}

/// Sends raw request bytes on a new connection; returns the status (0 if the server closed
/// without an answer) once the server has answered or closed.
async fn raw_status(addr: SocketAddr, request: &[u8]) -> u16 {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    // The server may answer (and stop reading) before all of it is written.
    let _ = tcp.write_all(request).await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    within("an answer or a close", async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
            if answer.len() >= 12 {
                break;
            }
        }
    })
    .await;
    if answer.len() < 12 {
        return 0;
    }
    String::from_utf8_lossy(&answer[9..12]).parse().unwrap_or(0)
}

/// A request with the given raw header lines (bytes, unchecked) and body.
fn raw_request(extra_headers: &[Vec<u8>], body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST /webhook HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    )
    .into_bytes();
    for h in extra_headers {
        req.extend_from_slice(h);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(body);
    req
}

/// The signed header lines for `body`, with `replace(name, value)` deciding each line.
fn signed_lines(
    id: &str,
    body: &[u8],
    mut replace: impl FnMut(&str, &str) -> Vec<u8>,
) -> Vec<Vec<u8>> {
    signed_headers(&WebhookSecret::new(SECRET), id, now(), body)
        .into_iter()
        .map(|(k, v)| replace(k, &v))
        .collect()
}

/// A good delivery goes through, and its handler runs.
async fn still_serves(server: &Server, rec: &mut Recorder, after: &str) {
    let id = format!("msg_good_after_{after}");
    let (status, answer) = server.post_signed(SECRET, &id, &body(&id)).await;
    assert_eq!(status, 200, "after {after}: {answer}");
    loop {
        let seen = within("the good delivery's handler", rec.next()).await;
        if seen.event.event_id == id {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_nesting_is_a_clean_400() {
    let mut rec = Recorder::new();
    let server = server_with(&rec, |s| s);
    for (name, depth, open, close) in [
        ("arrays", 100_000, "[", "]"),
        ("objects", 100_000, "{\"a\":", "}"),
        ("unclosed arrays", 200_000, "[", ""),
    ] {
        let mut value = open.repeat(depth);
        value.push('1');
        value.push_str(&close.repeat(depth));
        let id = format!("msg_deep_{}", name.replace(' ', "_"));
        let b = body_with(&id, value.as_bytes());
        assert!(b.len() < 1 << 20, "{name}: within the default body limit");
        let (status, answer) = server.post_signed(SECRET, &id, &b).await;
        assert_eq!(
            (status, answer.as_str()),
            (400, r#"{"status":"malformed_event"}"#),
            "{name}"
        );
        still_serves(&server, &mut rec, name).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_numbers_are_refused_or_kept_exactly() {
    let mut rec = Recorder::new();
    let server = server_with(&rec, |s| s);
    let digits = "9".repeat(400);
    let fraction = format!("0.{}", "1".repeat(100_000));
    let cases: [(&str, String, u16); 6] = [
        ("400-digit integer", digits.clone(), 400),
        ("negative 400-digit integer", format!("-{digits}"), 400),
        ("1e400", "1e400".into(), 400),
        ("-1e400", "-1e400".into(), 400),
        // Underflow rounds to zero: no information lost that a float could keep.
        ("1e-400", "1e-400".into(), 200),
        ("100,000-digit fraction", fraction, 200),
    ];
    for (name, value, expected) in cases {
        let value = value.as_bytes();
        let id = format!("msg_num_{}", name.replace([' ', ','], "_"));
        let (status, answer) = server
            .post_signed(SECRET, &id, &body_with(&id, value))
            .await;
        assert_eq!(status, expected, "{name}: {answer}");
        if expected == 200 {
            let seen = within("the handler", rec.next()).await;
            assert_eq!(seen.event.event_id, id);
        }
        still_serves(&server, &mut rec, name).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_element_array_within_the_body_limit_is_an_event() {
    let mut rec = Recorder::new();
    // 1,000,000 elements take 2 MB as JSON: the limit is raised to 4 MiB for it
    // (`max_body_bytes`, `LISTENER_WEBHOOK_MAX_BODY_BYTES`).
    let server = server_with(&rec, |s| s.max_body_bytes(4 << 20));
    let mut value = String::with_capacity(2_000_002);
    value.push('[');
    for i in 0..1_000_000 {
        if i > 0 {
            value.push(',');
        }
        value.push('0');
    }
    value.push(']');
    let b = body_with("msg_array", value.as_bytes());
    assert!(b.len() > 1 << 20 && b.len() < 4 << 20);
    let (status, answer) = server.post_signed(SECRET, "msg_array", &b).await;
    assert_eq!(status, 200, "{answer}");
    let seen = within("the handler", rec.next()).await;
    assert_eq!(seen.event.event_id, "msg_array");
    assert_eq!(
        seen.event.payload["text"].as_array().map(Vec::len),
        Some(1_000_000)
    );
    still_serves(&server, &mut rec, "the array").await;

    // The same body at the default limit: 413 while it streams in.
    let rec2 = Recorder::new();
    let small = server_with(&rec2, |s| s);
    let (status, _) = small.post_signed(SECRET, "msg_array_2", &b).await;
    assert_eq!(status, 413);
}

/// Invalid UTF-8 of every kind: a lone continuation byte, an overlong encoding, a UTF-16
/// surrogate, a truncated sequence, bytes that never occur (0xFE, 0xFF, 0xC0, 0xF5..), and a
/// code point past U+10FFFF.
const INVALID_UTF8: [(&str, &[u8]); 9] = [
    ("lone continuation byte", b"\x80"),
    ("overlong slash", b"\xC0\xAF"),
    ("overlong NUL", b"\xE0\x80\x80"),
    ("surrogate", b"\xED\xA0\x80"),
    ("truncated 3-byte sequence", b"\xE2\x82"),
    ("truncated 4-byte sequence at the end", b"\xF0\x9F\x98"),
    ("0xFE 0xFF", b"\xFE\xFF"),
    ("past U+10FFFF", b"\xF4\x90\x80\x80"),
    ("0xF5", b"\xF5\x80\x80\x80"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_in_a_signed_body_is_a_clean_400() {
    let mut rec = Recorder::new();
    let server = server_with(&rec, |s| s);
    for (n, (name, bad)) in INVALID_UTF8.iter().enumerate() {
        // In a string value, in a key, and outside any string.
        let mut in_string = b"\"a".to_vec();
        in_string.extend_from_slice(bad);
        in_string.push(b'"');
        let mut in_key = b"{\"".to_vec();
        in_key.extend_from_slice(bad);
        in_key.extend_from_slice(b"\":1}");
        for (place, value) in [
            ("string", in_string),
            ("key", in_key),
            ("bare", bad.to_vec()),
        ] {
            let id = format!("msg_utf8_{n}_{place}");
            let (status, answer) = server
                .post_signed(SECRET, &id, &body_with(&id, &value))
                .await;
            assert_eq!(
                (status, answer.as_str()),
                (400, r#"{"status":"malformed_event"}"#),
                "{name} in a {place}"
            );
        }
        // The whole body.
        let id = format!("msg_utf8_{n}_all");
        let (status, _) = server.post_signed(SECRET, &id, bad).await;
        assert_eq!(status, 400, "{name} as the whole body");
        still_serves(&server, &mut rec, name).await;
    }
    assert!(rec.rx.try_recv().is_err(), "nothing else was dispatched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_in_headers_is_a_clean_4xx() {
    let mut rec = Recorder::new();
    let server = server_with(&rec, |s| s);
    let addr = addr_of(&server);
    for (n, (name, bad)) in INVALID_UTF8.iter().enumerate() {
        let id = format!("msg_hdr_{n}");
        let b = body(&id);
        // In each of the three signature headers, in the content type, and in a header
        // name; every one must be refused (the signature cannot cover invalid text).
        for target in [
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "content-type",
        ] {
            let mut lines = signed_lines(&id, &b, |k, v| {
                let mut line = format!("{k}: {v}").into_bytes();
                if k == target {
                    line.extend_from_slice(bad);
                }
                line
            });
            let req = if target == "content-type" {
                let mut ct = b"content-type: application/json".to_vec();
                ct.extend_from_slice(bad);
                // Replaces the default content type line.
                let mut req = format!(
                    "POST /webhook HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n",
                    b.len()
                )
                .into_bytes();
                lines.push(ct);
                for h in &lines {
                    req.extend_from_slice(h);
                    req.extend_from_slice(b"\r\n");
                }
                req.extend_from_slice(b"\r\n");
                req.extend_from_slice(&b);
                req
            } else {
                raw_request(&lines, &b)
            };
            let status = raw_status(addr, &req).await;
            assert!(
                (400..500).contains(&status),
                "{name} in {target}: answered {status}"
            );
        }
        // In a header's name: hyper refuses the request line by line (400).
        let mut bad_name = b"x-".to_vec();
        bad_name.extend_from_slice(bad);
        bad_name.extend_from_slice(b": 1");
        let lines = signed_lines(&id, &b, |k, v| format!("{k}: {v}").into_bytes());
        let mut with_name = lines.clone();
        with_name.push(bad_name);
        let status = raw_status(addr, &raw_request(&with_name, &b)).await;
        assert_eq!(status, 400, "{name} in a header name");
        // In an unrelated header's value: not covered by the signature, accepted.
        let mut other = b"x-note: ".to_vec();
        other.extend_from_slice(bad);
        let mut with_value = lines;
        with_value.push(other);
        let status = raw_status(addr, &raw_request(&with_value, &b)).await;
        assert_eq!(status, 200, "{name} in an unrelated header value");
        assert_eq!(within("the handler", rec.next()).await.event.event_id, id);
        // And in the request target.
        let mut target = b"POST /webhook".to_vec();
        target.extend_from_slice(bad);
        target.extend_from_slice(b" HTTP/1.1\r\nhost: x\r\n\r\n");
        let status = raw_status(addr, &target).await;
        assert!(
            status == 0 || (400..500).contains(&status),
            "{name} in the path: {status}"
        );
        still_serves(&server, &mut rec, name).await;
    }
}
