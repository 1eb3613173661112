//! A source for any Pusher Channels app (Pusher itself, sockudo, soketi, the local hub):
//! connect, authorize a private channel, subscribe, and turn the configured events on it
//! into trigger events — with chunk reassembly, keepalive, and Pusher's reconnect rules.
//!
//! Per connection: read `pusher:connection_established` (socket id, activity timeout),
//! fetch a fresh auth token for that socket id, send `pusher:subscribe`, and wait (at most
//! `subscribe_timeout`) for `pusher_internal:subscription_succeeded`. Then: answer
//! `pusher:ping`; send one after `activity_timeout` of silence and drop the connection if
//! nothing comes back within `pong_timeout`. `pusher:error` (or a close) with code 4000-4099
//! ends the source for good, 4100-4199 reconnects after a back-off, 4200-4299 at once; any
//! other drop reconnects with back-off and jitter, which starts over only after a connection
//! stayed subscribed for `stable_after`. A refused auth (401/403) is fatal.
//!
//! The settings are in `config` ([`PusherSource`]'s builder and checks), one connection in
//! `session`; this module holds the reconnect loop between connections.

mod auth;
pub(crate) mod chunks;
mod config;
mod drops;
pub mod protocol;
mod session;

use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use auth::Authorizer;
pub use auth::{AuthRefusal, ChannelAuth, ChannelAuthorizer};
pub use chunks::ChunkLimits;
pub use config::{validate_cluster, PusherSource, SubscriptionError, DEFAULT_SUBSCRIBE_TIMEOUT};
use drops::DropLog;
pub use drops::DEFAULT_CHUNK_DROP_SUMMARY_INTERVAL;
use session::End;

pub use super::connection::DEFAULT_STABLE_AFTER;
use super::{Source, SourceContext, SourceError};
use crate::error::{ConfigError, Error, Result};

#[async_trait]
impl Source for PusherSource {
    fn name(&self) -> String {
        format!("pusher {}:{} {}", self.host, self.port, self.channel)
    }

    async fn run(self: Box<Self>, cx: SourceContext) -> Result<()> {
        self.validate()?;
        let authorizer = Authorizer::new(self.auth.clone(), self.key.clone())?;
        let mut drops = DropLog::new(self.chunk_drop_summary);
        let result = self.reconnecting(&cx, &authorizer, &mut drops).await;
        drops.finish();
        result
    }
}

impl PusherSource {
    /// Connections one after the other, until shutdown or a fatal error.
    async fn reconnecting(
        &self,
        cx: &SourceContext,
        authorizer: &Authorizer,
        drops: &mut DropLog,
    ) -> Result<()> {
        let mut failures: u32 = 0;
        let mut last_immediate: Option<Instant> = None;
        loop {
            if cx.is_shutting_down() {
                return Ok(());
            }
            let end = self.connect_and_serve(cx, authorizer, drops).await;
            drops.flush(Instant::now());
            let (error, immediately) = match end {
                End::Shutdown => return Ok(()),
                End::Fatal(error) => {
                    return Err(match error {
                        e @ (Error::Source(SourceError::Failed { .. })
                        | Error::Config(ConfigError { .. })) => e,
                        other => Error::Source(SourceError::Failed {
                            source_name: cx.name().to_owned(),
                            message: other.to_string(),
                        }),
                    })
                }
                End::Reconnect {
                    error,
                    immediately,
                    subscribed,
                } => {
                    // Only a connection that stayed up resets the back-off: one a server
                    // drops right after subscribing is one more failed attempt.
                    if self.connection.was_stable(subscribed) {
                        failures = 0;
                    }
                    (error, immediately)
                }
            };
            failures += 1;
            if self.connection.backoff.exhausted(failures) {
                return Err(Error::Source(SourceError::Failed {
                    source_name: cx.name().to_owned(),
                    message: format!(
                        "gave up after {} failed attempts; last error: {error}",
                        failures - 1
                    ),
                }));
            }
            // "Reconnect at once" is honoured, but not twice within a few seconds: a server
            // answering every connection with 42xx must not make us spin.
            let now = Instant::now();
            let delay = if immediately
                && last_immediate.is_none_or(|t| now.duration_since(t) > Duration::from_secs(5))
            {
                last_immediate = Some(now);
                Duration::ZERO
            } else {
                self.connection.backoff.delay(failures)
            };
            if !cx
                .pause_before_retry("connection lost", failures, delay, error)
                .await
            {
                return Ok(());
            }
        }
    }
}
