//! Realtime test peers: a managed `sockudo` process (a Pusher-protocol server from
//! crates.io), publishing through its signed HTTP API, and a fake Composio serving the two
//! realtime endpoints (credentials; channel auth signed with the app secret).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use serde_json::{json, Value};
use sha2::Sha256;

pub const APP_ID: &str = "424242";
pub const APP_KEY: &str = "listener-test-key";
pub const APP_SECRET: &str = "listener-test-secret";
pub const PROJECT_ID: &str = "pr_test";
pub const CHANNEL: &str = "private-pr_test_triggers";
pub const API_KEY: &str = "ak_test_key";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A free TCP port on 127.0.0.1 (bound, then released for the server to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running sockudo; killed on drop.
pub struct Sockudo {
    bin: PathBuf,
    pub port: u16,
    child: Option<Child>,
    http: reqwest::Client,
}

impl Sockudo {
    /// Starts sockudo on a free port and waits until `GET /up` answers.
    pub async fn start(bin: &Path) -> Sockudo {
        let mut s = Sockudo {
            bin: bin.to_owned(),
            port: free_port(),
            child: None,
            http: crate::http::client(),
        };
        s.spawn().await;
        s
    }

    async fn spawn(&mut self) {
        let log = std::env::temp_dir().join(format!("sockudo-{}.log", self.port));
        let log = std::fs::File::create(&log).expect("sockudo log file");
        let child = Command::new(&self.bin)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOST", "127.0.0.1")
            .env("PORT", self.port.to_string())
            .env("METRICS_ENABLED", "false")
            .env("ADAPTER_DRIVER", "local")
            .env("APP_MANAGER_DRIVER", "memory")
            .env("CACHE_DRIVER", "memory")
            .env("QUEUE_DRIVER", "memory")
            .env("RATE_LIMITER_DRIVER", "memory")
            // The tests publish faster than the API's default rate limit allows.
            .env("RATE_LIMITER_ENABLED", "false")
            .env("SOCKUDO_OTEL_ENABLED", "false")
            .env("SOCKUDO_DEFAULT_APP_ENABLED", "true")
            .env("SOCKUDO_DEFAULT_APP_ID", APP_ID)
            .env("SOCKUDO_DEFAULT_APP_KEY", APP_KEY)
            .env("SOCKUDO_DEFAULT_APP_SECRET", APP_SECRET)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start sockudo");
        self.child = Some(child);
        let url = format!("http://127.0.0.1:{}/up", self.port);
        crate::wait::within("sockudo to answer GET /up", async {
            loop {
                if let Ok(r) = self.http.get(&url).send().await {
                    if r.status().is_success() {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }

    /// Kills the server (SIGKILL: no goodbye to clients).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// Publishes `data` (sent as a string, as Composio does) as `event` on `channel`
    /// through the signed HTTP API.
    pub async fn publish(&self, channel: &str, event: &str, data: &str) {
        let body = json!({"name": event, "channel": channel, "data": data}).to_string();
        let path = format!("/apps/{APP_ID}/events");
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .to_string();
        let md5 = hex(&Md5::digest(body.as_bytes()));
        let query =
            format!("auth_key={APP_KEY}&auth_timestamp={ts}&auth_version=1.0&body_md5={md5}");
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(APP_SECRET.as_bytes()).unwrap();
        mac.update(format!("POST\n{path}\n{query}").as_bytes());
        let sig = hex(&mac.finalize().into_bytes());
        let url = format!(
            "http://127.0.0.1:{}{path}?{query}&auth_signature={sig}",
            self.port
        );
        let r = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("publish");
        let status = r.status();
        assert!(
            status.is_success(),
            "publish answered {status}: {}",
            r.text().await.unwrap_or_default()
        );
    }
}

impl Drop for Sockudo {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How the fake auth endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Signs with the app secret, as Composio's backend does.
    Sign,
    /// Answers 401.
    Refuse,
    /// Answers 200 with a token signed with the wrong secret.
    WrongSignature,
    /// Answers 200 with a body that never ends (a hostile or broken endpoint).
    Endless,
}

#[derive(Debug)]
struct FakeState {
    mode: AuthMode,
    socket_ids: Vec<String>,
    credential_calls: usize,
    cluster: String,
    endless_credentials: Arc<AtomicBool>,
    /// Bytes of endless answers handed to the transport so far.
    streamed: Arc<AtomicU64>,
}

/// 64 KiB chunks forever, counted into `streamed` as they are taken.
fn endless_body(streamed: Arc<AtomicU64>) -> Response {
    const CHUNK: usize = 64 << 10;
    let chunk = Bytes::from(vec![b' '; CHUNK]);
    let stream = futures_util::stream::repeat_with(move || {
        streamed.fetch_add(CHUNK as u64, Ordering::Relaxed);
        Ok::<_, std::io::Error>(chunk.clone())
    });
    Body::from_stream(stream).into_response()
}

/// Composio's realtime endpoints, faked on 127.0.0.1.
#[derive(Clone)]
pub struct FakeComposio {
    pub addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
}

impl FakeComposio {
    pub async fn start(mode: AuthMode) -> FakeComposio {
        let state = Arc::new(Mutex::new(FakeState {
            mode,
            socket_ids: Vec::new(),
            credential_calls: 0,
            cluster: "mt1".into(),
            endless_credentials: Arc::default(),
            streamed: Arc::default(),
        }));
        let app = Router::new()
            .route(
                "/api/v3/internal/sdk/realtime/credentials",
                get(credentials),
            )
            .route("/api/v3/internal/sdk/realtime/auth", post(auth))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeComposio { addr, state }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket ids auth tokens were requested for, in order.
    pub fn socket_ids(&self) -> Vec<String> {
        self.state.lock().unwrap().socket_ids.clone()
    }

    pub fn credential_calls(&self) -> usize {
        self.state.lock().unwrap().credential_calls
    }

    pub fn set_cluster(&self, cluster: &str) {
        self.state.lock().unwrap().cluster = cluster.to_owned();
    }

    /// Makes the credentials endpoint answer 200 with a body that never ends.
    pub fn set_credentials_endless(&self) {
        self.state
            .lock()
            .unwrap()
            .endless_credentials
            .store(true, Ordering::Relaxed);
    }

    /// Bytes of never-ending answers the server has handed to the transport (what the
    /// client took, plus what sat in socket buffers when it hung up).
    pub fn streamed_bytes(&self) -> u64 {
        self.state.lock().unwrap().streamed.load(Ordering::Relaxed)
    }
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("x-api-key").and_then(|v| v.to_str().ok()) == Some(API_KEY)
}

async fn credentials(State(state): State<Arc<Mutex<FakeState>>>, headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"message": "bad key"}})),
        )
            .into_response();
    }
    let mut s = state.lock().unwrap();
    s.credential_calls += 1;
    if s.endless_credentials.load(Ordering::Relaxed) {
        return endless_body(Arc::clone(&s.streamed));
    }
    (
        StatusCode::OK,
        Json(json!({"pusher_key": APP_KEY, "project_id": PROJECT_ID, "pusher_cluster": s.cluster})),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct AuthForm {
    channel_name: String,
    socket_id: String,
}

async fn auth(
    State(state): State<Arc<Mutex<FakeState>>>,
    headers: HeaderMap,
    Form(form): Form<AuthForm>,
) -> Response {
    if !authorized(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"message": "bad key"}})),
        )
            .into_response();
    }
    let (mode, streamed) = {
        let mut s = state.lock().unwrap();
        s.socket_ids.push(form.socket_id.clone());
        (s.mode, Arc::clone(&s.streamed))
    };
    let secret = match mode {
        AuthMode::Refuse => {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": {"message": "project may not use realtime"}})),
            )
                .into_response()
        }
        AuthMode::Endless => return endless_body(streamed),
        AuthMode::Sign => APP_SECRET,
        AuthMode::WrongSignature => "not-the-secret",
    };
    let token = listener_core::source::pusher::protocol::sign_channel(
        APP_KEY,
        secret,
        &form.socket_id,
        &form.channel_name,
    );
    // Composio's answer may carry channel_data; the client must ignore it.
    (
        StatusCode::OK,
        Json(json!({"auth": token, "channel_data": "{\"user_id\":\"x\"}"})),
    )
        .into_response()
}

/// A V3 trigger message as Composio sends it on the channel.
pub fn v3_event(id: &str, slug: &str, payload: Value) -> String {
    json!({
        "id": id, "type": "composio.trigger.message", "timestamp": "2026-11-20T09:14:03.512Z",
        "metadata": {"trigger_slug": slug, "trigger_id": "ti_1", "user_id": "default",
                     "connected_account_id": "ca_1", "auth_config_id": "ac_1", "log_id": "log_1"},
        "data": payload
    })
    .to_string()
}
