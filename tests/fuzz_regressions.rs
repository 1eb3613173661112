//! Replays every committed input of the fuzz targets through the targets' own properties
//! (`fuzz/props/`): the minimized finds in `tests/fuzz-regressions/<target>/` and the seeds
//! in `fuzz/seeds/<target>/`. So `cargo test` catches a regression of a parser without
//! cargo-fuzz or the nightly toolchain. (The `macro_args` target's inputs are replayed by
//! `listener-macros`' unit tests, where the macro's modules are.)

use std::path::{Path, PathBuf};

#[path = "../fuzz/props/decode.rs"]
mod decode;
#[path = "../fuzz/props/ndjson.rs"]
mod ndjson;
#[path = "../fuzz/props/pusher.rs"]
mod pusher;
#[path = "../fuzz/props/reader.rs"]
mod reader;
#[path = "../fuzz/props/webhook.rs"]
mod webhook;

/// Runs `check` on every file under the target's regression and seed folders; a failure
/// names the file.
fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [
        root.join("tests/fuzz-regressions").join(target),
        root.join("fuzz/seeds").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        files.extend(entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()));
    }
    files.sort();
    assert!(!files.is_empty(), "no inputs for {target}");
    for file in &files {
        let data = std::fs::read(file).unwrap();
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("{target}: {} violates the property", file.display());
        }
    }
}

#[test]
fn decode_inputs_hold() {
    replay("decode", decode::check);
}

#[test]
fn webhook_verify_inputs_hold() {
    replay("webhook_verify", webhook::check);
}

#[test]
fn pusher_frames_inputs_hold() {
    replay("pusher_frames", pusher::check);
}

#[test]
fn hub_ndjson_inputs_hold() {
    replay("hub_ndjson", ndjson::check);
}
