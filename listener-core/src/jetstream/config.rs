//! [`JetStream`]: where the stream is, how to log in, what this process does with it.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::backoff::Backoff;
use crate::env::{parse_var, seconds};
use crate::error::{ConfigError, Result};
use crate::preview::truncate_chars;

/// The stream's name unless told otherwise.
pub const DEFAULT_STREAM: &str = "LISTENER_EVENTS";
/// The first subject token(s) of every event unless told otherwise.
pub const DEFAULT_SUBJECT_PREFIX: &str = "listener";
/// The worker group (durable consumer) unless told otherwise.
pub const DEFAULT_GROUP: &str = "listener";
/// How long events stay in the stream unless told otherwise: 7 days.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// The stream's size bound unless told otherwise: 1 GiB (the oldest events go first).
pub const DEFAULT_MAX_BYTES: i64 = 1 << 30;
/// JetStream's duplicate window unless told otherwise (raised to the listener's dedupe
/// window when that is longer).
pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(600);
/// Deliveries of one event to a group before it goes to the dead letters, unless told
/// otherwise.
pub const DEFAULT_MAX_DELIVERIES: u32 = 5;
/// How long a worker may hold an event without answering before JetStream redelivers it,
/// unless told otherwise (in-progress acks extend it while handlers run).
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);
/// Events a relay holds while the stream is unreachable, unless told otherwise.
pub const DEFAULT_RELAY_BUFFER: usize = 100_000;
/// Bytes of envelopes a relay holds while the stream is unreachable, unless told otherwise.
pub const DEFAULT_RELAY_BUFFER_BYTES: usize = 64 << 20;
/// Publishes a relay has waiting for their acknowledgement at once, unless told otherwise.
pub const DEFAULT_MAX_PENDING_ACKS: usize = 256;
/// How long a publish may wait for its acknowledgement, unless told otherwise.
pub const DEFAULT_PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// What a process does with the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Publishes what its sources receive to the stream; runs no handlers.
    Relay,
    /// Takes events from the stream (its group's share) and runs the handlers; needs no
    /// source of its own.
    Worker,
    /// Both: its sources feed the stream and its handlers take from it (the default: one
    /// process gains durable buffering, retries and dead letters, and more replicas can
    /// join).
    #[default]
    Both,
}

impl Role {
    /// Whether the process publishes its sources' events.
    pub fn relays(self) -> bool {
        matches!(self, Role::Relay | Role::Both)
    }

    /// Whether the process runs handlers on the stream's events.
    pub fn works(self) -> bool {
        matches!(self, Role::Worker | Role::Both)
    }

    fn parse(key: &str, text: &str) -> Result<Role> {
        match text.trim().to_ascii_lowercase().as_str() {
            "relay" => Ok(Role::Relay),
            "worker" => Ok(Role::Worker),
            "both" => Ok(Role::Both),
            other => Err(ConfigError::new(
                key,
                format!(
                    "`{}` is not a role: relay, worker or both",
                    truncate_chars(other, 40)
                ),
            )
            .into()),
        }
    }
}

/// How a process logs in to NATS.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) enum Auth {
    #[default]
    None,
    UserPassword(String, String),
    Token(String),
    CredsFile(PathBuf),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        match self {
            Auth::None => f.write_str("None"),
            Auth::UserPassword(user, _) => write!(f, "UserPassword({user}, ***)"),
            Auth::Token(_) => f.write_str("Token(***)"),
            Auth::CredsFile(path) => write!(f, "CredsFile({})", path.display()),
        }
    }
}

/// TLS files, for servers that ask for TLS or client certificates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    pub(crate) required: bool,
    pub(crate) root_certificates: Option<PathBuf>,
    pub(crate) client_certificate: Option<(PathBuf, PathBuf)>,
}

