//! Webhook verification: arbitrary headers (several `webhook-signature` lines and values,
//! odd whitespace, bytes that are not text), bodies, secrets and tolerances.
//!
//! Input layout (see `reader.rs`): a flags byte (secret scheme, tolerance, where the good
//! signature goes), the secret (length-prefixed), a second secret, a header count and that
//! many length-prefixed names and values, two bytes choosing the byte to change, then the
//! body. In header values `{ts}` stands for the current Unix time and `{sig}` for the
//! body's valid signature (with the first `webhook-id` and `webhook-timestamp` given), so
//! the fuzzer can reach what comes after a good signature.
//!
//! Properties:
//! - nothing panics;
//! - the same headers as an `http::HeaderMap` and as `(name, value)` pairs verify alike (when
//!   every header is valid text, so both can hold them);
//! - a delivery whose signature checks out stops checking out when any one byte of its body
//!   changes;
//! - a verified delivery's event is the body's decoded event, with the `webhook-id` as its
//!   event id;
//! - what `webhook::signed_headers` signs with a usable secret always verifies (beside other,
//!   wrong signatures too), and a one-byte change of the body never does.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};
use listener_core::decode;
use listener_core::webhook::{
    sign, signed_headers, verify, verify_signature, HeaderSource, VerifyError, WebhookSecret,
    DEFAULT_TOLERANCE,
};

use crate::reader::Reader;

/// Checks every property on `data`; panics on a violation.
pub fn check(data: &[u8]) {
    let mut r = Reader::new(data);
    let flags = r.u8();
    let first = text(r.short_bytes());
    let second = text(r.short_bytes());
    let secrets = secrets(flags, first, second);
    let tolerance = match (flags >> 2) & 3 {
        0 => Duration::ZERO,
        1 => DEFAULT_TOLERANCE,
        2 => Duration::from_secs(100 * 365 * 86_400),
        _ => Duration::MAX,
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);

    let count = r.u8() % 12;
    let mut raw: Vec<(Vec<u8>, Vec<u8>)> = (0..count)
        .map(|_| (r.short_bytes().to_vec(), r.short_bytes().to_vec()))
        .collect();
    let flip_at = usize::from(r.u16());
    let flip_with = r.u8().max(1);
    let body = r.rest();

    // Placeholders: `{ts}` first (the id and timestamp the signature covers may use it).
    for (_, value) in &mut raw {
        *value = replace(value, b"{ts}", now.to_string().as_bytes());
    }
    if let Some(secret) = secrets.first() {
        let id = first_value(&raw, "webhook-id");
        let ts = first_value(&raw, "webhook-timestamp").and_then(|t| t.trim().parse().ok());
        let good = sign(secret, id.unwrap_or("").trim(), ts.unwrap_or(now), body);
        for (_, value) in &mut raw {
            *value = replace(value, b"{sig}", good.as_bytes());
        }
    }

    arbitrary_headers(&raw, body, &secrets, tolerance, flip_at, flip_with);
    signed_delivery(
        &raw, flags, body, &secrets, tolerance, now, flip_at, flip_with,
    );
}

/// The secrets the flags ask for: one of unknown scheme, Composio's or Standard Webhooks',
/// or two (rotation).
fn secrets(flags: u8, first: String, second: String) -> Vec<WebhookSecret> {
    match flags & 3 {
        0 => vec![WebhookSecret::new(first)],
        1 => vec![WebhookSecret::composio(first)],
        2 => match WebhookSecret::standard(first.clone()) {
            Ok(secret) => vec![secret],
            Err(_) => vec![WebhookSecret::new(first)],
        },
        _ => vec![WebhookSecret::new(first), WebhookSecret::composio(second)],
    }
}

