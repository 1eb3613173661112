//! The hub's Pusher-protocol websocket endpoint, `/app/{key}`: connection_established,
//! private-channel auth checked with the hub's app secret, subscribe/unsubscribe,
//! ping/pong, and channel events from the fan-out.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::header::USER_AGENT;
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::fanout::Subscriber;
use super::{ids, HubState};
use listener_core::preview::{preview, truncate_chars, PREVIEW_CHARS};
use listener_core::source::pusher::protocol::verify_channel;
use listener_core::source::pusher::protocol::{connection_established, Frame};

/// The activity timeout the hub announces, in seconds.
const ACTIVITY_TIMEOUT_SECS: u64 = 120;

/// Most queued frames written before one flush.
const WRITE_BATCH: usize = 256;

/// How long one frame may take to write before the client is given up on.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub(crate) async fn upgrade(
    ws: WebSocketUpgrade,
    Path(key): Path<String>,
    State(hub): State<Arc<HubState>>,
    headers: HeaderMap,
) -> Response {
    let max = hub.config.max_frame_bytes;
    let user_agent = headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| serve(socket, key, hub, user_agent))
}

fn error_frame(code: u16, message: &str) -> Message {
    Message::Text(
        json!({"event": "pusher:error", "data": {"code": code, "message": message}})
            .to_string()
            .into(),
    )
}

async fn refuse(mut socket: WebSocket, code: u16, message: &str) {
    let _ = socket.send(error_frame(code, message)).await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from(message),
        })))
        .await;
}

#[derive(Deserialize)]
struct SubscribeData {
    channel: String,
    #[serde(default)]
    auth: Option<String>,
}

async fn serve(socket: WebSocket, key: String, hub: Arc<HubState>, user_agent: Option<String>) {
    if key != hub.config.app_key {
        return refuse(
            socket,
            4001,
            &format!("App key {} does not exist", truncate_chars(&key, 40)),
        )
        .await;
    }
    let open = hub.connections.fetch_add(1, Ordering::SeqCst) + 1;
    if open > hub.config.max_connections {
        hub.connections.fetch_sub(1, Ordering::SeqCst);
        return refuse(socket, 4100, "Over connection quota").await;
    }
    let conn = hub.next_connection.fetch_add(1, Ordering::Relaxed);
    let socket_id: Arc<str> = Arc::from(ids::socket_id());
    hub.listeners
        .opened(conn, &socket_id, user_agent.as_deref());
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(hub.config.subscriber_queue);
    let kick = CancellationToken::new();
    let (mut sink, mut stream) = socket.split();
    let mut channels: HashSet<String> = HashSet::new();
    tracing::debug!(connection = conn, %socket_id, "hub: client connected");

    let established = connection_established(&socket_id, ACTIVITY_TIMEOUT_SECS);
    if sink.send(Message::Text(established.into())).await.is_ok() {
        loop {
            let outgoing = tokio::select! {
                _ = hub.shutdown.cancelled() => {
                    let _ = sink.send(Message::Close(Some(CloseFrame { code: 1001, reason: "hub shutting down".into() }))).await;
                    break;
                }
                _ = kick.cancelled() => {
                    let _ = sink.send(error_frame(4100, "Over capacity: the client is not reading fast enough")).await;
                    let _ = sink.send(Message::Close(Some(CloseFrame { code: 4100, reason: "over capacity".into() }))).await;
                    break;
                }
                Some(frame) = rx.recv() => Some(Message::Text(frame)),
                msg = stream.next() => match msg {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                    Some(Ok(Message::Text(text))) => {
                        client_frame(&hub, conn, &socket_id, &text, &tx, &kick, &mut channels)
                    }
                    Some(Ok(_)) => None,
                },
            };
            if let Some(msg) = outgoing {
                // Queue this frame and whatever else is waiting, then flush once: one write
                // for a burst instead of one per frame. A client that stops reading fills the
                // socket; give up on it rather than holding this task (and its queue) forever.
                let write = async {
                    sink.feed(msg).await?;
                    for _ in 0..WRITE_BATCH {
                        match rx.try_recv() {
                            Ok(frame) => sink.feed(Message::Text(frame)).await?,
                            Err(_) => break,
                        }
                    }
                    sink.flush().await
                };
                match tokio::time::timeout(WRITE_TIMEOUT, write).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break,
                    Err(_) => {
                        tracing::warn!(
                            connection = conn,
                            "hub: client stopped reading; disconnecting it"
                        );
                        break;
                    }
                }
            }
        }
    }
    hub.channels.remove_connection(conn);
    hub.listeners.closed(conn);
    hub.connections.fetch_sub(1, Ordering::SeqCst);
    tracing::debug!(connection = conn, "hub: client disconnected");
}

/// Handles one client frame; returns what to send back, if anything.
fn client_frame(
    hub: &HubState,
    conn: u64,
    socket_id: &Arc<str>,
    text: &str,
    tx: &mpsc::Sender<Utf8Bytes>,
    kick: &CancellationToken,
    channels: &mut HashSet<String>,
) -> Option<Message> {
    let frame = match Frame::parse(text) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, frame = %preview(text.as_bytes(), PREVIEW_CHARS), "hub: malformed client frame");
            return Some(error_frame(4000, "malformed frame"));
        }
    };
    let reply = match frame.event.as_ref() {
        "pusher:ping" => json!({"event": "pusher:pong", "data": {}}),
        "pusher:pong" => return None,
        "pusher:subscribe" => {
            let Ok(data) = frame.data_as::<SubscribeData>() else {
                return Some(error_frame(4000, "pusher:subscribe needs data.channel"));
            };
            let channel = data.channel;
            if channel.starts_with("presence-") {
                return Some(subscription_error(
                    &channel,
                    "Presence channels are not supported by the hub",
                    400,
                ));
            }
            if channel.starts_with("private-") {
                let ok = data.auth.as_deref().is_some_and(|token| {
                    verify_channel(
                        &hub.config.app_key,
                        &hub.config.app_secret,
                        socket_id,
                        &channel,
                        token,
                    )
                });
                if !ok {
                    tracing::warn!(%channel, "hub: invalid channel auth");
                    return Some(subscription_error(
                        &channel,
                        "Invalid signature: auth token does not match",
                        401,
                    ));
                }
            }
            hub.channels.subscribe(
                &channel,
                conn,
                Subscriber {
                    tx: tx.clone(),
                    kick: kick.clone(),
                    socket_id: Arc::clone(socket_id),
                },
            );
            hub.listeners.subscribed(conn, &channel, true);
            tracing::debug!(connection = conn, %channel, "hub: subscribed");
            let reply = json!({"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": "{}"});
            channels.insert(channel);
            reply
        }
        "pusher:unsubscribe" => {
            if let Ok(data) = frame.data_as::<SubscribeData>() {
                hub.channels.unsubscribe(&data.channel, conn);
                hub.listeners.subscribed(conn, &data.channel, false);
                channels.remove(&data.channel);
            }
            return None;
        }
        other => {
            tracing::debug!(event = %truncate_chars(other, 60), "hub: client event ignored");
            return None;
        }
    };
    Some(Message::Text(reply.to_string().into()))
}

fn subscription_error(channel: &str, message: &str, status: u16) -> Message {
    let data = json!({"type": "AuthError", "error": message, "status": status});
    Message::Text(
        json!({"event": "pusher:subscription_error", "channel": channel, "data": data})
            .to_string()
            .into(),
    )
}
