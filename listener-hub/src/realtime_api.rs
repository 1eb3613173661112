//! Composio's realtime endpoints, served by the hub: credentials and channel auth
//! (`GET /api/v3/internal/sdk/realtime/credentials`, `POST /api/v3/internal/sdk/realtime/auth`), with the same paths, headers and shapes as the real service.

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::{Form, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::HubState;
use listener_core::source::pusher::protocol::sign_channel;

/// Composio's error object.
pub(crate) fn api_error(status: StatusCode, message: &str) -> (StatusCode, Json<Value>) {
    (
        status,
        Json(
            json!({"error": {"message": message, "status": status.as_u16(), "code": status.as_u16()}}),
        ),
    )
}

/// Whether the request carries the hub's API key.
pub(crate) fn authorized(
    hub: &HubState,
    headers: &HeaderMap,
) -> Result<(), (StatusCode, Json<Value>)> {
    match headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        Some(key) if key == hub.config.api_key => Ok(()),
        Some(_) => Err(api_error(StatusCode::UNAUTHORIZED, "invalid API key")),
        None => Err(api_error(
            StatusCode::UNAUTHORIZED,
            "missing x-api-key header",
        )),
    }
}

pub(crate) async fn credentials(
    State(hub): State<Arc<HubState>>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if let Err(e) = authorized(&hub, &headers) {
        return e;
    }
    (
        StatusCode::OK,
        Json(json!({
            "pusher_key": hub.config.app_key,
            "project_id": hub.config.project_id,
            "pusher_cluster": hub.config.cluster,
        })),
    )
}

#[derive(Deserialize)]
pub(crate) struct AuthForm {
    channel_name: String,
    socket_id: String,
}

pub(crate) async fn auth(
    State(hub): State<Arc<HubState>>,
    headers: HeaderMap,
    form: Result<Form<AuthForm>, FormRejection>,
) -> (StatusCode, Json<Value>) {
    if let Err(e) = authorized(&hub, &headers) {
        return e;
    }
    let Ok(Form(form)) = form else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "expected a form body with channel_name and socket_id",
        );
    };
    if form.channel_name != hub.channel() {
        return api_error(
            StatusCode::FORBIDDEN,
            "this key may only subscribe to its project's trigger channel",
        );
    }
    let token = sign_channel(
        &hub.config.app_key,
        &hub.config.app_secret,
        &form.socket_id,
        &form.channel_name,
    );
    (StatusCode::OK, Json(json!({"auth": token})))
}
