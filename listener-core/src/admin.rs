//! The admin endpoint: liveness, readiness and metrics over HTTP, for orchestrators'
//! probes and Prometheus' scrapes (feature `admin`; see
//! [`ListenerBuilder::admin`](crate::ListenerBuilder::admin)).
//!
//! - `GET /healthz`: 200 `{"status":"live"}` while the process serves requests.
//! - `GET /readyz`: 200 when every source is connected (a webhook source: listening), 503
//!   otherwise and once shutdown has begun; the JSON body names each source's health.
//! - `GET /metrics`: the Prometheus text format, with the `prometheus` feature; 404
//!   otherwise.
//!
//! It runs on the webhook server's accept loop, with tighter bounds: at most
//! [`ADMIN_MAX_CONNECTIONS`] connections, [`ADMIN_HEADER_TIMEOUT`] for a request's headers,
//! [`ADMIN_IDLE_TIMEOUT`] between requests, [`ADMIN_MAX_HEADER_BYTES`] of header block. It
//! starts with the listener and stops after the listener has drained, so `/readyz` answers
//! 503 throughout the shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::dispatch::Dispatcher;
use crate::error::{ConfigError, Error, Result};
use crate::preview::truncate_chars;
use crate::serve::{serve, ConnectionLimits};
use crate::source::{Health, HealthBoard};

/// Most connections the admin endpoint serves at once (probes and a scraper need few); at
/// the cap the oldest idle one makes room.
pub const ADMIN_MAX_CONNECTIONS: usize = 16;
/// How long an admin request's header block may take to arrive.
pub const ADMIN_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an admin connection may wait for its next request.
pub const ADMIN_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest header block of an admin request, in bytes (probes and scrapers send little);
/// beyond, 431.
pub const ADMIN_MAX_HEADER_BYTES: usize = 16 << 10;
/// How long the listener waits, once drained, for admin requests in progress to finish.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How often the Prometheus exporter's upkeep runs (it bounds what its histograms buffer
/// between scrapes).
#[cfg(feature = "prometheus")]
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);
/// At most this many characters of a source's last error appear in `/readyz`.
const MAX_ERROR_CHARS: usize = 300;

/// What `/metrics` serves.
#[derive(Clone)]
pub(crate) enum MetricsExport {
    /// The handle of the Prometheus recorder.
    #[cfg(feature = "prometheus")]
    Prometheus(crate::telemetry::PrometheusHandle),
    /// Nothing: why (answered with 404).
    Unavailable(&'static str),
}

/// A bound admin endpoint, not yet serving.
pub(crate) struct Admin {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    metrics: MetricsExport,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").field("addr", &self.addr).finish()
    }
}

impl Admin {
    /// Binds `addr` now; a failure is a configuration error about `key` (the setting that
    /// gave the address). `/metrics` answers 404 until [`metrics`](Self::metrics) is given.
    pub(crate) fn bind(addr: SocketAddr, key: &str) -> Result<Self> {
        let refused = |e: std::io::Error| {
            Error::Config(ConfigError::new(
                key,
                format!("the admin endpoint cannot listen on {addr}: {e}"),
            ))
        };
        let listener = std::net::TcpListener::bind(addr).map_err(refused)?;
        listener.set_nonblocking(true).map_err(refused)?;
        let addr = listener.local_addr().map_err(refused)?;
        Ok(Admin {
            listener,
            addr,
            metrics: MetricsExport::Unavailable("no metrics exporter\n"),
        })
    }

    /// What `/metrics` serves.
    pub(crate) fn metrics(mut self, metrics: MetricsExport) -> Self {
        self.metrics = metrics;
        self
    }

    /// The bound address.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts serving (within a tokio runtime) until [`Running::stop`].
    pub(crate) fn spawn(self, board: Arc<HealthBoard>, dispatcher: Dispatcher) -> Running {
        let stop = CancellationToken::new();
        let addr = self.addr;
        let state = Arc::new(AdminState {
            board,
            dispatcher,
            metrics: self.metrics,
        });
        let limits = ConnectionLimits {
            server: "admin",
            max_connections: ADMIN_MAX_CONNECTIONS,
            header_timeout: ADMIN_HEADER_TIMEOUT,
            idle_timeout: ADMIN_IDLE_TIMEOUT,
            max_header_bytes: ADMIN_MAX_HEADER_BYTES,
        };
        let listener = self.listener;
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(%addr, error = %e, "the admin endpoint could not start");
                    return;
                }
            };
            tracing::info!(%addr, "admin endpoint listening (/healthz, /readyz, /metrics)");
            let upkeep = upkeep(state.metrics.clone());
            let app = router(state);
            tokio::select! {
                () = serve(listener, app, limits, token.cancelled_owned()) => {}
                () = upkeep => {}
            }
        });
        Running { stop, task }
    }
}