/// The fuzzed headers as they are, through both header sources.
fn arbitrary_headers(
    raw: &[(Vec<u8>, Vec<u8>)],
    body: &[u8],
    secrets: &[WebhookSecret],
    tolerance: Duration,
    flip_at: usize,
    flip_with: u8,
) {
    let mut map = HeaderMap::new();
    let mut all_kept = true;
    for (name, value) in raw {
        match (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            (Ok(name), Ok(value)) => {
                map.append(name, value);
            }
            _ => all_kept = false,
        }
    }
    let from_map = verify(&map, body, secrets, tolerance);
    check_verified(&from_map, body);
    if verify_signature(&map, body, secrets, tolerance).is_ok() {
        assert_flip_fails(&map, body, secrets, tolerance, flip_at, flip_with);
    }

    // Pairs of text: the same verdict, when the map could hold every header as text.
    let pairs: Option<Vec<(String, String)>> = raw
        .iter()
        .map(|(n, v)| {
            Some((
                String::from_utf8(n.clone()).ok()?,
                String::from_utf8(v.clone()).ok()?,
            ))
        })
        .collect();
    let Some(pairs) = pairs else { return };
    let from_pairs = verify(pairs.as_slice(), body, secrets, tolerance);
    check_verified(&from_pairs, body);
    let all_text = all_kept && map.values().all(|v| v.to_str().is_ok());
    if all_text {
        match (&from_map, &from_pairs) {
            (Ok(a), Ok(b)) => {
                assert_eq!((&a.id, a.timestamp), (&b.id, b.timestamp));
                assert_eq!(a.event, b.event, "the header sources verify differently");
            }
            // The two calls may straddle a second: a too old or too new delivery's age may
            // differ by one.
            (Err(VerifyError::TooOld { .. }), Err(VerifyError::TooOld { .. }))
            | (Err(VerifyError::TooNew { .. }), Err(VerifyError::TooNew { .. })) => {}
            (Err(a), Err(b)) => assert_eq!(
                a.to_string(),
                b.to_string(),
                "the header sources refuse differently"
            ),
            (a, b) => panic!(
                "HeaderMap: {:?}, pairs: {:?}",
                a.as_ref().map(|v| &v.id),
                b.as_ref().map(|v| &v.id)
            ),
        }
    }
}

/// A delivery signed by `webhook::signed_headers`, with the fuzzed `webhook-signature` values
/// (the ones that are text) beside the good one, and the fuzzed other headers.
#[allow(clippy::too_many_arguments)]
fn signed_delivery(
    raw: &[(Vec<u8>, Vec<u8>)],
    flags: u8,
    body: &[u8],
    secrets: &[WebhookSecret],
    tolerance: Duration,
    now: i64,
    flip_at: usize,
    flip_with: u8,
) {
    let Some(secret) = secrets.first() else {
        return;
    };
    if !usable(secret) || body.is_empty() {
        return;
    }
    // A clean id: what a header can carry (visible ASCII, nothing to trim).
    let id = first_value(raw, "webhook-id")
        .filter(|id| {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
                && id.trim() == *id
        })
        .unwrap_or("msg_fuzz");
    let [(_, id_value), (_, ts_value), (_, good)] = signed_headers(secret, id, now, body);
    assert_eq!(&id_value, id);

    // Other signatures, wrong ones, around the good one: on its line or on lines of their own.
    // Only text: a line with other bytes is not read at all, and the good signature must
    // stay readable.
    let others: Vec<&str> = raw
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"webhook-signature"))
        .filter_map(|(_, v)| std::str::from_utf8(v).ok())
        .filter(|v| HeaderValue::from_str(v).is_ok_and(|h| h.to_str().is_ok()))
        .collect();
    let position = usize::from(flags >> 4) % (others.len() + 1);
    let mut lines: Vec<String> = others.iter().map(|s| s.to_string()).collect();
    if flags & 0x80 != 0 && !lines.is_empty() {
        let at = position.min(lines.len() - 1);
        lines[at] = format!("{} {good}", lines[at]);
    } else {
        lines.insert(position, good.clone());
    }

    let mut map = HeaderMap::new();
    map.insert("webhook-id", HeaderValue::from_str(&id_value).unwrap());
    map.insert(
        "webhook-timestamp",
        HeaderValue::from_str(&ts_value).unwrap(),
    );
    for line in &lines {
        map.append("webhook-signature", HeaderValue::from_str(line).unwrap());
    }
    // The attempt and version headers as fuzzed, when they are valid.
    for (name, value) in raw {
        let lower = name.to_ascii_lowercase();
        if lower == b"x-composio-webhook-version" || lower == b"x-composio-delivery-attempt" {
            if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
                map.append(n, v);
            }
        }
    }

    match verify_signature(&map, body, secrets, tolerance) {
        Ok((got_id, got_ts)) => assert_eq!((got_id.as_str(), got_ts), (id, now)),
        Err(e) => panic!("a delivery signed by webhook::sign did not verify: {e}"),
    }
    assert_flip_fails(&map, body, secrets, tolerance, flip_at, flip_with);

    let pairs = [
        ("webhook-id", id_value.clone()),
        ("webhook-timestamp", ts_value.clone()),
        ("webhook-signature", lines.join(" ")),
    ];
    match verify_signature(&pairs, body, secrets, tolerance) {
        Ok((got_id, _)) => assert_eq!(got_id, id),
        Err(e) => panic!("a delivery signed by webhook::sign did not verify as pairs: {e}"),
    }

    let verified = verify(&map, body, secrets, tolerance);
    check_verified(&verified, body);
    let announced = map.contains_key("x-composio-webhook-version");
    match (&verified, decode::decode(body)) {
        (Ok(_), Ok(_)) => {}
        (Err(VerifyError::Payload(_)), Err(_)) => {}
        (Err(e), Ok(_)) if announced && !e.is_auth_failure() => {}
        (Err(e), Ok(_)) if announced => panic!("a signed delivery with a version header: {e}"),
        (v, d) => panic!(
            "signed delivery: verify {:?} but decode {:?}",
            v.as_ref().map(|v| &v.id).map_err(ToString::to_string),
            d.map(|e| e.envelope).map_err(|e| e.to_string())
        ),
    }
}