/// Settings of the stream, its dead letters and its completion records.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StreamSettings {
    pub(crate) name: String,
    pub(crate) prefix: String,
    pub(crate) max_age: Duration,
    pub(crate) max_bytes: i64,
    pub(crate) duplicate_window: Duration,
    pub(crate) replicas: usize,
}

impl StreamSettings {
    /// The dead-letter stream's name.
    pub(crate) fn dead_letter_stream(&self) -> String {
        format!("{}_DEAD", self.name)
    }

    /// The dead-letter stream's subject prefix.
    pub(crate) fn dead_letter_prefix(&self) -> String {
        format!("{}_dead", self.prefix)
    }

    /// The completion records' key-value bucket.
    pub(crate) fn completions_bucket(&self) -> String {
        format!("{}_DONE", self.name)
    }
}

/// Settings of a worker.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WorkerSettings {
    pub(crate) group: String,
    pub(crate) max_deliveries: u32,
    pub(crate) redelivery: Backoff,
    pub(crate) ack_wait: Duration,
    pub(crate) max_in_flight: Option<usize>,
    pub(crate) start_at: Option<SystemTime>,
    pub(crate) drain: Option<Duration>,
}

/// Settings of a relay.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RelaySettings {
    pub(crate) max_buffered: usize,
    pub(crate) max_buffered_bytes: usize,
    pub(crate) max_pending_acks: usize,
    pub(crate) publish_timeout: Duration,
}

/// A JetStream connection and what this process does with it: give it to
/// [`ListenerBuilder::jetstream`](crate::ListenerBuilder::jetstream), or set
/// `LISTENER_NATS_URL` (see [`from_lookup`](Self::from_lookup)).
///
/// ```
/// use std::time::Duration;
/// use listener_core::jetstream::{JetStream, Role};
///
/// let js = JetStream::new("nats://127.0.0.1:4222")
///     .role(Role::Worker)
///     .group("roastbot")
///     .max_deliveries(5)
///     .ack_wait(Duration::from_secs(30));
/// assert_eq!(js.stream_name(), "LISTENER_EVENTS");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct JetStream {
    pub(crate) servers: String,
    pub(crate) auth: Auth,
    pub(crate) tls: TlsFiles,
    pub(crate) role: Role,
    pub(crate) stream: StreamSettings,
    pub(crate) worker: WorkerSettings,
    pub(crate) relay: RelaySettings,
}

impl JetStream {
    /// The servers at `servers` (`nats://host:4222`, several separated by commas), with the
    /// defaults: role [`Role::Both`], stream [`DEFAULT_STREAM`] on subjects
    /// `listener.>`, group [`DEFAULT_GROUP`].
    pub fn new(servers: impl Into<String>) -> Self {
        JetStream {
            servers: servers.into(),
            auth: Auth::None,
            tls: TlsFiles::default(),
            role: Role::default(),
            stream: StreamSettings {
                name: DEFAULT_STREAM.into(),
                prefix: DEFAULT_SUBJECT_PREFIX.into(),
                max_age: DEFAULT_MAX_AGE,
                max_bytes: DEFAULT_MAX_BYTES,
                duplicate_window: DEFAULT_DUPLICATE_WINDOW,
                replicas: 1,
            },
            worker: WorkerSettings {
                group: DEFAULT_GROUP.into(),
                max_deliveries: DEFAULT_MAX_DELIVERIES,
                redelivery: Backoff {
                    initial: Duration::from_secs(1),
                    max: Duration::from_secs(60),
                    multiplier: 2.0,
                    max_attempts: None,
                },
                ack_wait: DEFAULT_ACK_WAIT,
                max_in_flight: None,
                start_at: None,
                drain: None,
            },
            relay: RelaySettings {
                max_buffered: DEFAULT_RELAY_BUFFER,
                max_buffered_bytes: DEFAULT_RELAY_BUFFER_BYTES,
                max_pending_acks: DEFAULT_MAX_PENDING_ACKS,
                publish_timeout: DEFAULT_PUBLISH_TIMEOUT,
            },
        }
    }

