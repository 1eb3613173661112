//! Completion records: a handler that succeeded on an event does not run again when the
//! event is delivered again because a sibling handler failed on it.
//!
//! One key per (group, event, handler) in a key-value bucket of the stream's
//! (`<stream>_DONE`), written when a handler succeeds on an event that matched more than
//! one handler, and read when an event comes back (a redelivery, a replayed dead letter).
//! An event with a single handler needs none: its acknowledgement is its record. Why this
//! rather than a consumer per handler: the worker stays a source that knows nothing of
//! handlers, one pull serves every handler of an event (one message, one decode, one
//! acknowledgement), and the records cost nothing on the common path (one handler, or
//! every handler succeeding the first time: no read; a write per handler only for events
//! with several).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;

use crate::layer::{Layer, Next, Run, RunResult};
use crate::source::async_trait;
use crate::StreamDelivery;

/// How long reading or writing a record may take before the run goes on without it.
const RECORD_TIMEOUT: Duration = Duration::from_secs(2);

/// The bucket, once the worker opened it.
#[derive(Default)]
pub(crate) struct Completions {
    store: OnceLock<kv::Store>,
}

impl Completions {
    pub(crate) fn set(&self, store: kv::Store) {
        let _ = self.store.set(store);
    }
}

/// The layer that skips handlers with a record and writes records for the others.
pub(crate) struct CompletionLayer(pub(crate) Arc<Completions>);

/// The key of `handler` on the event at `at`: `<group>.<sequence>.<handler>`, the handler's
/// name with `::` as `.` and any other character a key cannot hold as `=` and its hex code.
pub(crate) fn key(at: &StreamDelivery, handler: &str) -> String {
    let mut key = format!("{}.{}.", at.group, at.sequence);
    let name = handler.replace("::", ".");
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/') {
            key.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                key.push_str(&format!("={b:02X}"));
            }
        }
    }
    key
}

#[async_trait]
impl Layer for CompletionLayer {
    async fn call(&self, run: &Run, next: Next<'_>) -> RunResult {
        let (Some(at), Some(store)) = (&run.event().metadata.stream, self.0.store.get()) else {
            return next.run().await;
        };
        let again = at.delivered > 1 || at.replayed;
        if !again && run.handlers() == 1 {
            // First delivery, one handler: no record to read, none to write (its
            // acknowledgement is its record).
            return next.run().await;
        }
        // Apart, so that the common path above stays a small future (this one holds the
        // bucket's futures).
        Box::pin(with_record(store, at, again, run, next)).await
    }
}

/// Runs `next` unless its record says it succeeded already (`again`: a redelivery or a
/// replay); writes the record when it succeeds on an event with several handlers.
async fn with_record(
    store: &kv::Store,
    at: &StreamDelivery,
    again: bool,
    run: &Run,
    next: Next<'_>,
) -> RunResult {
    let key = key(at, run.handler());
    if again {
        match tokio::time::timeout(RECORD_TIMEOUT, store.get(key.clone())).await {
            Ok(Ok(Some(_))) => return next.skip("succeeded on an earlier delivery of this event"),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, key = %key, "cannot read the completion record; running the handler")
            }
            Err(_) => {
                tracing::warn!(key = %key, "reading the completion record timed out; running the handler")
            }
        }
    }
    let result = next.run().await;
    if result.is_ok() && run.handlers() > 1 && run.skipped().is_none() {
        match tokio::time::timeout(
            RECORD_TIMEOUT,
            store.put(key.clone(), Bytes::from_static(b"1")),
        )
        .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, key = %key, "cannot write the completion record; a redelivery would run the handler again")
            }
            Err(_) => {
                tracing::warn!(key = %key, "writing the completion record timed out; a redelivery would run the handler again")
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hold_only_what_a_bucket_takes() {
        let at = StreamDelivery {
            stream: "S".into(),
            group: "roast".into(),
            sequence: 42,
            delivered: 2,
            replayed: false,
        };
        assert_eq!(
            key(&at, "bot::handlers::roast"),
            "roast.42.bot.handlers.roast"
        );
        assert_eq!(key(&at, "a b<\u{e9}>"), "roast.42.a=20b=3C=C3=A9=3E");
    }
}
