//! Connecting to NATS with the configured servers, credentials and TLS.

use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event, ServerAddr};

use super::config::{Auth, JetStream};
use super::error::JetStreamError;

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest pause between reconnection attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(2);

/// The servers of `cfg`, parsed.
fn servers(cfg: &JetStream) -> Result<Vec<ServerAddr>, JetStreamError> {
    cfg.servers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ServerAddr>()
                .map_err(|e| JetStreamError::Connect {
                    servers: cfg.servers.clone(),
                    message: format!("`{s}` is not a server address: {e}"),
                })
        })
        .collect()
}

/// A client of `cfg`'s servers, named `name` (it shows in the server's connection list).
/// It returns at once: the client connects, and reconnects forever, in the background, so
/// a process starts while NATS is down; what needs the server fails (and is retried) until
/// it is there.
pub(crate) async fn connect(cfg: &JetStream, name: &str) -> Result<Client, JetStreamError> {
    connect_with(cfg, name, true).await
}

/// A client of `cfg`'s servers that fails at once when none answers (for commands).
pub(crate) async fn connect_once(cfg: &JetStream, name: &str) -> Result<Client, JetStreamError> {
    connect_with(cfg, name, false).await
}

async fn connect_with(cfg: &JetStream, name: &str, retry: bool) -> Result<Client, JetStreamError> {
    let servers = servers(cfg)?;
    let label = name.to_owned();
    let mut options = ConnectOptions::new().name(name);
    if retry {
        options = options.retry_on_initial_connect();
    }
    let mut options = options
        .max_reconnects(None)
        .connection_timeout(CONNECT_TIMEOUT)
        .reconnect_delay_callback(|attempts| {
            // 0, 50 ms, 100 ms, ... up to 2 s: quick after a blip, gentle on a long outage.
            (Duration::from_millis(50) * attempts.min(40) as u32).min(MAX_RECONNECT_DELAY)
        })
        .event_callback(move |event| {
            let label = label.clone();
            async move {
                match event {
                    Event::Connected => tracing::info!(client = %label, "connected to NATS"),
                    Event::Disconnected => {
                        tracing::warn!(client = %label, "disconnected from NATS; reconnecting")
                    }
                    other => tracing::debug!(client = %label, event = %other, "NATS client event"),
                }
            }
        });
    options = match &cfg.auth {
        Auth::None => options,
        Auth::UserPassword(user, password) => {
            options.user_and_password(user.clone(), password.clone())
        }
        Auth::Token(token) => options.token(token.clone()),
        Auth::CredsFile(path) => {
            options
                .credentials_file(path)
                .await
                .map_err(|e| JetStreamError::Connect {
                    servers: cfg.servers.clone(),
                    message: format!("cannot read the credentials file {}: {e}", path.display()),
                })?
        }
    };
    if cfg.tls.required {
        options = options.require_tls(true);
    }
    if let Some(ca) = &cfg.tls.root_certificates {
        options = options.add_root_certificates(ca.clone());
    }
    if let Some((cert, key)) = &cfg.tls.client_certificate {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    options
        .connect(servers)
        .await
        .map_err(|e| JetStreamError::Connect {
            servers: cfg.servers.clone(),
            message: e.to_string(),
        })
}
