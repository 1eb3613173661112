use std::path::PathBuf;

use serde_json::json;

use super::DecodeError;
use super::*;
use crate::event::V3_TRIGGER_MESSAGE;

fn fixture_dirs() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    vec![root.join("../tests/fixtures")]
}

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn decode_json(v: serde_json::Value) -> Result<TriggerEvent> {
    decode(v.to_string().as_bytes())
}

#[test]
fn v3_trigger_message_fixture() {
    let ev = decode(&fixture("v3_slack_receive_message.json")).unwrap();
    assert_eq!(ev.envelope, Envelope::V3);
    assert_eq!(ev.event_type.as_deref(), Some(V3_TRIGGER_MESSAGE));
    assert_eq!(ev.event_id, "evt_2f6c1d0e-5b7a-4c55-9d0e-7f1a2b3c4d5e");
    assert_eq!(ev.id, "ti_8KpL2qRsT0uV");
    assert_eq!(ev.uuid, "ti_8KpL2qRsT0uV");
    assert_eq!(ev.trigger_slug, "SLACK_RECEIVE_MESSAGE");
    assert_eq!(ev.toolkit_slug, "SLACK");
    assert_eq!(ev.user_id, "default");
    assert_eq!(ev.timestamp.as_deref(), Some("2026-11-20T09:14:03.512Z"));
    let account = &ev.metadata.connected_account;
    assert_eq!(account.id, "ca_3NwX7yZ1aB2c");
    assert_eq!(account.auth_config_id, "ac_5DeF6gH7iJ8k");
    assert_eq!(account.user_id, "default");
    assert_eq!(ev.metadata.log_id, "log_Yq2mX0aB9cD");
    assert_eq!(ev.payload["text"], "who broke the staging deploy again");
    assert_eq!(ev.payload["channel"], "C07JB863EBW");
    assert!(ev.original_payload.is_none());
    assert!(!ev.is_lifecycle());
}

#[test]
fn v3_lifecycle_fixture() {
    let ev = decode(&fixture("v3_connected_account_expired.json")).unwrap();
    assert_eq!(ev.envelope, Envelope::V3);
    assert!(ev.is_lifecycle());
    assert_eq!(ev.trigger_slug, "composio.connected_account.expired");
    assert_eq!(ev.toolkit_slug, "COMPOSIO");
    assert_eq!(ev.id, "evt_847cdfcd-d219-4f18-a6dd-91acd42ca94a");
    assert_eq!(ev.event_id, ev.id);
    assert_eq!(ev.user_id, "");
    let account = &ev.metadata.connected_account;
    assert_eq!(account.id, "ca_your-connected-account-id");
    assert_eq!(account.auth_config_id, "ac_your-auth-config-id");
    assert_eq!(account.status, "EXPIRED");
    assert_eq!(ev.payload["status_reason"], "OAuth refresh token expired");
    assert_eq!(ev.payload["toolkit"]["slug"], "gmail");
    // The rest of the envelope is kept, without a second copy of `data`.
    let original = ev.original_payload.as_ref().unwrap();
    assert_eq!(original["metadata"]["project_id"], "pr_your-project-id");
    assert!(original.get("data").is_none());
}

#[test]
fn v1_webhook_fixture() {
    let ev = decode(&fixture("v1_slack_receive_message.json")).unwrap();
    assert_eq!(ev.envelope, Envelope::V1);
    assert_eq!(ev.trigger_slug, "SLACK_RECEIVE_MESSAGE");
    assert_eq!(ev.toolkit_slug, "SLACK");
    assert_eq!(ev.id, "fb36f8db-caf0-4d2c-9cd6-0cb575a5689e");
    assert_eq!(
        ev.metadata.connected_account.id,
        "7baac1d4-e3be-41ae-9550-5ce9829579c9"
    );
    assert_eq!(ev.event_id, "", "the fixture has no log_id");
    assert_eq!(ev.user_id, "");
    assert_eq!(ev.payload["text"], "hey");
    assert!(ev.payload["bot_id"].is_null());
}

