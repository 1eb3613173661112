//! sockudo (a Pusher-protocol server from crates.io) as the realtime benchmark's second
//! server: started from `SOCKUDO_BIN`, fed through its signed HTTP API (Pusher's REST API).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use tokio::process::{Child, Command};

/// The app sockudo serves (its default app, configured through the environment).
pub const APP_ID: &str = "424242";
/// The app key clients connect with.
pub const APP_KEY: &str = "bench-app-key";
/// The app secret that signs channel auth and API requests.
pub const APP_SECRET: &str = "bench-app-secret";

/// A running sockudo; killed on drop.
pub struct SockudoProc {
    _child: Child,
    /// Where it listens (websocket and HTTP API).
    pub addr: SocketAddr,
}

impl SockudoProc {
    /// Starts sockudo on a free port with limits raised for a benchmark, and waits until
    /// `GET /up` answers.
    pub async fn start(bin: &Path) -> anyhow::Result<SockudoProc> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::env::temp_dir().join(format!("bench-sockudo-{port}.log"));
        let log = std::fs::File::create(&log).context("sockudo log file")?;
        let child = Command::new(bin)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("METRICS_ENABLED", "false")
            .env("ADAPTER_DRIVER", "local")
            .env("APP_MANAGER_DRIVER", "memory")
            .env("CACHE_DRIVER", "memory")
            .env("QUEUE_DRIVER", "memory")
            .env("RATE_LIMITER_DRIVER", "memory")
            .env("RATE_LIMITER_ENABLED", "false")
            .env("SOCKUDO_OTEL_ENABLED", "false")
            .env("SOCKUDO_DEFAULT_APP_ENABLED", "true")
            .env("SOCKUDO_DEFAULT_APP_ID", APP_ID)
            .env("SOCKUDO_DEFAULT_APP_KEY", APP_KEY)
            .env("SOCKUDO_DEFAULT_APP_SECRET", APP_SECRET)
            .env(
                "SOCKUDO_DEFAULT_APP_MAX_BACKEND_EVENTS_PER_SECOND",
                "100000000",
            )
            .env(
                "SOCKUDO_DEFAULT_APP_MAX_READ_REQUESTS_PER_SECOND",
                "100000000",
            )
            .env("SOCKUDO_DEFAULT_APP_MAX_EVENT_BATCH_SIZE", "100")
            .env("SOCKUDO_DEFAULT_APP_MAX_CONNECTIONS", "1000")
            // The benchmark publishes in bursts: queue them (as the hub is told to) rather
            // than disconnecting a client that is 1,000 messages behind.
            .env("WEBSOCKET_MAX_MESSAGES", "2000000")
            .env("WEBSOCKET_MAX_BYTES", "none")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(format!("http://{addr}/up")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            anyhow::ensure!(Instant::now() < deadline, "sockudo never answered GET /up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(SockudoProc {
            _child: child,
            addr,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A Pusher REST API URL signed with the app secret (auth_version 1.0): `params` are extra
/// query parameters, `body` the request body (its MD5 is signed when not empty).
pub fn signed_url(
    addr: SocketAddr,
    method: &str,
    path: &str,
    params: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<String> {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)?
        .as_secs()
        .to_string();
    let mut query: Vec<(String, String)> = vec![
        ("auth_key".into(), APP_KEY.into()),
        ("auth_timestamp".into(), ts),
        ("auth_version".into(), "1.0".into()),
    ];
    if !body.is_empty() {
        query.push(("body_md5".into(), hex(&Md5::digest(body))));
    }
    query.extend(
        params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    query.sort();
    let query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(APP_SECRET.as_bytes())
        .map_err(|e| anyhow::anyhow!("hmac key: {e}"))?;
    mac.update(format!("{method}\n{path}\n{query}").as_bytes());
    let signature = hex(&mac.finalize().into_bytes());
    Ok(format!(
        "http://{addr}{path}?{query}&auth_signature={signature}"
    ))
}

/// Subscribers of `channel` right now, from the channel-info endpoint.
pub async fn subscription_count(
    http: &reqwest::Client,
    addr: SocketAddr,
    channel: &str,
) -> anyhow::Result<u64> {
    let path = format!("/apps/{APP_ID}/channels/{channel}");
    let url = signed_url(addr, "GET", &path, &[("info", "subscription_count")], b"")?;
    let r = http.get(url).send().await?;
    let status = r.status();
    let body = r.bytes().await?;
    anyhow::ensure!(
        status.is_success(),
        "channel info answered {status}: {}",
        String::from_utf8_lossy(&body)
    );
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(v["subscription_count"].as_u64().unwrap_or(0))
}

/// Events per `batch_events` request (sockudo's limit is raised to this at start).
const BATCH: usize = 100;

/// `POST /apps/{id}/batch_events` bodies carrying `events` (JSON texts, each sent as the
/// `data` string of one `event` on `channel`), 100 per body.
pub fn batch_bodies(channel: &str, event: &str, events: &[String]) -> anyhow::Result<Vec<Vec<u8>>> {
    events
        .chunks(BATCH)
        .map(|chunk| {
            let batch: Vec<serde_json::Value> = chunk
                .iter()
                .map(|data| serde_json::json!({"name": event, "channel": channel, "data": data}))
                .collect();
            Ok(serde_json::to_vec(&serde_json::json!({ "batch": batch }))?)
        })
        .collect()
}

/// Sends batch bodies with a few requests in flight; returns once sockudo accepted them all.
pub async fn publish_bodies(
    http: &reqwest::Client,
    addr: SocketAddr,
    bodies: Vec<Vec<u8>>,
) -> anyhow::Result<()> {
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    const IN_FLIGHT: usize = 4;
    let path = format!("/apps/{APP_ID}/batch_events");
    stream::iter(bodies)
        .map(|body| {
            let path = &path;
            async move {
                let url = signed_url(addr, "POST", path, &[], &body)?;
                let r = http
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                let status = r.status();
                if !status.is_success() {
                    let text = r.text().await.unwrap_or_default();
                    anyhow::bail!("batch_events answered {status}: {text}");
                }
                Ok(())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<()>()
        .await
}
