//! Subjects: where in the stream an event goes.

use crate::event::TriggerEvent;

/// The longest subject token taken from an event (a longer slug is cut).
const MAX_TOKEN: usize = 128;

/// The subject of `event` under `prefix`: `<prefix>.<toolkit>.<trigger_slug>` lower-case
/// for trigger events, `<prefix>.<type>` for lifecycle events
/// (`listener.composio.connected_account.expired`). What the event carries is made a valid
/// token: characters other than letters, digits, `_` and `-` become `_`, an empty token is
/// `_`.
pub fn subject_of(prefix: &str, event: &TriggerEvent) -> String {
    let mut subject = String::with_capacity(prefix.len() + event.trigger_slug.len() + 16);
    subject.push_str(prefix);
    match &event.event_type {
        Some(kind) if event.is_lifecycle() => {
            for token in kind.split('.') {
                push_token(&mut subject, token);
            }
        }
        _ => {
            push_token(&mut subject, &event.toolkit_slug);
            push_token(&mut subject, &event.trigger_slug);
        }
    }
    subject
}

fn push_token(subject: &mut String, token: &str) {
    subject.push('.');
    if token.is_empty() {
        subject.push('_');
        return;
    }
    let kept = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let cut = if token.len() <= MAX_TOKEN {
        token
    } else {
        &token[..token
            .char_indices()
            .nth(MAX_TOKEN)
            .map_or(token.len(), |(i, _)| i)]
    };
    if cut.bytes().all(|b| kept(char::from(b))) {
        // The common case (a slug): copied whole, then lower-cased in place.
        let start = subject.len();
        subject.push_str(cut);
        subject[start..].make_ascii_lowercase();
        return;
    }
    for c in cut.chars() {
        subject.push(if kept(c) { c.to_ascii_lowercase() } else { '_' });
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn trigger_events_go_under_toolkit_and_slug() {
        let ev = TriggerEvent::new("SLACK_RECEIVE_MESSAGE", json!({}));
        assert_eq!(
            subject_of("listener", &ev),
            "listener.slack.slack_receive_message"
        );
        assert_eq!(
            subject_of("acme.bot", &ev),
            "acme.bot.slack.slack_receive_message"
        );
    }

    #[test]
    fn lifecycle_events_go_under_their_type() {
        let mut ev = TriggerEvent::new("composio.connected_account.expired", json!({}));
        ev.event_type = Some("composio.connected_account.expired".into());
        assert_eq!(
            subject_of("listener", &ev),
            "listener.composio.connected_account.expired"
        );
    }

    #[test]
    fn hostile_slugs_become_valid_tokens() {
        let mut ev = TriggerEvent::new("a b.*>\u{e9}", json!({}));
        ev.toolkit_slug = String::new();
        assert_eq!(subject_of("p", &ev), "p._.a_b____");
        ev.trigger_slug = "x".repeat(1000);
        assert_eq!(subject_of("p", &ev).len(), "p._.".len() + MAX_TOKEN);
    }
}
