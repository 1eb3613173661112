//! The sample payloads: `tests/fixtures/` (a copy of the shared fixtures, kept identical by a
//! test) and, when present beside the checkout, `../shared/fixtures/`.

use std::path::PathBuf;

/// `tests/fixtures/`.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The shared fixtures beside the checkout, if present.
pub fn shared_dir() -> Option<PathBuf> {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures");
    d.is_dir().then_some(d)
}

/// The bytes of a fixture by file name.
pub fn bytes(name: &str) -> Vec<u8> {
    let path = dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()))
}
