//! The hub's NDJSON ingest (`POST /hub/events` with `application/x-ndjson`): one event per
//! line, every line checked before any is published.
//!
//! Input: the body, as it is; its first byte also picks the chunk size the hub would cut
//! long events with.
//!
//! Properties:
//! - nothing panics;
//! - a body is accepted exactly when every non-blank line parses as an event (an envelope
//!   `decode` takes, or a bare event with a non-blank `trigger_slug`), and then one event per
//!   such line is published, in order; a refused body names its first bad line, and every
//!   line before it is an event;
//! - what is published decodes, as the listener decodes it: an envelope is sent byte for
//!   byte and decodes to the line's event; a bare event becomes a V3 trigger message with
//!   its slug, payload and user; the announced id and type are the event's;
//! - cut into chunks as the hub cuts it (no piece over the size, never inside a character)
//!   and sent as chunk frames, an event reassembles through the listener's frame handling
//!   into the same text.

use std::time::Instant;

use listener_core::__fuzz::{Assembler, ChunkOutcome};
use listener_core::decode;
use listener_core::source::pusher::protocol::{channel_event, Frame, CHUNKED_TRIGGER_EVENT};
use listener_core::source::pusher::ChunkLimits;
use listener_core::{Envelope, V3_TRIGGER_MESSAGE};
use listener_hub::BareEvent;
use serde_json::Value;

/// Checks every property on `data`; panics on a violation.
pub fn check(data: &[u8]) {
    let chunk_size = 4 + usize::from(data.first().copied().unwrap_or(0) % 64);
    let result = listener_hub::__fuzz::prepare_ndjson(data);
    let lines: Vec<(usize, &[u8])> = data
        .split(|b| *b == b'\n')
        .enumerate()
        .map(|(n, line)| (n + 1, line))
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .collect();
    match result {
        Ok(prepared) => {
            assert_eq!(
                prepared.len(),
                lines.len(),
                "published events vs non-blank lines"
            );
            for ((n, line), (text, id, event_type)) in lines.iter().zip(&prepared) {
                let kind = kind(line)
                    .unwrap_or_else(|| panic!("line {n} was accepted but is not an event"));
                published(&kind, line, text, id, event_type);
                reassembles(text, chunk_size);
            }
        }
        Err(message) => {
            let bad: usize = message
                .strip_prefix("line ")
                .and_then(|rest| rest.split(':').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("the refusal names no line: {message}"));
            let (before, at) = lines.split_at(
                lines
                    .iter()
                    .position(|(n, _)| *n == bad)
                    .unwrap_or_else(|| {
                        panic!("the refusal names line {bad}, which is blank or absent")
                    }),
            );
            for (n, line) in before {
                assert!(
                    kind(line).is_some(),
                    "line {n} before the refused line {bad} is not an event"
                );
            }
            assert!(
                kind(at[0].1).is_none(),
                "line {bad} was refused but is an event"
            );
        }
    }
}

/// What an accepted line is.
enum Kind {
    /// An envelope, and its event.
    Envelope(Box<listener_core::TriggerEvent>),
    /// A bare payload to wrap.
    Bare(BareEvent),
}

/// The line as an event, if it is one.
fn kind(line: &[u8]) -> Option<Kind> {
    if let Ok(event) = decode::decode(line) {
        return Some(Kind::Envelope(Box::new(event)));
    }
    let Ok(Value::Object(map)) = decode::parse(line) else {
        return None;
    };
    if !map.contains_key("trigger_slug") {
        return None;
    }
    serde_json::from_value::<BareEvent>(Value::Object(map))
        .ok()
        .filter(|bare| !bare.trigger_slug.trim().is_empty())
        .map(Kind::Bare)
}

/// What was published for a line is what the line stands for.
fn published(kind: &Kind, line: &[u8], text: &str, id: &str, event_type: &str) {
    let event = decode::decode(text.as_bytes()).expect("a published event decodes");
    match kind {
        Kind::Envelope(expected) => {
            assert_eq!(text.as_bytes(), line, "an envelope is sent byte for byte");
            assert_eq!(&event, &**expected);
            match event.envelope {
                Envelope::V3 => {
                    assert_eq!(id, event.event_id);
                    assert_eq!(Some(event_type), event.event_type.as_deref());
                }
                Envelope::V1 | Envelope::V2 => {
                    assert_eq!(id, event.event_id);
                    assert_eq!(event_type, V3_TRIGGER_MESSAGE);
                }
                Envelope::LegacyRealtime => {
                    assert_eq!((id, event_type), ("", V3_TRIGGER_MESSAGE));
                }
                Envelope::Admin => {
                    assert_eq!(id, "");
                    assert_eq!(event_type, event.trigger_slug);
                }
            }
        }
        Kind::Bare(bare) => {
            assert_eq!(event.envelope, Envelope::V3);
            assert_eq!(event.event_type.as_deref(), Some(V3_TRIGGER_MESSAGE));
            assert_eq!(event.trigger_slug, bare.trigger_slug);
            assert_eq!(event.payload, bare.payload);
            assert_eq!(
                event.user_id,
                bare.user_id.clone().unwrap_or_else(|| "default".into())
            );
            assert_eq!(id, event.event_id);
            assert_eq!(event_type, V3_TRIGGER_MESSAGE);
        }
    }
}

/// Cut as the hub cuts it, sent as chunk frames, the text comes back whole.
fn reassembles(text: &str, size: usize) {
    let pieces = listener_hub::__fuzz::split(text, size);
    assert!(
        pieces.iter().all(|p| p.len() <= size.max(4)),
        "a piece over the size"
    );
    assert_eq!(pieces.concat(), text, "the pieces are not the text");
    if pieces.len() > ChunkLimits::default().max_chunks as usize {
        return;
    }
    let channel = "private-pr_local_triggers";
    let mut assembler = Assembler::new(ChunkLimits::default());
    let now = Instant::now();
    let last = pieces.len() - 1;
    // Sent last piece first, then in order: the order must not matter.
    let order = std::iter::once(last).chain(0..last);
    let mut body = None;
    for index in order {
        let data = serde_json::json!({
            "id": "chk_fuzz", "index": index, "chunk": pieces[index], "final": index == last
        });
        let frame = channel_event(channel, CHUNKED_TRIGGER_EVENT, &data.to_string());
        let frame = Frame::parse(&frame).expect("the hub's frame parses");
        let data = frame.data_text().expect("its data unwraps");
        match assembler.push(&data, now) {
            Ok(ChunkOutcome::Pending) => assert!(body.is_none()),
            Ok(ChunkOutcome::Complete(whole)) => body = Some(whole),
            Err(e) => panic!("a hub chunk was refused: {e}"),
        }
    }
    assert_eq!(body.as_deref(), Some(text), "the reassembled event");
}