#[test]
fn non_event_fixtures_are_typed_errors() {
    // A captured HTTP request (not an envelope) and a JSON schema: refused with the reason.
    // (The request's body, an admin event, decodes: see
    // `admin_events_decode_as_lifecycle_events`.)
    let admin = fixture("admin_connected_account_add_start.json");
    let err = decode(&admin).unwrap_err();
    assert!(matches!(err, DecodeError::UnknownEnvelope { .. }), "{err}");
    assert!(err.to_string().contains("event"), "names the keys: {err}");

    let err = decode(&fixture("github_star_config_schema.json")).unwrap_err();
    assert!(matches!(err, DecodeError::UnknownEnvelope { .. }), "{err}");
}

#[test]
fn every_fixture_decodes_or_fails_with_a_typed_error() {
    let mut seen = 0;
    for dir in fixture_dirs() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            seen += 1;
            match decode(&bytes) {
                Ok(ev) => assert!(
                    !ev.trigger_slug.is_empty(),
                    "{}: empty slug",
                    path.display()
                ),
                Err(e) => assert!(
                    matches!(
                        e,
                        DecodeError::UnknownEnvelope { .. } | DecodeError::NotAnObject { .. }
                    ),
                    "{}: unexpected error {e}",
                    path.display()
                ),
            }
        }
    }
    assert!(seen >= 5, "expected the fixtures, found {seen}");
}

#[test]
fn missing_null_and_number_identity_fields_become_empty() {
    for bad in [
        json!(null),
        json!(42),
        json!(1.5),
        json!(true),
        json!({"x": 1}),
        json!(["a"]),
    ] {
        let ev = decode_json(json!({
            "id": bad, "type": "composio.trigger.message", "timestamp": bad,
            "metadata": {
                "trigger_slug": "GITHUB_STAR_ADDED_EVENT", "trigger_id": bad, "user_id": bad,
                "connected_account_id": bad, "auth_config_id": bad, "log_id": bad
            },
            "data": {"stars": 1}
        }))
        .unwrap();
        assert_eq!(ev.event_id, "");
        assert_eq!(ev.id, "");
        assert_eq!(ev.user_id, "");
        assert_eq!(ev.metadata.connected_account.id, "");
        assert_eq!(ev.metadata.connected_account.auth_config_id, "");
        assert_eq!(ev.metadata.log_id, "");
        assert_eq!(ev.timestamp, None);
        assert_eq!(ev.toolkit_slug, "GITHUB");
    }
    // Missing entirely, slug included.
    let ev = decode_json(
        json!({"id": "e", "type": "composio.trigger.message", "metadata": {}, "data": null}),
    )
    .unwrap();
    assert_eq!(ev.trigger_slug, "");
    assert_eq!(ev.toolkit_slug, "");
    assert!(ev.payload.is_null());
}

#[test]
fn legacy_realtime_envelope() {
    let ev = decode_json(json!({
        "appName": "github",
        "clientId": 7,
        "payload": {"author": "someone"},
        "originalPayload": {"ref": "refs/heads/main"},
        "metadata": {
            "id": "2507236e-uuid", "nanoId": "ti_VZEW", "triggerName": "GITHUB_COMMIT_EVENT",
            "triggerData": "{}", "triggerConfig": {"owner": "o", "repo": "r"},
            "connection": {
                "id": "conn-uuid", "connectedAccountNanoId": "ca_N", "integrationId": "int-uuid",
                "authConfigNanoId": "ac_N", "clientUniqueUserId": "user-1", "status": "ACTIVE"
            }
        }
    }))
    .unwrap();
    assert_eq!(ev.envelope, Envelope::LegacyRealtime);
    assert_eq!(ev.id, "ti_VZEW");
    assert_eq!(ev.uuid, "2507236e-uuid");
    assert_eq!(ev.trigger_slug, "GITHUB_COMMIT_EVENT");
    assert_eq!(ev.toolkit_slug, "GITHUB");
    assert_eq!(ev.user_id, "user-1");
    assert_eq!(ev.payload["author"], "someone");
    assert_eq!(
        ev.original_payload.as_ref().unwrap()["ref"],
        "refs/heads/main"
    );
    assert_eq!(ev.metadata.trigger_data.as_deref(), Some("{}"));
    assert_eq!(ev.metadata.trigger_config["repo"], "r");
    let a = &ev.metadata.connected_account;
    assert_eq!((a.id.as_str(), a.uuid.as_str()), ("ca_N", "conn-uuid"));
    assert_eq!(
        (a.auth_config_id.as_str(), a.auth_config_uuid.as_str()),
        ("ac_N", "int-uuid")
    );
    assert_eq!(a.status, "ACTIVE");
    assert_eq!(ev.event_id, "");

    // Mistyped nested parts degrade to empty values, never a panic.
    let ev = decode_json(json!({"appName": 5, "metadata": {"connection": "nope", "triggerName": 3, "triggerConfig": []}})).unwrap();
    assert_eq!(ev.envelope, Envelope::LegacyRealtime);
    assert_eq!(
        (
            ev.trigger_slug.as_str(),
            ev.toolkit_slug.as_str(),
            ev.user_id.as_str()
        ),
        ("", "", "")
    );
    assert_eq!(ev.metadata.trigger_config, json!({}));
}

