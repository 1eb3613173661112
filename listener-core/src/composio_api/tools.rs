//! Tool execution: `POST /api/v3.1/tools/execute/{tool_slug}`.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lenient::{object, Fields};
use super::{segment, ApiError, ApiResult, ComposioClient, Idempotency};

/// The body of a tool execution: the tool's arguments and whose account runs it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecuteTool {
    /// The tool's arguments (for `SLACK_SEND_MESSAGE`: `channel`, `text`, `thread_ts`,
    /// `mrkdwn`, …).
    pub arguments: Value,
    /// The user whose connected account runs the tool (left out when empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_id: String,
    /// A specific connected account of that user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected_account_id: Option<String>,
    /// A pinned tool version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl ExecuteTool {
    /// Runs with `arguments` as `user_id`.
    pub fn new(user_id: impl Into<String>, arguments: Value) -> Self {
        ExecuteTool {
            arguments,
            user_id: user_id.into(),
            connected_account_id: None,
            version: None,
        }
    }

    /// Runs through this connected account.
    pub fn connected_account(mut self, id: impl Into<String>) -> Self {
        self.connected_account_id = Some(id.into());
        self
    }

    /// Pins the tool version.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }
}

/// What a tool execution answered: `{"data", "error", "log_id", "successful"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Value")]
pub struct ToolExecution {
    /// The tool's result (for Slack's send tool, the posted message: `ts`, `channel`, …).
    pub data: Value,
    /// The tool's error, when it failed.
    pub error: Option<String>,
    /// Composio's log id of the run.
    pub log_id: String,
    /// Whether the tool succeeded.
    pub successful: bool,
}

impl From<Value> for ToolExecution {
    fn from(value: Value) -> Self {
        let map = object(&value);
        let f = Fields(&map);
        let error = match f.value(&["error"]) {
            None => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        ToolExecution {
            data: f.value(&["data"]).cloned().unwrap_or(Value::Null),
            log_id: f.string(&["log_id", "logId"]),
            successful: f
                .opt_bool(&["successful", "successfull"])
                .unwrap_or(error.is_none() && map.contains_key("data")),
            error,
        }
    }
}

impl ToolExecution {
    /// The tool's `data` if it succeeded, else [`ApiError::ToolFailed`].
    pub fn into_result(self, tool: &str) -> ApiResult<Value> {
        if self.successful {
            Ok(self.data)
        } else {
            Err(ApiError::ToolFailed {
                tool: tool.to_owned(),
                message: self
                    .error
                    .unwrap_or_else(|| "the tool reported failure without a message".into()),
                log_id: self.log_id,
                data: self.data,
            })
        }
    }
}

impl ComposioClient {
    /// Runs a tool for a user: `POST /api/v3.1/tools/execute/{tool_slug}`.
    ///
    /// A tool that ran and failed is `Ok` with `successful: false`; use
    /// [`ToolExecution::into_result`] to turn that into an error. The request is repeated
    /// only when the API refused it (429, 5xx) or no connection was made: a tool with
    /// effects (posting a message) is never run twice because an answer was slow.
    pub async fn execute_tool(
        &self,
        tool_slug: &str,
        request: &ExecuteTool,
    ) -> ApiResult<ToolExecution> {
        let slug = segment("tool slug", tool_slug)?;
        if request.user_id.trim().is_empty() && request.connected_account_id.is_none() {
            return Err(ApiError::config(
                "execute",
                "give a user_id or a connected_account_id",
            ));
        }
        self.with_body(
            Method::POST,
            &["api", "v3.1", "tools", "execute", slug],
            request,
            Idempotency::Once,
        )
        .await
    }
}
