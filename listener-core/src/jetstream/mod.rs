//! Several replicas, every event handled once, none lost: NATS JetStream between the
//! sources and the handlers (feature `jetstream`).
//!
//! Composio's realtime channel gives every connected subscriber every event and keeps
//! nothing for one that is not connected; webhook retries spread over replicas by a load
//! balancer land on different processes. With a stream in between, a process is a
//! **relay** (its sources publish to the stream), a **worker** (it runs the handlers on
//! the stream's events), or both ([`Role`]):
//!
//! ```no_run
//! use listener_core::prelude::*;
//! use listener_core::jetstream::{JetStream, Role};
//!
//! # async fn run() -> anyhow::Result<()> {
//! // Or LISTENER_NATS_URL=nats://127.0.0.1:4222 LISTENER_NATS_ROLE=worker with Listener::from_env().
//! let listener = Listener::builder()
//!     .jetstream(JetStream::new("nats://127.0.0.1:4222").role(Role::Worker).group("roastbot"))
//!     .build()?;
//! listener.wait_forever().await?;
//! # Ok(()) }
//! ```
//!
//! # Relays
//!
//! Every event a source of a relay receives is published to the stream (default
//! `LISTENER_EVENTS`) under `<prefix>.<toolkit>.<trigger_slug>`, lower-case
//! (`listener.slack.slack_receive_message`), lifecycle events under their type
//! (`listener.composio.connected_account.expired`). The message's `Nats-Msg-Id` is the
//! event's delivery id (a digest of the body when the envelope has none), so JetStream's
//! duplicate window stores an event once however many relays received it. The body is
//! the envelope as it arrived, which any NATS client in any language can decode with
//! Composio's SDK; what the source added travels in headers ([`headers`]): the source and
//! the receive time, and where there is one, the delivery id taken from a webhook header
//! and the sender's delivery attempt. A relay behind the realtime channel decodes only an
//! event's identity (the payload is validated, not built): the worker that handles it
//! decodes it in full.
//!
//! - **Webhooks behind a relay** are answered 200 only once the stream acknowledged the
//!   publish (200 means stored); while the stream is unreachable, 503 with `Retry-After`,
//!   so the sender retries.
//! - **The realtime channel behind a relay**: events wait in a bounded buffer while the
//!   stream is unreachable ([`JetStream::relay_buffer`]) and are published in order when
//!   it is back; past the bound the oldest are dropped, counted
//!   (`listener_relay_dropped_total`) and reported to the error hook. A realtime event is
//!   never acknowledged to anyone, so what protects it from a relay going away is other
//!   relays: run N relays subscribed at once, and an event reaches the stream if any of
//!   them received it.
//!
//! # Workers
//!
//! A worker group ([`JetStream::group`]) is one durable pull consumer: the processes of a
//! group share it, each event going to one of them; two groups (two services) each get
//! every event. A group created with [`JetStream::start_at`] starts at that time (replay).
//! A worker pulls only as many events as it has free in-flight slots, and while an event's
//! handlers run it tells the server so every half ack-wait, so that only a worker that
//! died has its events delivered elsewhere. Once the handlers are done:
//!
//! - all succeeded, or none matched: acknowledged;
//! - one failed: delivered again after a back-off by delivery number
//!   ([`JetStream::redelivery_backoff`]), the attempt reaching the handlers
//!   ([`Meta::attempt`](crate::Meta::attempt) counts deliveries;
//!   [`TriggerMetadata::stream`](crate::TriggerMetadata::stream) says where the event came
//!   from);
//! - after the last allowed delivery ([`JetStream::max_deliveries`]), or at once for a
//!   body that is not an event: stored in the dead-letter stream (`<stream>_DEAD`, subject
//!   `<prefix>_dead.<group>.…`, with the error, the handlers and the deliveries in headers)
//!   and terminated: not delivered again. `trigger-hub stream replay` puts dead letters
//!   back for their group.
//!
//! **A handler that succeeded does not run again because a sibling failed.** The worker
//! keeps completion records in a key-value bucket (`<stream>_DONE`): when a handler
//! succeeds on an event that matched several, a key for (group, event, handler) is
//! written, and when the event comes back its handlers with a record are skipped. The
//! alternative, a consumer per handler, would make the worker know the handlers (it is a
//! source, and sources do not), pull and decode each event once per handler, and multiply
//! consumers by handlers; the records cost nothing for the usual event (one handler, or
//! all succeeding the first time reads nothing) and one write per handler otherwise.
//!
//! **At shutdown** a worker stops pulling, lets the runs in flight finish within its drain
//! time ([`JetStream::worker_drain`]) and acknowledges them, and hands back what did not
//! finish (a negative acknowledgement without delay), so another worker takes it at once.
//! Events are at least once: a worker killed mid-run has its unfinished events delivered
//! again after the ack wait, and those runs happen twice. No event is acknowledged whose
//! handlers did not finish.
//!
//! # The stream
//!
//! Set up at start, idempotently, by relays and workers alike: file storage, limits by age
//! and bytes (events stay for replay, not only until handled), a duplicate window at least
//! as long as the listener's dedupe window, and [`JetStream::replicas`] for a cluster. The
//! dead letters and the completion records share those limits and replicas.

mod completion;
mod config;
mod connect;
mod envelope;
mod error;
pub mod headers;
pub mod ops;
mod relay;
mod setup;
mod subject;
mod worker;

pub use config::{
    JetStream, Role, DEFAULT_ACK_WAIT, DEFAULT_DUPLICATE_WINDOW, DEFAULT_GROUP, DEFAULT_MAX_AGE,
    DEFAULT_MAX_BYTES, DEFAULT_MAX_DELIVERIES, DEFAULT_MAX_PENDING_ACKS, DEFAULT_PUBLISH_TIMEOUT,
    DEFAULT_RELAY_BUFFER, DEFAULT_RELAY_BUFFER_BYTES, DEFAULT_STREAM, DEFAULT_SUBJECT_PREFIX,
};
pub use error::JetStreamError;
pub use subject::subject_of;

pub(crate) use completion::{CompletionLayer, Completions};
pub(crate) use relay::Relay;
pub(crate) use worker::Worker;