    /// From environment variables, read through `lookup`; `None` when `LISTENER_NATS_URL`
    /// is not set.
    ///
    /// | variable | meaning |
    /// | --- | --- |
    /// | `LISTENER_NATS_URL` | the servers (`nats://host:4222`, comma-separated); turns JetStream on |
    /// | `LISTENER_NATS_ROLE` | `relay`, `worker` or `both` (default) |
    /// | `LISTENER_NATS_STREAM` | the stream (default `LISTENER_EVENTS`; dead letters in `<stream>_DEAD`, completion records in the bucket `<stream>_DONE`) |
    /// | `LISTENER_NATS_SUBJECT_PREFIX` | subjects are `<prefix>.<toolkit>.<trigger_slug>` (default `listener`) |
    /// | `LISTENER_NATS_GROUP` | the worker group: processes of one group share its events, each group gets every event (default `listener`) |
    /// | `LISTENER_NATS_REPLICAS` | stream replicas on a cluster (default 1) |
    /// | `LISTENER_NATS_MAX_AGE_SECS` | how long events stay in the stream (default 604800) |
    /// | `LISTENER_NATS_MAX_BYTES` | the stream's size bound (default 1073741824) |
    /// | `LISTENER_NATS_DUPLICATE_WINDOW_SECS` | JetStream's duplicate window (default 600) |
    /// | `LISTENER_NATS_MAX_DELIVERIES` | deliveries before the dead letters (default 5) |
    /// | `LISTENER_NATS_ACK_WAIT_SECS` | redelivery after this long without an answer (default 30) |
    /// | `LISTENER_NATS_START_AT` | a new group starts at this time (RFC 3339, `2026-12-01T00:00:00Z`) instead of the stream's start |
    /// | `LISTENER_NATS_RELAY_BUFFER` | events a relay holds while the stream is unreachable (default 100000) |
    /// | `LISTENER_NATS_USER`, `LISTENER_NATS_PASSWORD` | log in with a user and password |
    /// | `LISTENER_NATS_TOKEN` | log in with a token |
    /// | `LISTENER_NATS_CREDS` | log in with a credentials file (JWT and NKey seed) |
    /// | `LISTENER_NATS_TLS_CA` | trust this CA file (PEM); implies TLS |
    /// | `LISTENER_NATS_TLS_CERT`, `LISTENER_NATS_TLS_KEY` | a client certificate and key (PEM); implies TLS |
    /// | `LISTENER_NATS_TLS` | `true` to require TLS with the system's roots |
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let set = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());
        let Some(url) = set("LISTENER_NATS_URL") else {
            return Ok(None);
        };
        let mut js = JetStream::new(url.trim());
        if let Some(role) = set("LISTENER_NATS_ROLE") {
            js = js.role(Role::parse("LISTENER_NATS_ROLE", &role)?);
        }
        if let Some(name) = set("LISTENER_NATS_STREAM") {
            js = js.stream(name.trim());
        }
        if let Some(prefix) = set("LISTENER_NATS_SUBJECT_PREFIX") {
            js = js.subject_prefix(prefix.trim());
        }
        if let Some(group) = set("LISTENER_NATS_GROUP") {
            js = js.group(group.trim());
        }
        if let Some(n) = parse_var::<usize>(lookup, "LISTENER_NATS_REPLICAS", "a whole number")? {
            js = js.replicas(n);
        }
        if let Some(secs) =
            parse_var::<f64>(lookup, "LISTENER_NATS_MAX_AGE_SECS", "a number of seconds")?
        {
            js = js.max_age(seconds("LISTENER_NATS_MAX_AGE_SECS", secs)?);
        }
        if let Some(n) = parse_var::<i64>(lookup, "LISTENER_NATS_MAX_BYTES", "a whole number")? {
            js = js.max_bytes(n);
        }
        if let Some(secs) = parse_var::<f64>(
            lookup,
            "LISTENER_NATS_DUPLICATE_WINDOW_SECS",
            "a number of seconds",
        )? {
            js = js.duplicate_window(seconds("LISTENER_NATS_DUPLICATE_WINDOW_SECS", secs)?);
        }
        if let Some(n) = parse_var::<u32>(lookup, "LISTENER_NATS_MAX_DELIVERIES", "a whole number")?
        {
            js = js.max_deliveries(n);
        }
        if let Some(secs) =
            parse_var::<f64>(lookup, "LISTENER_NATS_ACK_WAIT_SECS", "a number of seconds")?
        {
            js = js.ack_wait(seconds("LISTENER_NATS_ACK_WAIT_SECS", secs)?);
        }
        if let Some(text) = set("LISTENER_NATS_START_AT") {
            let at = humantime::parse_rfc3339_weak(text.trim()).map_err(|e| {
                ConfigError::new(
                    "LISTENER_NATS_START_AT",
                    format!(
                        "`{}` is not an RFC 3339 time such as 2026-12-01T00:00:00Z: {e}",
                        truncate_chars(&text, 60)
                    ),
                )
            })?;
            js = js.start_at(at);
        }
        if let Some(n) = parse_var::<usize>(lookup, "LISTENER_NATS_RELAY_BUFFER", "a whole number")?
        {
            let bytes = js.relay.max_buffered_bytes;
            js = js.relay_buffer(n, bytes);
        }
        match (set("LISTENER_NATS_USER"), set("LISTENER_NATS_PASSWORD")) {
            (Some(user), Some(password)) => js = js.user_and_password(user, password),
            (None, None) => {}
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "LISTENER_NATS_PASSWORD",
                    "is needed with LISTENER_NATS_USER",
                )
                .into())
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "LISTENER_NATS_USER",
                    "is needed with LISTENER_NATS_PASSWORD",
                )
                .into())
            }
        }
        if let Some(token) = set("LISTENER_NATS_TOKEN") {
            js = js.token(token.trim());
        }
        if let Some(path) = set("LISTENER_NATS_CREDS") {
            js = js.credentials_file(path.trim());
        }
        if let Some(path) = set("LISTENER_NATS_TLS_CA") {
            js = js.tls_root_certificates(path.trim());
        }
        match (set("LISTENER_NATS_TLS_CERT"), set("LISTENER_NATS_TLS_KEY")) {
            (Some(cert), Some(key)) => js = js.tls_client_certificate(cert.trim(), key.trim()),
            (None, None) => {}
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "LISTENER_NATS_TLS_KEY",
                    "is needed with LISTENER_NATS_TLS_CERT",
                )
                .into())
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "LISTENER_NATS_TLS_CERT",
                    "is needed with LISTENER_NATS_TLS_KEY",
                )
                .into())
            }
        }
        if let Some(flag) = set("LISTENER_NATS_TLS") {
            let required = match flag.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                other => {
                    return Err(ConfigError::new(
                        "LISTENER_NATS_TLS",
                        format!("`{}` is not true or false", truncate_chars(other, 20)),
                    )
                    .into())
                }
            };
            js = js.require_tls(required);
        }
        js.validate()?;
        Ok(Some(js))
    }

    /// What this process does: relay, worker, or both.
    pub fn role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// The stream's name (`[A-Za-z0-9_-]`, default [`DEFAULT_STREAM`]).
    pub fn stream(mut self, name: impl Into<String>) -> Self {
        self.stream.name = name.into();
        self
    }

    /// Subjects are `<prefix>.<toolkit>.<trigger_slug>`, lower-case, and lifecycle events
    /// `<prefix>.<type>` (`listener.composio.connected_account.expired`); the stream takes
    /// `<prefix>.>`, its dead letters `<prefix>_dead.>`. Default [`DEFAULT_SUBJECT_PREFIX`].
    pub fn subject_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.stream.prefix = prefix.into();
        self
    }

    /// The worker group (`[A-Za-z0-9_-]`, default [`DEFAULT_GROUP`]): a durable consumer
    /// whose processes share the events (each event to one of them); every group gets every
    /// event.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.worker.group = group.into();
        self
    }

    /// How long events stay in the stream (for replay, not only until handled; default 7
    /// days).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.stream.max_age = max_age;
        self
    }

    /// The stream's size bound in bytes (default 1 GiB); the oldest events go first.
    pub fn max_bytes(mut self, max_bytes: i64) -> Self {
        self.stream.max_bytes = max_bytes;
        self
    }

    /// JetStream's duplicate window: a publish whose `Nats-Msg-Id` was stored within it is
    /// not stored again (default 10 minutes, and at least the listener's dedupe window).
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.stream.duplicate_window = window;
        self
    }

    /// Replicas of the stream, its dead letters and its completion records on a JetStream
    /// cluster (default 1; 3 survives the loss of a node).
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.stream.replicas = replicas;
        self
    }

    /// Deliveries of one event to the group before it goes to the dead letters (default 5;
    /// at least 1). A body that does not decode goes there at once.
    pub fn max_deliveries(mut self, n: u32) -> Self {
        self.worker.max_deliveries = n;
        self
    }

    /// The delay before a failed event is delivered again, by delivery number (default 1 s,
    /// doubling, at most 60 s, jittered).
    pub fn redelivery_backoff(mut self, backoff: Backoff) -> Self {
        self.worker.redelivery = backoff;
        self
    }

    /// How long a worker may hold an event without answering before JetStream gives it to
    /// another (default 30 s). While handlers run, the worker says "in progress" every half
    /// of it, so a long handler is not redelivered; a worker that dies is.
    pub fn ack_wait(mut self, ack_wait: Duration) -> Self {
        self.worker.ack_wait = ack_wait;
        self
    }

    /// Events a worker takes from the stream at once (default: the listener's
    /// `max_in_flight`). It pulls only as many as it has free.
    pub fn worker_in_flight(mut self, n: usize) -> Self {
        self.worker.max_in_flight = Some(n);
        self
    }

    /// A group created now starts with the events stored from `at` on, instead of the
    /// stream's first (replay). An existing group keeps its position (`trigger-hub stream
    /// start-group` moves one).
    pub fn start_at(mut self, at: SystemTime) -> Self {
        self.worker.start_at = Some(at);
        self
    }

    /// How long a stopping worker lets its runs finish before it hands the rest back to the
    /// stream (default: the listener's drain timeout less a second).
    pub fn worker_drain(mut self, drain: Duration) -> Self {
        self.worker.drain = Some(drain);
        self
    }

    /// A relay's buffer while the stream is unreachable: at most `events` events and
    /// `bytes` bytes of envelopes (defaults 100,000 and 64 MiB); beyond them the oldest are
    /// dropped, counted and reported to the error hook.
    pub fn relay_buffer(mut self, events: usize, bytes: usize) -> Self {
        self.relay.max_buffered = events;
        self.relay.max_buffered_bytes = bytes;
        self
    }

    /// Publishes a relay keeps waiting for their acknowledgement at once (default 256).
    pub fn max_pending_acks(mut self, n: usize) -> Self {
        self.relay.max_pending_acks = n;
        self
    }

    /// How long a publish may wait for its acknowledgement (default 5 s). A webhook
    /// delivery behind a relay is answered 503 when it passes.
    pub fn publish_timeout(mut self, timeout: Duration) -> Self {
        self.relay.publish_timeout = timeout;
        self
    }

    /// Log in with a user and password.
    pub fn user_and_password(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.auth = Auth::UserPassword(user.into(), password.into());
        self
    }

    /// Log in with a token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.auth = Auth::Token(token.into());
        self
    }

    /// Log in with a credentials file (a user JWT and NKey seed, as `nsc` writes them).
    pub fn credentials_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.auth = Auth::CredsFile(path.into());
        self
    }

    /// Require TLS (with the system's roots unless a CA file is given).
    pub fn require_tls(mut self, required: bool) -> Self {
        self.tls.required = required;
        self
    }

    /// Trust the CA certificates in this PEM file; implies TLS.
    pub fn tls_root_certificates(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.root_certificates = Some(path.into());
        self.tls.required = true;
        self
    }

    /// Present this client certificate and key (PEM files); implies TLS.
    pub fn tls_client_certificate(
        mut self,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.tls.client_certificate = Some((cert.into(), key.into()));
        self.tls.required = true;
        self
    }

    /// The role.
    pub fn current_role(&self) -> Role {
        self.role
    }

    /// The stream's name.
    pub fn stream_name(&self) -> &str {
        &self.stream.name
    }

    /// The subject prefix.
    pub fn prefix(&self) -> &str {
        &self.stream.prefix
    }

    /// The worker group.
    pub fn group_name(&self) -> &str {
        &self.worker.group
    }

    /// The dead-letter stream's name (`<stream>_DEAD`).
    pub fn dead_letter_stream(&self) -> String {
        self.stream.dead_letter_stream()
    }

    /// Checks every setting; the builder calls it.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.servers.trim().is_empty() {
            return Err(ConfigError::new("LISTENER_NATS_URL", "is empty").into());
        }
        name_token("LISTENER_NATS_STREAM", &self.stream.name)?;
        name_token("LISTENER_NATS_GROUP", &self.worker.group)?;
        if self.stream.prefix.is_empty()
            || self.stream.prefix.split('.').any(|t| {
                t.is_empty()
                    || !t
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            })
        {
            return Err(ConfigError::new(
                "LISTENER_NATS_SUBJECT_PREFIX",
                format!(
                    "`{}` is not a subject prefix: dot-separated tokens of letters, digits, `_` and `-`",
                    truncate_chars(&self.stream.prefix, 60)
                ),
            )
            .into());
        }
        if self.stream.replicas == 0 || self.stream.replicas > 5 {
            return Err(ConfigError::new("LISTENER_NATS_REPLICAS", "must be 1 to 5").into());
        }
        if self.stream.max_age.is_zero() {
            return Err(ConfigError::new("LISTENER_NATS_MAX_AGE_SECS", "must be positive").into());
        }
        if self.stream.max_bytes <= 0 {
            return Err(ConfigError::new("LISTENER_NATS_MAX_BYTES", "must be positive").into());
        }
        if self.stream.duplicate_window.is_zero()
            || self.stream.duplicate_window > self.stream.max_age
        {
            return Err(ConfigError::new(
                "LISTENER_NATS_DUPLICATE_WINDOW_SECS",
                "must be positive and at most the stream's max age",
            )
            .into());
        }
        if self.worker.max_deliveries == 0 {
            return Err(
                ConfigError::new("LISTENER_NATS_MAX_DELIVERIES", "must be at least 1").into(),
            );
        }
        if self.worker.ack_wait < Duration::from_millis(100) {
            return Err(
                ConfigError::new("LISTENER_NATS_ACK_WAIT_SECS", "must be at least 0.1").into(),
            );
        }
        if self.worker.max_in_flight == Some(0) {
            return Err(ConfigError::new("worker_in_flight", "must be at least 1").into());
        }
        if self.relay.max_buffered == 0 || self.relay.max_buffered_bytes == 0 {
            return Err(
                ConfigError::new("LISTENER_NATS_RELAY_BUFFER", "must be at least 1").into(),
            );
        }
        if self.relay.max_pending_acks == 0 {
            return Err(ConfigError::new("max_pending_acks", "must be at least 1").into());
        }
        if self.relay.publish_timeout.is_zero() {
            return Err(ConfigError::new("publish_timeout", "must be positive").into());
        }
        Ok(())
    }
}