#[test]
fn v2_webhook_envelope() {
    let ev = decode_json(json!({
        "type": "slack_receive_message", "timestamp": "2025-01-01T00:00:00Z", "log_id": "log_2",
        "data": {
            "text": "hi", "connection_id": "conn-uuid", "connection_nano_id": "ca_2",
            "trigger_id": "trig-uuid", "trigger_nano_id": "ti_2", "user_id": "u2"
        }
    }))
    .unwrap();
    assert_eq!(ev.envelope, Envelope::V2);
    assert_eq!(ev.trigger_slug, "SLACK_RECEIVE_MESSAGE");
    assert_eq!(ev.toolkit_slug, "SLACK");
    assert_eq!((ev.id.as_str(), ev.uuid.as_str()), ("ti_2", "trig-uuid"));
    assert_eq!(ev.event_id, "log_2");
    assert_eq!(ev.user_id, "u2");
    assert_eq!(ev.metadata.connected_account.id, "ca_2");
    assert_eq!(ev.metadata.connected_account.uuid, "conn-uuid");
    // Identity fields are lifted out of the payload.
    assert_eq!(ev.payload, json!({"text": "hi"}));
}

#[test]
fn non_objects_and_bad_json_are_typed_errors() {
    for (body, found) in [
        ("[]", "an array"),
        ("\"x\"", "a string"),
        ("1", "a number"),
        ("null", "null"),
        ("true", "a boolean"),
    ] {
        match decode(body.as_bytes()) {
            Err(DecodeError::NotAnObject { found: f }) => assert_eq!(f, found),
            other => panic!("{body}: {other:?}"),
        }
    }
    for body in ["", "{", "garbage", "{\"a\":}", "\u{0}"] {
        assert!(
            matches!(
                decode(body.as_bytes()),
                Err(DecodeError::InvalidJson { .. })
            ),
            "{body:?}"
        );
    }
    assert!(matches!(
        decode(&[0xff, 0xfe, b'{']),
        Err(DecodeError::InvalidJson { .. })
    ));
}

#[test]
fn unknown_shapes_name_the_problem() {
    let err = decode_json(json!({"type": "composio.trigger.message", "data": {}})).unwrap_err();
    assert!(err.to_string().contains("metadata"), "{err}");
    let err = decode_json(json!({"type": "x", "data": {}, "timestamp": "t"})).unwrap_err();
    assert!(err.to_string().contains("connection_id"), "{err}");
    let err = decode_json(json!({"trigger_name": "X"})).unwrap_err();
    assert!(err.to_string().contains("trigger_id"), "{err}");
    let err = decode_json(json!({})).unwrap_err();
    assert!(err.to_string().contains("keys: none"), "{err}");
    // Key lists are bounded.
    let many: serde_json::Map<String, serde_json::Value> =
        (0..500).map(|i| (format!("k{i}"), json!(i))).collect();
    let err = decode_value(serde_json::Value::Object(many)).unwrap_err();
    assert!(err.to_string().len() < 400, "{}", err.to_string().len());
}

#[test]
fn decode_expecting_checks_the_announced_envelope() {
    let v3 = fixture("v3_slack_receive_message.json");
    assert!(decode_expecting(&v3, Envelope::V3).is_ok());
    match decode_expecting(&v3, Envelope::V1) {
        Err(DecodeError::EnvelopeMismatch { actual, .. }) => assert_eq!(actual, Envelope::V3),
        other => panic!("{other:?}"),
    }
    let v1 = fixture("v1_slack_receive_message.json");
    assert!(decode_expecting(&v1, Envelope::V1).is_ok());
}

