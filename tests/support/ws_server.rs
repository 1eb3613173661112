//! A scripted websocket server on 127.0.0.1: each accepted connection is handed to the
//! test as a channel of connections, so the test decides what to send, when to drop it,
//! and whether to stay silent. It can be stopped and started again on the same address.

use std::net::SocketAddr;
use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// An accepted websocket connection.
pub struct Conn {
    pub ws: WebSocketStream<TcpStream>,
    /// When the TCP connection was accepted (stamped by the server task, so the test's own
    /// pace does not shift it).
    pub accepted_at: Instant,
}

impl Conn {
    /// Sends one text frame.
    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.ws
            .send(Message::text(text.into()))
            .await
            .expect("send to the client");
    }

    /// Reads the next message from the client (which also answers its pings).
    pub async fn next(&mut self) -> Option<Message> {
        self.ws.next().await.and_then(Result::ok)
    }
}

/// The server: its URL and the connections it accepts.
pub struct WsServer {
    pub addr: SocketAddr,
    pub conns: mpsc::UnboundedReceiver<Conn>,
    pub tcp_accepts: mpsc::UnboundedReceiver<()>,
    accepting: JoinHandle<()>,
}

impl WsServer {
    /// Starts the server on an ephemeral port.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("address")).await
    }

    /// Starts the server on `addr` (the address of a server stopped before, say).
    pub async fn start_on(addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, conns) = mpsc::unbounded_channel();
        let (accept_tx, tcp_accepts) = mpsc::unbounded_channel();
        let accepting = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let accepted_at = Instant::now();
                let _ = accept_tx.send(());
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Ok(ws) = tokio_tungstenite::accept_async(stream).await {
                        let _ = tx.send(Conn { ws, accepted_at });
                    }
                });
            }
        });
        WsServer {
            addr,
            conns,
            tcp_accepts,
            accepting,
        }
    }

    /// Stops listening: once this returns, connecting to [`addr`](Self::addr) is refused.
    /// Connections already handed to the test stay open until the test drops them.
    pub async fn stop(self) -> SocketAddr {
        self.accepting.abort();
        let _ = self.accepting.await;
        self.addr
    }

    /// `ws://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// The next accepted connection, within the test deadline.
    pub async fn accept(&mut self) -> Conn {
        crate::wait::within("a websocket connection", self.conns.recv())
            .await
            .expect("server stopped")
    }
}