/// A stream, bucket or consumer name: letters, digits, `_` and `-`, at most 64.
fn name_token(key: &str, name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(ConfigError::new(
            key,
            format!(
                "`{}` is not a name: 1 to 64 letters, digits, `_` and `-`",
                truncate_chars(name, 60)
            ),
        )
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::error::Error;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |key| map.get(key).cloned()
    }

    fn config_key(result: Result<Option<JetStream>>) -> String {
        match result {
            Err(Error::Config(e)) => e.key,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn nothing_without_a_url() {
        assert_eq!(JetStream::from_lookup(&lookup(&[])).unwrap(), None);
    }

    #[test]
    fn every_variable_is_read() {
        let js = JetStream::from_lookup(&lookup(&[
            ("LISTENER_NATS_URL", "nats://a:4222,nats://b:4222"),
            ("LISTENER_NATS_ROLE", "Worker"),
            ("LISTENER_NATS_STREAM", "EVENTS"),
            ("LISTENER_NATS_SUBJECT_PREFIX", "acme.bot"),
            ("LISTENER_NATS_GROUP", "roast"),
            ("LISTENER_NATS_REPLICAS", "3"),
            ("LISTENER_NATS_MAX_DELIVERIES", "7"),
            ("LISTENER_NATS_ACK_WAIT_SECS", "12.5"),
            ("LISTENER_NATS_START_AT", "2026-12-01T00:00:00Z"),
            ("LISTENER_NATS_RELAY_BUFFER", "10"),
            ("LISTENER_NATS_TOKEN", "s3cret"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(js.servers, "nats://a:4222,nats://b:4222");
        assert_eq!(js.role, Role::Worker);
        assert_eq!(js.stream.name, "EVENTS");
        assert_eq!(js.stream.prefix, "acme.bot");
        assert_eq!(js.stream.dead_letter_prefix(), "acme.bot_dead");
        assert_eq!(js.worker.group, "roast");
        assert_eq!(js.stream.replicas, 3);
        assert_eq!(js.worker.max_deliveries, 7);
        assert_eq!(js.worker.ack_wait, Duration::from_millis(12_500));
        assert_eq!(
            js.worker.start_at,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_083_200))
        );
        assert_eq!(js.relay.max_buffered, 10);
        assert_eq!(js.auth, Auth::Token("s3cret".into()));
        assert!(
            !format!("{js:?}").contains("s3cret"),
            "secrets stay out of Debug"
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        let url = ("LISTENER_NATS_URL", "nats://127.0.0.1:4222");
        for (var, value) in [
            ("LISTENER_NATS_ROLE", "leader"),
            ("LISTENER_NATS_STREAM", "a.b"),
            ("LISTENER_NATS_GROUP", "has space"),
            ("LISTENER_NATS_SUBJECT_PREFIX", "a..b"),
            ("LISTENER_NATS_SUBJECT_PREFIX", "a.*"),
            ("LISTENER_NATS_REPLICAS", "0"),
            ("LISTENER_NATS_MAX_DELIVERIES", "0"),
            ("LISTENER_NATS_ACK_WAIT_SECS", "-1"),
            ("LISTENER_NATS_START_AT", "yesterday"),
            ("LISTENER_NATS_TLS", "maybe"),
            ("LISTENER_NATS_DUPLICATE_WINDOW_SECS", "0"),
        ] {
            assert_eq!(
                config_key(JetStream::from_lookup(&lookup(&[url, (var, value)]))),
                var,
                "{var}={value}"
            );
        }
        assert_eq!(
            config_key(JetStream::from_lookup(&lookup(&[
                url,
                ("LISTENER_NATS_USER", "u")
            ]))),
            "LISTENER_NATS_PASSWORD"
        );
    }
}