#[test]
fn deeply_nested_payloads_do_not_overflow() {
    // serde_json's recursion limit turns hostile nesting into an error, not a stack overflow.
    let body = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(
        decode(body.as_bytes()),
        Err(DecodeError::InvalidJson { .. })
    ));
}

/// The V3 fast path and the general path agree on every body the fast path accepts, and
/// the fast path declines (so the general path answers) whatever it does not handle.
#[test]
fn fast_path_agrees_with_the_general_path() {
    let base = String::from_utf8(fixture("v3_slack_receive_message.json")).unwrap();
    let with = |from: &str, to: &str| {
        assert!(base.contains(from), "{from}");
        base.replacen(from, to, 1)
    };
    let id = r#""id": "evt_2f6c1d0e-5b7a-4c55-9d0e-7f1a2b3c4d5e","#;
    let slug = r#""trigger_slug": "SLACK_RECEIVE_MESSAGE","#;
    let ts = r#""timestamp": "2026-11-20T09:14:03.512Z","#;
    let meta = r#""metadata": {"#;
    // (body, whether the fast path should take it)
    let cases: Vec<(String, bool)> = vec![
        (base.clone(), true),
        (format!("  \n{base}"), true),
        (with(id, r#""id": null,"#), true),
        (with(id, r#""id": 42,"#), true),
        (with(id, r#""id": {"a": [1, {"b": null}]},"#), true),
        (with(id, ""), false),
        (with(id, r#""id": "evt_\u0031\"quoted\"","#), true),
        (with(ts, r#""timestamp": 1763630043,"#), true),
        (with(ts, r#""timestamp": null,"#), true),
        (with(ts, ""), true),
        (
            with(slug, r#""trigger_slug": "SLACK\u005fRECEIVE_MESSAGE","#),
            true,
        ),
        (with(slug, r#""trigger_slug": null,"#), true),
        (with(slug, r#""trigger_slug": ["x"],"#), true),
        (with(slug, ""), true),
        (
            with(
                meta,
                r#""extra": {"nested": [1, 2, 3]}, "metadata": {"more": true, "#,
            ),
            true,
        ),
        (with(id, &format!("{id} {id}")), false),
        (with(slug, &format!("{slug} {slug}")), false),
        (
            with(
                r#""type": "composio.trigger.message""#,
                r#""t\u0079pe": "composio.trigger.message""#,
            ),
            true,
        ),
        (
            with(
                "composio.trigger.message",
                "composio.connected_account.expired",
            ),
            false,
        ),
        (with("composio.trigger.message", "slack.message"), false),
        (
            with(r#""type": "composio.trigger.message""#, r#""type": 3"#),
            false,
        ),
        (
            base.replacen(r#""data": {"#, r#""data": null, "unused": {"#, 1),
            true,
        ),
        (
            base.replacen(r#""data": {"#, r#""data": "text", "unused": {"#, 1),
            true,
        ),
        (
            base.replacen(r#""data": {"#, r#""data": [1, 2], "unused": {"#, 1),
            true,
        ),
        (base.replacen(r#""data": {"#, r#""unused": {"#, 1), false),
        (with(meta, r#""metadata": null, "unused": {"#), false),
        (with(meta, r#""metadata": ["a", "b"], "unused": {"#), false),
        (format!("[{base}]"), false),
        (base.replacen('}', "", 1), false),
        (fixture_text("v3_connected_account_expired.json"), false),
        (fixture_text("v1_slack_receive_message.json"), false),
        // What the general path's parse refuses, the fast path must refuse too, even in
        // values it does not keep.
        (with(meta, r#""extra": "\ud800", "metadata": {"#), false),
        (with(meta, r#""extra": 1e400, "metadata": {"#), false),
        (with(id, r#""id": 1e400,"#), false),
        (with(slug, r#""trigger_slug": "x", "n": [1e400],"#), false),
        (
            with(slug, r#""trigger_slug": "x", "n": {"s": "\udc00"},"#),
            false,
        ),
        (
            with(meta, "\"extra\": \"tab\tinside\", \"metadata\": {"),
            false,
        ),
        (with(meta, r#""extra": [1, 2,], "metadata": {"#), false),
        (
            with(
                meta,
                &format!(
                    r#""extra": {}{}, "metadata": {{"#,
                    "[".repeat(130),
                    "]".repeat(130)
                ),
            ),
            false,
        ),
        (nested_data(&base, 126), false),
        (nested_data(&base, 120), true),
        (format!("{base} trailing"), false),
    ];
    let mut bodies: Vec<(Vec<u8>, bool)> = cases
        .into_iter()
        .map(|(b, f)| (b.into_bytes(), f))
        .collect();
    // Invalid UTF-8 in a value the fast path keeps, and in one it does not.
    let mut bad = base.clone().into_bytes();
    let at = base.find("who broke").unwrap();
    bad[at] = 0xff;
    bodies.push((bad, false));
    let text = with(meta, r#""extra": "ab", "metadata": {"#);
    let mut bad = text.clone().into_bytes();
    bad[text.find(r#""ab""#).unwrap() + 1] = 0xc3;
    bodies.push((bad, false));
    for (body, fast) in &bodies {
        let shown = String::from_utf8_lossy(body);
        let quick = v3::decode_trigger_message(body);
        assert_eq!(quick.is_some(), *fast, "fast path on {shown}");
        let general = decode_general(body);
        if let Some(quick) = quick {
            assert_eq!(
                Ok(&quick),
                general.as_ref().map_err(|e| e.to_string()),
                "{shown}"
            );
        }
        // Whichever path answers, `decode` gives the general path's result.
        assert_eq!(
            decode(body).map_err(|e| e.to_string()),
            general
                .as_ref()
                .map(Clone::clone)
                .map_err(|e| e.to_string()),
            "{shown}"
        );
        // The identity decode takes and refuses the same bodies (its fast path the same
        // ones), with the same identity.
        let identity = v3::decode_trigger_message_identity(body);
        assert_eq!(identity.is_some(), *fast, "identity fast path on {shown}");
        match (decode_identity(body), &general) {
            (Ok(id), Ok(general)) => {
                assert_eq!(identity_of(&id), identity_of(general), "{shown}");
                if identity.is_some() {
                    assert_eq!(id.payload, serde_json::Value::Null, "{shown}");
                    assert!(id.id.is_empty() && id.user_id.is_empty(), "{shown}");
                } else {
                    assert_eq!(&id, general, "{shown}");
                }
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{shown}"),
            (a, b) => panic!("identity {a:?} vs general {b:?} on {shown}"),
        }
    }
}

/// What the identity decode keeps of an event.
fn identity_of(ev: &TriggerEvent) -> (&str, &str, &str, Option<&str>, Envelope) {
    (
        &ev.event_id,
        &ev.trigger_slug,
        &ev.toolkit_slug,
        ev.event_type.as_deref(),
        ev.envelope,
    )
}

/// The fixture with its `data` object wrapped in `depth` arrays (serde_json refuses more
/// than 128 levels in all; the envelope and `data` take two).
fn nested_data(base: &str, depth: usize) -> String {
    let start = base.find(r#""data": {"#).unwrap() + r#""data": "#.len();
    let end = base.rfind('}').unwrap(); // the envelope's closing brace
    let data_end = base[..end].rfind('}').unwrap() + 1;
    format!(
        "{}{}{}{}{}",
        &base[..start],
        "[".repeat(depth),
        &base[start..data_end],
        "]".repeat(depth),
        &base[data_end..]
    )
}

fn fixture_text(name: &str) -> String {
    String::from_utf8(fixture(name)).unwrap()
}

#[test]
fn a_leading_byte_order_mark_is_skipped_on_every_path() {
    for name in [
        "v3_slack_receive_message.json",
        "v1_slack_receive_message.json",
    ] {
        let plain = fixture(name);
        let mut with_bom = b"\xEF\xBB\xBF".to_vec();
        with_bom.extend_from_slice(&plain);
        let expected = decode(&plain).unwrap();
        assert_eq!(decode(&with_bom).unwrap(), expected, "{name}");
        assert_eq!(
            decode_expecting(&with_bom, expected.envelope).unwrap(),
            expected,
            "{name}"
        );
    }
    // Only one mark, only at the start.
    assert!(matches!(
        decode(b"\xEF\xBB\xBF\xEF\xBB\xBF{}"),
        Err(DecodeError::InvalidJson { .. })
    ));
}

#[test]
fn a_number_beyond_f64_is_refused_with_a_reason_on_every_path() {
    let huge = "9".repeat(400);
    let body = format!(
        r#"{{"id":"evt_1","type":"composio.trigger.message","timestamp":"t","metadata":{{"trigger_slug":"SLACK_RECEIVE_MESSAGE"}},"data":{{"n":{huge}}}}}"#
    );
    for result in [
        decode(body.as_bytes()),
        decode_expecting(body.as_bytes(), Envelope::V3),
    ] {
        match result {
            Err(e @ DecodeError::NumberOutOfRange { line: 1, column }) => {
                assert!(column > 400, "{column}");
                assert!(e.to_string().contains("64-bit float"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }
    // The largest finite values still pass, exactly as the parser reads them.
    let ok = body.replace(&huge, "1.7976931348623157e308");
    assert_eq!(
        decode(ok.as_bytes()).unwrap().payload["n"].as_f64(),
        Some(f64::MAX)
    );
    assert_eq!(
        decode(body.replace(&huge, "18446744073709551615").as_bytes())
            .unwrap()
            .payload["n"]
            .as_u64(),
        Some(u64::MAX)
    );
}

/// The body of the admin event fixture (the fixture is the whole recorded request).
fn admin_body() -> Vec<u8> {
    let request: serde_json::Value =
        serde_json::from_slice(&fixture("admin_connected_account_add_start.json")).unwrap();
    request["event"]["body"].to_string().into_bytes()
}

#[test]
fn admin_events_decode_as_lifecycle_events() {
    let ev = decode(&admin_body()).unwrap();
    assert_eq!(ev.envelope, Envelope::Admin);
    assert_eq!(ev.trigger_slug, "connected_account.add.start");
    assert_eq!(
        ev.event_type.as_deref(),
        Some("connected_account.add.start")
    );
    assert!(ev.is_lifecycle());
    assert_eq!(ev.toolkit_slug, "SLACK");
    assert_eq!(ev.timestamp.as_deref(), Some("2024-10-17T09:10:15.989Z"));
    let account = &ev.metadata.connected_account;
    assert_eq!(account.id, "dummy-connected-account-id-67890");
    assert_eq!(account.auth_config_id, "dummy-integration-id-12345");
    let added: crate::lifecycle::AccountAdded = serde_json::from_value(ev.payload.clone()).unwrap();
    assert_eq!(added.app_name, "slack");
    assert_eq!(added.integration_name, "slack_worthy_cyan");
    assert_eq!(added.integration_id, "dummy-integration-id-12345");
    assert_eq!(
        added.connected_account_id,
        "dummy-connected-account-id-67890"
    );
    assert_eq!(added.body, json!({}));
    // Whatever version a webhook announces.
    for announced in [Envelope::V1, Envelope::V2, Envelope::V3] {
        assert_eq!(decode_expecting(&admin_body(), announced).unwrap(), ev);
    }
    // A `connected_account.` type without the account or integration is no admin event.
    let bare = json!({"type": "connected_account.add.start", "timestamp": "t", "data": {}});
    assert!(matches!(
        decode_json(bare),
        Err(DecodeError::UnknownEnvelope { .. })
    ));
}

#[test]
fn the_expired_fixture_fits_its_typed_payload() {
    let ev = decode(&fixture("v3_connected_account_expired.json")).unwrap();
    let expired: crate::lifecycle::ConnectionExpired =
        serde_json::from_value(ev.payload.clone()).unwrap();
    assert_eq!(expired.id, "ca_your-connected-account-id");
    assert_eq!(expired.toolkit.slug, "gmail");
    assert_eq!(expired.auth_config.id, "ac_your-auth-config-id");
    assert_eq!(expired.auth_config.auth_scheme, "OAUTH2");
    assert_eq!(expired.status, "EXPIRED");
    assert_eq!(
        expired.status_reason.as_deref(),
        Some("OAuth refresh token expired")
    );
    assert_eq!(ev.trigger_slug, crate::lifecycle::CONNECTION_EXPIRED);
    // A disabled trigger's data, with a field the type does not name.
    let disabled: crate::lifecycle::TriggerDisabled = serde_json::from_value(json!({
        "trigger_id": "ti_1", "disabled_reason": "connection expired", "extra": 1
    }))
    .unwrap();
    assert_eq!(disabled.trigger_id.as_deref(), Some("ti_1"));
    assert_eq!(
        disabled.disabled_reason.as_deref(),
        Some("connection expired")
    );
    assert_eq!(disabled.other["extra"], json!(1));
}
