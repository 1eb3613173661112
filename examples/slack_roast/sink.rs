//! Where replies go: Composio's Slack tool (for real), or standard output (the demo).

use std::io::Write;

use listener_core::composio_api::{ComposioClient, ExecuteTool};
use listener_core::source::async_trait;
use serde_json::{Map, Value};

use crate::roaster::SEND_TOOL;

/// What posting a reply gave back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Posted {
    /// The posted message's `ts`, when known (to recognise the bot's own reply if Slack
    /// sends it back as a new message).
    pub ts: Option<String>,
}

/// Sends a reply: the preprocessed arguments of `SLACK_SEND_MESSAGE`.
#[async_trait]
pub trait ReplySink: Send + Sync + 'static {
    /// A short name for logs.
    fn name(&self) -> String;

    /// Posts the reply.
    async fn send(&self, arguments: &Map<String, Value>) -> anyhow::Result<Posted>;
}

/// Prints each reply (channel, thread, text) to standard output instead of posting it.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrintSink;

/// The text [`PrintSink`] prints for a reply.
pub fn format_reply(arguments: &Map<String, Value>) -> String {
    let s = |k: &str| arguments.get(k).and_then(Value::as_str).unwrap_or("?");
    let mut out = format!(
        "reply -> channel {} thread {} (mrkdwn: {})\n",
        s("channel"),
        s("thread_ts"),
        arguments.get("mrkdwn").unwrap_or(&Value::Null)
    );
    for line in s("text").lines() {
        out.push_str("    ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[async_trait]
impl ReplySink for PrintSink {
    fn name(&self) -> String {
        "stdout".into()
    }

    async fn send(&self, arguments: &Map<String, Value>) -> anyhow::Result<Posted> {
        let text = format_reply(arguments);
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
        Ok(Posted::default())
    }
}

/// Posts through Composio's tool execution API as `user_id` (optionally through one
/// connected account).
#[derive(Debug, Clone)]
pub struct ComposioToolSink {
    client: ComposioClient,
    user_id: String,
    connected_account_id: Option<String>,
}

impl ComposioToolSink {
    /// Runs `SLACK_SEND_MESSAGE` for `user_id` through `client`.
    pub fn new(client: ComposioClient, user_id: impl Into<String>) -> Self {
        ComposioToolSink {
            client,
            user_id: user_id.into(),
            connected_account_id: None,
        }
    }

    /// Through this connected account.
    pub fn connected_account(mut self, id: Option<String>) -> Self {
        self.connected_account_id = id;
        self
    }
}

#[async_trait]
impl ReplySink for ComposioToolSink {
    fn name(&self) -> String {
        "composio:SLACK_SEND_MESSAGE".into()
    }

    async fn send(&self, arguments: &Map<String, Value>) -> anyhow::Result<Posted> {
        let mut request = ExecuteTool::new(&self.user_id, Value::Object(arguments.clone()));
        if let Some(id) = &self.connected_account_id {
            request = request.connected_account(id);
        }
        let data = self
            .client
            .execute_tool(SEND_TOOL, &request)
            .await?
            .into_result(SEND_TOOL)?;
        let ts = ["ts", "message_ts"]
            .iter()
            .find_map(|k| data.get(*k).and_then(Value::as_str))
            .or_else(|| data.pointer("/message/ts").and_then(Value::as_str))
            .map(str::to_owned);
        Ok(Posted { ts })
    }
}
