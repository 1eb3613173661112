//! Stream setup at start, idempotent: the event stream, its dead letters, the completion
//! records. A process that finds them as it would make them changes nothing; one with
//! other limits (a new max age, say) updates them.

use async_nats::jetstream::{self, kv, stream};

use super::config::StreamSettings;
use super::error::JetStreamError;

/// The event stream's configuration.
pub(crate) fn event_stream(settings: &StreamSettings) -> stream::Config {
    limited(
        settings,
        settings.name.clone(),
        &settings.prefix,
        "Trigger events, as their sources received them",
    )
}

/// The dead-letter stream's configuration: same limits, its own subjects.
pub(crate) fn dead_letter_stream(settings: &StreamSettings) -> stream::Config {
    limited(
        settings,
        settings.dead_letter_stream(),
        &settings.dead_letter_prefix(),
        "Trigger events whose handlers kept failing, with why",
    )
}

/// A file-stored stream `name` of subjects `<prefix>.>` under the settings' limits.
fn limited(
    settings: &StreamSettings,
    name: String,
    prefix: &str,
    description: &str,
) -> stream::Config {
    stream::Config {
        name,
        description: Some(description.into()),
        subjects: vec![format!("{prefix}.>")],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        max_age: settings.max_age,
        max_bytes: settings.max_bytes,
        duplicate_window: settings.duplicate_window,
        num_replicas: settings.replicas,
        ..Default::default()
    }
}

/// Creates or updates the event stream and the dead-letter stream.
pub(crate) async fn ensure_streams(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<(), JetStreamError> {
    for config in [event_stream(settings), dead_letter_stream(settings)] {
        let name = config.name.clone();
        js.create_or_update_stream(config)
            .await
            .map_err(|e| JetStreamError::Setup {
                what: format!("stream {name}"),
                message: e.to_string(),
            })?;
    }
    Ok(())
}

/// Creates or opens the completion records' bucket: a key per (group, event, handler) that
/// succeeded, kept as long as events are.
pub(crate) async fn ensure_completions(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<kv::Store, JetStreamError> {
    let bucket = settings.completions_bucket();
    js.create_or_update_key_value(kv::Config {
        bucket: bucket.clone(),
        description: "Handler runs that succeeded on events that may be delivered again".into(),
        history: 1,
        max_age: settings.max_age,
        storage: stream::StorageType::File,
        num_replicas: settings.replicas,
        ..Default::default()
    })
    .await
    .map_err(|e| JetStreamError::Setup {
        what: format!("bucket {bucket}"),
        message: e.to_string(),
    })
}
