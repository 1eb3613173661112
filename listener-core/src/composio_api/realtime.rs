//! The realtime endpoints: the project's Pusher credentials and private-channel auth
//! tokens, which the realtime source asks for before and at every connection.
//!
//! `GET /api/v3/internal/sdk/realtime/credentials` answers `{"pusher_key", "project_id",
//! "pusher_cluster"}`; `POST /api/v3/internal/sdk/realtime/auth` takes a form-encoded
//! `channel_name` and `socket_id` and answers `{"auth": "key:signature"}` (a
//! `channel_data` in the answer is ignored: sending it on would break a private channel's
//! signature check). Both answers are a few hundred bytes, so they are read under a small
//! bound, [`MAX_REALTIME_ANSWER_BYTES`].

use reqwest::Method;
use serde::Deserialize;

use super::{ApiResult, Call, ComposioClient, Idempotency};

/// The bound on what the realtime endpoints' answers are read to: 64 KiB.
pub const MAX_REALTIME_ANSWER_BYTES: usize = 64 << 10;

/// The project's realtime credentials.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RealtimeCredentials {
    /// The Pusher app key.
    pub pusher_key: String,
    /// The project id (the channel is `private-{project_id}_triggers`).
    pub project_id: String,
    /// The Pusher cluster. It becomes part of a host name: check it before use.
    pub pusher_cluster: String,
}

/// The auth endpoint's answer; only `auth` is read.
#[derive(Debug, Deserialize)]
pub struct ChannelToken {
    /// `key:signature`, as sent (anything but a non-empty string is unusable).
    #[serde(default)]
    pub auth: Option<serde_json::Value>,
}

impl ChannelToken {
    /// The token, if the answer carries a usable one.
    pub fn token(&self) -> Option<&str> {
        self.auth
            .as_ref()
            .and_then(serde_json::Value::as_str)
            .filter(|t| !t.is_empty())
    }
}

impl ComposioClient {
    /// The project's Pusher credentials.
    pub async fn realtime_credentials(&self) -> ApiResult<RealtimeCredentials> {
        self.send_json(Call {
            method: Method::GET,
            segments: &["api", "v3", "internal", "sdk", "realtime", "credentials"],
            query: Vec::new(),
            body: None,
            idempotency: Idempotency::Repeatable,
            max_response_bytes: Some(MAX_REALTIME_ANSWER_BYTES),
        })
        .await
    }

    /// An auth token for a private `channel` on the connection `socket_id`.
    pub async fn channel_token(&self, channel: &str, socket_id: &str) -> ApiResult<ChannelToken> {
        let form =
            serde_urlencoded::to_string([("channel_name", channel), ("socket_id", socket_id)])
                .map_err(|e| super::ApiError::config("channel auth form", e.to_string()))?;
        self.send_json(Call {
            method: Method::POST,
            segments: &["api", "v3", "internal", "sdk", "realtime", "auth"],
            query: Vec::new(),
            body: Some(("application/x-www-form-urlencoded", form.into_bytes())),
            idempotency: Idempotency::Repeatable,
            max_response_bytes: Some(MAX_REALTIME_ANSWER_BYTES),
        })
        .await
    }
}