/// A serving admin endpoint.
pub(crate) struct Running {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Running {
    /// Stops accepting, lets requests in progress finish (for a few seconds at most) and
    /// closes.
    pub(crate) async fn stop(mut self) {
        self.stop.cancel();
        if tokio::time::timeout(STOP_GRACE, &mut self.task)
            .await
            .is_err()
        {
            tracing::warn!("admin requests still in progress at shutdown; closing them");
            self.task.abort();
        }
    }
}

/// Runs the exporter's upkeep for as long as it is polled (forever, or never returns when
/// there is nothing to keep up).
async fn upkeep(metrics: MetricsExport) {
    match metrics {
        #[cfg(feature = "prometheus")]
        MetricsExport::Prometheus(handle) => {
            let mut ticks = tokio::time::interval(UPKEEP_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                handle.run_upkeep();
            }
        }
        MetricsExport::Unavailable(_) => std::future::pending().await,
    }
}

struct AdminState {
    board: Arc<HealthBoard>,
    dispatcher: Dispatcher,
    metrics: MetricsExport,
}

fn router(state: Arc<AdminState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

fn json(code: StatusCode, body: String) -> Response {
    (
        code,
        [
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

async fn healthz() -> Response {
    json(StatusCode::OK, r#"{"status":"live"}"#.to_owned())
}

/// The body of `/readyz`.
#[derive(Serialize)]
struct Readiness<'a> {
    /// `ready`, `not_ready` or `shutting_down`.
    status: &'static str,
    sources: Vec<SourceState<'a>>,
}

/// One source in `/readyz`.
#[derive(Serialize)]
struct SourceState<'a> {
    name: &'a str,
    /// [`Health::state`].
    health: &'static str,
    ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_in_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl<'a> SourceState<'a> {
    fn of(name: &'a str, health: &Health) -> Self {
        let (attempt, retry_in_ms, error) = match health {
            Health::Reconnecting {
                attempt,
                retry_in,
                error,
            } => (
                Some(*attempt),
                Some(u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX)),
                Some(error.as_str()),
            ),
            Health::Failed(error) => (None, None, Some(error.as_str())),
            _ => (None, None, None),
        };
        SourceState {
            name,
            health: health.state(),
            ready: health.is_ready(),
            attempt,
            retry_in_ms,
            error: error.map(|e| truncate_chars(e, MAX_ERROR_CHARS)),
        }
    }
}

/// The `/readyz` answer for these sources.
fn readiness(sources: &[crate::source::SourceHealth], shutting_down: bool) -> Response {
    let ready = !shutting_down && sources.iter().all(|s| s.health.is_ready());
    let body = Readiness {
        status: if shutting_down {
            "shutting_down"
        } else if ready {
            "ready"
        } else {
            "not_ready"
        },
        sources: sources
            .iter()
            .map(|s| SourceState::of(&s.name, &s.health))
            .collect(),
    };
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    // Strings and numbers only: serializing cannot fail.
    json(code, serde_json::to_string(&body).unwrap_or_default())
}

async fn readyz(State(st): State<Arc<AdminState>>) -> Response {
    readiness(&st.board.snapshot(), st.dispatcher.is_closed())
}

async fn metrics(State(st): State<Arc<AdminState>>) -> Response {
    match &st.metrics {
        #[cfg(feature = "prometheus")]
        MetricsExport::Prometheus(handle) => (
            StatusCode::OK,
            [(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            )],
            handle.render(),
        )
            .into_response(),
        MetricsExport::Unavailable(why) => (
            StatusCode::NOT_FOUND,
            [(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            *why,
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceHealth;

    async fn body_of(response: Response) -> (u16, serde_json::Value) {
        let code = response.status().as_u16();
        let bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        (code, serde_json::from_slice(&bytes).unwrap())
    }

    fn source(name: &str, health: Health) -> SourceHealth {
        SourceHealth {
            name: name.into(),
            health,
        }
    }

    #[tokio::test]
    async fn ready_only_when_every_source_is_connected() {
        let (code, body) = body_of(readiness(&[source("a", Health::Connected)], false)).await;
        assert_eq!(code, 200);
        assert_eq!(
            body,
            serde_json::json!({"status": "ready", "sources": [{"name": "a", "health": "connected", "ready": true}]})
        );

        let sources = [
            source("a", Health::Connected),
            source(
                "b",
                Health::Reconnecting {
                    attempt: 3,
                    retry_in: Duration::from_millis(250),
                    error: "x".repeat(1000),
                },
            ),
        ];
        let (code, body) = body_of(readiness(&sources, false)).await;
        assert_eq!(code, 503);
        assert_eq!(body["status"], "not_ready");
        let b = &body["sources"][1];
        assert_eq!(
            (
                &b["name"],
                &b["health"],
                &b["ready"],
                &b["attempt"],
                &b["retry_in_ms"]
            ),
            (
                &serde_json::json!("b"),
                &serde_json::json!("reconnecting"),
                &serde_json::json!(false),
                &serde_json::json!(3),
                &serde_json::json!(250)
            )
        );
        assert!(b["error"].as_str().unwrap().chars().count() <= MAX_ERROR_CHARS + 1);

        for health in [
            Health::Starting,
            Health::Stopped,
            Health::Failed("gone".into()),
        ] {
            let (code, _) = body_of(readiness(&[source("a", health)], false)).await;
            assert_eq!(code, 503);
        }
        let (code, body) = body_of(readiness(&[source("a", Health::Connected)], true)).await;
        assert_eq!(
            (code, &body["status"]),
            (503, &serde_json::json!("shutting_down"))
        );
    }

    #[test]
    fn a_taken_address_is_a_configuration_error_naming_the_setting() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = Admin::bind(addr, "LISTENER_ADMIN_ADDR").unwrap_err();
        match err {
            Error::Config(ConfigError { key, message }) => {
                assert_eq!(key, "LISTENER_ADMIN_ADDR");
                assert!(
                    message.starts_with(&format!("the admin endpoint cannot listen on {addr}: ")),
                    "{message}"
                );
            }
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }
}
