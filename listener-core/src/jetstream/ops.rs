//! What an operator needs (the `trigger-hub stream` commands): the stream's and the groups'
//! state, replaying dead letters, starting a group at a time.

use std::time::SystemTime;

use async_nats::jetstream::{self, stream};
use futures_util::StreamExt;

use super::config::JetStream;
use super::connect::connect_once;
use super::error::JetStreamError;
use super::headers;
use super::worker::consumer_config;

/// The stream's state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamState {
    /// The stream's name.
    pub stream: String,
    /// Its subjects.
    pub subjects: Vec<String>,
    /// Events stored.
    pub messages: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// The first and last sequence stored.
    pub first_sequence: u64,
    /// The last sequence stored.
    pub last_sequence: u64,
    /// Replicas.
    pub replicas: usize,
    /// Dead letters stored, all groups.
    pub dead_letters: u64,
    /// Each group (durable consumer).
    pub groups: Vec<GroupState>,
}

/// A worker group's state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupState {
    /// The group.
    pub group: String,
    /// Events stored that the group has not been given yet.
    pub pending: u64,
    /// Events given to a worker and not answered yet.
    pub ack_pending: usize,
    /// Events given more than once and not answered yet.
    pub redelivered: usize,
    /// Pull requests waiting (about one per idle worker).
    pub waiting: usize,
    /// The group's dead letters.
    pub dead_letters: u64,
}

fn setup_error(what: &str, e: impl std::fmt::Display) -> JetStreamError {
    JetStreamError::Setup {
        what: what.to_owned(),
        message: e.to_string(),
    }
}

async fn open(
    cfg: &JetStream,
) -> Result<(jetstream::Context, stream::Stream, stream::Stream), JetStreamError> {
    let client = connect_once(cfg, "trigger-hub").await?;
    let js = jetstream::new(client);
    let events = js
        .get_stream(&cfg.stream.name)
        .await
        .map_err(|e| setup_error(&format!("stream {}", cfg.stream.name), e))?;
    let dead_name = cfg.stream.dead_letter_stream();
    let dead = js
        .get_stream(&dead_name)
        .await
        .map_err(|e| setup_error(&format!("stream {dead_name}"), e))?;
    Ok((js, events, dead))
}

/// Dead letters by group, from the dead-letter stream's subjects.
async fn dead_letters_by_group(
    cfg: &JetStream,
    dead: &stream::Stream,
) -> Result<Vec<(String, u64)>, JetStreamError> {
    let prefix = format!("{}.", cfg.stream.dead_letter_prefix());
    let mut subjects = dead
        .info_with_subjects(format!("{prefix}>"))
        .await
        .map_err(|e| JetStreamError::Consume(e.to_string()))?;
    let mut counts: Vec<(String, u64)> = Vec::new();
    while let Some(entry) = subjects.next().await {
        let (subject, count) = entry.map_err(|e| JetStreamError::Consume(e.to_string()))?;
        let group = subject
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split('.').next())
            .unwrap_or("")
            .to_owned();
        match counts.iter_mut().find(|(g, _)| *g == group) {
            Some((_, n)) => *n += count as u64,
            None => counts.push((group, count as u64)),
        }
    }
    Ok(counts)
}

/// The stream's state and every group's.
pub async fn stream_state(cfg: &JetStream) -> Result<StreamState, JetStreamError> {
    let (_js, mut events, mut dead) = open(cfg).await?;
    let info = events
        .info()
        .await
        .map_err(|e| JetStreamError::Consume(e.to_string()))?
        .clone();
    let dead_total = dead
        .info()
        .await
        .map_err(|e| JetStreamError::Consume(e.to_string()))?
        .state
        .messages;
    let dead_by_group = dead_letters_by_group(cfg, &dead).await?;
    let mut groups = Vec::new();
    let mut consumers = events.consumers();
    while let Some(consumer) = consumers.next().await {
        let c = consumer.map_err(|e| JetStreamError::Consume(e.to_string()))?;
        let dead_letters = dead_by_group
            .iter()
            .find(|(g, _)| *g == c.name)
            .map_or(0, |(_, n)| *n);
        groups.push(GroupState {
            group: c.name.clone(),
            pending: c.num_pending,
            ack_pending: c.num_ack_pending,
            redelivered: c.num_redelivered,
            waiting: c.num_waiting,
            dead_letters,
        });
    }
    groups.sort_by(|a, b| a.group.cmp(&b.group));
    Ok(StreamState {
        stream: info.config.name.clone(),
        subjects: info.config.subjects.clone(),
        messages: info.state.messages,
        bytes: info.state.bytes,
        first_sequence: info.state.first_sequence,
        last_sequence: info.state.last_sequence,
        replicas: info.config.num_replicas,
        dead_letters: dead_total,
        groups,
    })
}