/// A verified delivery's event is the body's decoded event (`webhook-id` as its event id,
/// the delivery attempt from its header).
fn check_verified(
    verified: &Result<listener_core::webhook::VerifiedEvent, VerifyError>,
    body: &[u8],
) {
    let Ok(v) = verified else { return };
    assert_eq!(v.event.event_id, v.id);
    assert_eq!(v.envelope, v.event.envelope);
    let mut decoded = decode::decode(body).expect("a verified body decodes");
    decoded.event_id = v.id.clone();
    decoded.metadata.delivery_attempt = v.event.metadata.delivery_attempt;
    assert_eq!(decoded, v.event, "verify's event differs from decode's");
}

/// With one byte of the body changed, the signature no longer checks out.
fn assert_flip_fails(
    headers: &(impl HeaderSource + ?Sized),
    body: &[u8],
    secrets: &[WebhookSecret],
    tolerance: Duration,
    flip_at: usize,
    flip_with: u8,
) {
    let mut changed = body.to_vec();
    let at = flip_at % changed.len();
    changed[at] ^= flip_with;
    match verify_signature(headers, &changed, secrets, tolerance) {
        Err(VerifyError::Mismatch) => {}
        other => panic!(
            "byte {at} of the body changed, the signature check says {:?}",
            other.map_err(|e| e.to_string())
        ),
    }
}

/// Whether a secret gives a key to verify with (an empty one never does).
fn usable(secret: &WebhookSecret) -> bool {
    // `sign` with an unusable secret signs with an empty key, which verification refuses;
    // a probe tells them apart without reaching into the crate.
    let probe = [
        ("webhook-id", "p".to_owned()),
        ("webhook-timestamp", "0".to_owned()),
        ("webhook-signature", sign(secret, "p", 0, b"p")),
    ];
    verify_signature(&probe, b"p", std::slice::from_ref(secret), Duration::ZERO).is_ok()
}

fn first_value<'a>(raw: &'a [(Vec<u8>, Vec<u8>)], name: &str) -> Option<&'a str> {
    raw.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn replace(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while !rest.is_empty() {
        if rest.starts_with(needle) {
            out.extend_from_slice(with);
            rest = &rest[needle.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}
