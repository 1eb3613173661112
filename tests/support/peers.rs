//! Locating third-party peers installed by `scripts/install-peers.sh`.
//!
//! A test that needs a peer calls one of these; when the peer is missing, the test is
//! skipped with a loud message under plain `cargo test`, and fails when `CI` is set, so CI
//! never passes without the peer.

use std::path::PathBuf;

/// The cache the install script uses (`LISTENER_PEERS_DIR`, default `~/.cache/listener-peers`).
pub fn peers_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LISTENER_PEERS_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("listener-peers")
}

/// Finds a peer through `env_var`, else at `default` under the peers dir (an absolute
/// `default` is taken as it is). Missing: skip
/// loudly (returns `None`), or panic when `CI` is set.
pub fn require(what: &str, env_var: &str, default: &str) -> Option<PathBuf> {
    let found = std::env::var_os(env_var)
        .map(PathBuf::from)
        .or_else(|| Some(peers_dir().join(default)))
        .filter(|p| p.exists());
    if found.is_none() {
        missing(&format!(
            "{what} not found (set {env_var} or run `bash scripts/install-peers.sh`, which the README's test command does)"
        ));
    }
    found
}

/// A required peer is missing: skip loudly, or panic when `CI` is set.
pub fn missing(msg: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("CI is set and a required peer is missing: {msg}");
    }
    eprintln!("\n*** SKIPPED: {msg} ***\n");
}

/// The Python interpreter of the peers' virtualenv (PyPI packages from `scripts/python-peers.txt`).
pub fn python_peer() -> Option<PathBuf> {
    require(
        "the Python peers' virtualenv",
        "PEERS_PYTHON",
        "venv/bin/python",
    )
}

/// The peers' Python interpreter, if it can import `module` (a PyPI package of
/// `scripts/python-peers.txt` that an older virtualenv may lack). Missing: skip loudly
/// (`None`), or panic when `CI` is set.
pub fn python_with(module: &str) -> Option<PathBuf> {
    let python = python_peer()?;
    let imported = std::process::Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|out| out.status.success());
    if !imported {
        missing(&format!(
            "the Python peers' virtualenv ({}) cannot import `{module}` (run `bash scripts/install-peers.sh`, which the README's test command does)",
            python.display()
        ));
        return None;
    }
    Some(python)
}

/// The `sockudo` binary (a Pusher-protocol server from crates.io).
pub fn sockudo() -> Option<PathBuf> {
    require("the sockudo server", "SOCKUDO_BIN", "sockudo/bin/sockudo")
}

/// Debian's `chromedriver` (package `chromium-driver`), for the dashboard's browser test.
pub fn chromedriver() -> Option<PathBuf> {
    require(
        "chromedriver (Debian's chromium-driver)",
        "CHROMEDRIVER_BIN",
        "/usr/bin/chromedriver",
    )
}

/// Debian's `chromium`, driven headless by [`chromedriver`].
pub fn chromium() -> Option<PathBuf> {
    require(
        "chromium (Debian's chromium)",
        "CHROMIUM_BIN",
        "/usr/bin/chromium",
    )
}