/// Puts up to `limit` of `group`'s dead letters back into the stream, oldest first, for
/// that group only (other groups acknowledge them without running), and removes them from
/// the dead letters. A handler that had succeeded on the event still does not run again.
/// Returns how many were replayed.
pub async fn replay_dead_letters(
    cfg: &JetStream,
    group: &str,
    limit: usize,
) -> Result<usize, JetStreamError> {
    let (js, _events, mut dead) = open(cfg).await?;
    // Only the dead letters there now: a replayed event that fails again comes back as a
    // new one, which this run must not replay again.
    let last = dead
        .info()
        .await
        .map_err(|e| JetStreamError::Consume(e.to_string()))?
        .state
        .last_sequence;
    let filter = format!("{}.{group}.>", cfg.stream.dead_letter_prefix());
    let mut next_sequence = 1;
    let mut replayed = 0;
    while replayed < limit && next_sequence <= last {
        let letter = match dead
            .raw_message_builder()
            .sequence(next_sequence)
            .next_by_subject(filter.clone())
            .send()
            .await
        {
            Ok(letter) => letter,
            // None left (the server answers "no message found").
            Err(e) if e.to_string().to_ascii_lowercase().contains("no message") => break,
            Err(e) => return Err(JetStreamError::Consume(e.to_string())),
        };
        if letter.sequence > last {
            break;
        }
        next_sequence = letter.sequence + 1;
        let h = &letter.headers;
        let get = |name: &str| h.get_last(name).map(|v| v.as_str().to_owned());
        let Some(subject) = get(headers::DEAD_SUBJECT) else {
            tracing::warn!(
                sequence = letter.sequence,
                "a dead letter without its subject; left"
            );
            continue;
        };
        let original_id = get(headers::MSG_ID).unwrap_or_default();
        let mut out = async_nats::HeaderMap::new();
        for (name, values) in h.iter() {
            let name: &str = name.as_ref();
            if name.starts_with("Listener-Dead-") || name == headers::MSG_ID {
                continue;
            }
            for value in values {
                out.append(name, value.as_str());
            }
        }
        out.insert(
            headers::MSG_ID,
            format!("{original_id}.replay.{}", letter.sequence),
        );
        out.insert(headers::REPLAY_GROUP, group);
        if let Some(sequence) = get(headers::DEAD_SEQUENCE) {
            out.insert(headers::REPLAY_OF, sequence);
        }
        js.publish_with_headers(subject.clone(), out, letter.payload.clone())
            .await
            .map_err(|e| JetStreamError::Publish {
                subject: subject.clone(),
                message: e.to_string(),
            })?
            .await
            .map_err(|e| JetStreamError::Publish {
                subject: subject.clone(),
                message: e.to_string(),
            })?;
        dead.delete_message(letter.sequence)
            .await
            .map_err(|e| JetStreamError::Consume(e.to_string()))?;
        replayed += 1;
    }
    Ok(replayed)
}

/// Starts `group` (again) at `at`: its consumer is deleted if it exists and created anew,
/// delivering the events stored from `at` on. Workers of the group running now pick the new
/// consumer up on their next pull.
pub async fn start_group_at(
    cfg: &JetStream,
    group: &str,
    at: SystemTime,
) -> Result<(), JetStreamError> {
    let (_js, events, _dead) = open(cfg).await?;
    let mut settings = cfg.clone();
    settings.worker.group = group.to_owned();
    settings.worker.start_at = Some(at);
    // Absent is fine: then it is a new group.
    let _ = events.delete_consumer(group).await;
    events
        .create_consumer(consumer_config(&settings))
        .await
        .map_err(|e| setup_error(&format!("consumer {group}"), e))?;
    Ok(())
}
