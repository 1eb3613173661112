//! Event decoding from bytes, every envelope: the V3 fast path and the general path are each
//! other's oracle, and the public entry points agree with them.
//!
//! Properties, for any bytes:
//! - what the fast path accepts, the general path accepts as the same event;
//! - the fast path declines a V3 trigger message the general path accepts only when the body
//!   repeats a key the fast path reads (the general path keeps the last one);
//! - the relay's identity decode accepts and refuses what the general path does, with the
//!   same delivery id, slug, toolkit, type and envelope (and the same event altogether
//!   where its fast path did not take the body);
//! - `decode` gives the general path's result (same event, or the same error);
//!   `decode_value(parse(..))` too;
//! - `decode_expecting(bytes, E)` gives `decode`'s event when it is in `E` (or an admin
//!   event), an envelope mismatch naming the actual envelope otherwise, and `decode`'s error
//!   when there is one.

use listener_core::__fuzz::{decode_fast, decode_general, decode_identity};
use listener_core::decode::{self, DecodeError};
use listener_core::{Envelope, TriggerEvent, V3_TRIGGER_MESSAGE};
use serde_json::value::RawValue;

/// Every envelope `decode_expecting` may be asked for.
const ENVELOPES: [Envelope; 5] = [
    Envelope::V3,
    Envelope::V2,
    Envelope::V1,
    Envelope::LegacyRealtime,
    Envelope::Admin,
];

/// The top-level keys the fast path reads (a repeat makes it decline).
const FAST_KEYS: [&str; 5] = ["type", "id", "timestamp", "metadata", "data"];
/// The `metadata` keys the fast path reads.
const FAST_METADATA_KEYS: [&str; 6] = [
    "trigger_id",
    "trigger_slug",
    "user_id",
    "connected_account_id",
    "auth_config_id",
    "log_id",
];

/// Checks every property on `data`; panics (with the input described) on a violation.
pub fn check(data: &[u8]) {
    let fast = decode_fast(data);
    let general = decode_general(data);

    if let Some(fast) = &fast {
        match &general {
            Ok(general) => assert_eq!(fast, general, "the two paths disagree"),
            Err(e) => panic!("the fast path accepted what the general path refuses: {e}"),
        }
    } else if let Ok(general) = &general {
        if general.envelope == Envelope::V3
            && general.event_type.as_deref() == Some(V3_TRIGGER_MESSAGE)
        {
            assert!(
                repeats_a_fast_key(data),
                "the fast path declined a V3 trigger message without a repeated key"
            );
        }
    }

    match (decode_identity(data), &general) {
        (Ok(identity), Ok(general)) => {
            let key = |ev: &TriggerEvent| {
                (
                    ev.event_id.clone(),
                    ev.trigger_slug.clone(),
                    ev.toolkit_slug.clone(),
                    ev.event_type.clone(),
                    ev.envelope,
                )
            };
            assert_eq!(
                key(&identity),
                key(general),
                "identity decode vs the general path"
            );
            assert!(
                identity.payload.is_null() || identity == *general,
                "the identity decode kept a different event"
            );
        }
        (Err(a), Err(b)) => assert_eq!(
            a.to_string(),
            b.to_string(),
            "identity decode vs the general path: different errors"
        ),
        (a, b) => panic!(
            "identity decode vs the general path: {} vs {}",
            describe(&a),
            describe(b)
        ),
    }

    let public = decode::decode(data);
    assert_same(&public, &general, "decode vs the general path");
    let via_value = decode::parse(data).and_then(decode::decode_value);
    assert_same(
        &via_value,
        &general,
        "decode_value(parse) vs the general path",
    );

    for expected in ENVELOPES {
        let got = decode::decode_expecting(data, expected);
        match (&public, &got) {
            (Ok(event), Ok(got)) if accepts(expected, event.envelope) => {
                assert_eq!(event, got, "decode_expecting({expected}) changed the event")
            }
            (Ok(event), Err(DecodeError::EnvelopeMismatch { actual, .. }))
                if !accepts(expected, event.envelope) =>
            {
                assert_eq!(*actual, event.envelope, "decode_expecting({expected})")
            }
            (Err(e), Err(got)) => assert_eq!(
                e.to_string(),
                got.to_string(),
                "decode_expecting({expected}) refused differently"
            ),
            (public, got) => panic!(
                "decode_expecting({expected}) = {} but decode = {}",
                describe(got),
                describe(public)
            ),
        }
    }
}

/// Whether `decode_expecting(_, expected)` takes an event in `actual`.
fn accepts(expected: Envelope, actual: Envelope) -> bool {
    actual == expected || actual == Envelope::Admin
}

fn describe(r: &Result<TriggerEvent, DecodeError>) -> String {
    match r {
        Ok(ev) => format!("Ok({} event {:?})", ev.envelope, ev.event_id),
        Err(e) => format!("Err({e})"),
    }
}

fn assert_same(
    a: &Result<TriggerEvent, DecodeError>,
    b: &Result<TriggerEvent, DecodeError>,
    what: &str,
) {
    match (a, b) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{what}: different events"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{what}: different errors"),
        (a, b) => panic!("{what}: {} vs {}", describe(a), describe(b)),
    }
}

/// Whether the body (a JSON object) repeats one of the top-level keys the fast path reads,
/// or one of the `metadata` keys it reads in some `metadata` object.
fn repeats_a_fast_key(data: &[u8]) -> bool {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let Ok(Entries(top)) = serde_json::from_slice::<Entries>(data) else {
        return false;
    };
    if repeats(&top, &FAST_KEYS) {
        return true;
    }
    top.iter()
        .filter(|(key, _)| key == "metadata")
        .filter_map(|(_, raw)| serde_json::from_str::<Entries>(raw.get()).ok())
        .any(|Entries(meta)| repeats(&meta, &FAST_METADATA_KEYS))
}

fn repeats(entries: &[(String, Box<RawValue>)], keys: &[&str]) -> bool {
    keys.iter()
        .any(|key| entries.iter().filter(|(k, _)| k == key).count() > 1)
}

/// An object's entries in order, repeats kept.
struct Entries(Vec<(String, Box<RawValue>)>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(Visitor)
    }
}
