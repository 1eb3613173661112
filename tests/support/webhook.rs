//! Webhook test helpers: a listener with a webhook source on an ephemeral port, and signed
//! requests.

use std::time::{SystemTime, UNIX_EPOCH};

use listener_core::webhook::{signed_headers, WebhookSecret, WebhookSource};
use listener_core::{Filter, Listener, ListenerBuilder, ListenerHandle};

use crate::record::Recorder;

pub const SECRET: &str = "whsec_dGVzdC1zZWNyZXQtZm9yLXdlYmhvb2tz";

/// A V3 Slack message delivery body with the given event id.
pub fn v3_body(id: &str) -> Vec<u8> {
    serde_json::json!({
        "id": id, "type": "composio.trigger.message", "timestamp": "2026-11-20T09:14:03.512Z",
        "metadata": {"trigger_slug": "SLACK_RECEIVE_MESSAGE", "user_id": "default"},
        "data": {"text": "hello"}
    })
    .to_string()
    .into_bytes()
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A listener with one webhook source (secrets given) and a recording catch-all handler.
pub struct Server {
    pub url: String,
    pub base: String,
    pub handle: ListenerHandle,
    pub http: reqwest::Client,
}

impl Server {
    pub fn start(rec: &Recorder, source: WebhookSource, builder: ListenerBuilder) -> Server {
        let addr = source.local_addr();
        let handle = builder
            .source(source)
            .handler(rec.handler("all", Filter::new()))
            .build()
            .unwrap()
            .spawn();
        Server {
            url: format!("http://{addr}/webhook"),
            base: format!("http://{addr}"),
            handle,
            http: crate::http::client(),
        }
    }

    pub fn bind(secrets: &[&str]) -> WebhookSource {
        WebhookSource::bind(
            "127.0.0.1:0".parse().unwrap(),
            secrets.iter().map(|s| WebhookSecret::new(*s)).collect(),
        )
        .unwrap()
    }

    pub fn plain(rec: &Recorder) -> Server {
        Self::start(
            rec,
            Self::bind(&[SECRET]),
            Listener::builder().without_registered_handlers(),
        )
    }

    /// POSTs `body` with the given headers; returns the status and the body.
    pub async fn post(
        &self,
        headers: &[(&str, String)],
        body: impl Into<reqwest::Body>,
    ) -> (u16, String) {
        let mut r = self
            .http
            .post(&self.url)
            .header("content-type", "application/json");
        for (k, v) in headers {
            r = r.header(*k, v);
        }
        let resp = r.body(body).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }

    /// POSTs `body` signed with `secret` as of now.
    pub async fn post_signed(&self, secret: &str, id: &str, body: &[u8]) -> (u16, String) {
        let headers = signed_headers(&WebhookSecret::new(secret), id, now(), body);
        let headers: Vec<(&str, String)> = headers.into_iter().collect();
        self.post(&headers, body.to_vec()).await
    }
}
