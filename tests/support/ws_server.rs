//! A scripted websocket server on 127.0.0.1: each accepted connection is handed to the
//! test as a channel of connections, so the test decides what to send, when to drop it,
//! and whether to stay silent.

use std::net::SocketAddr;
use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
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
}

impl WsServer {
    /// Starts the server on an ephemeral port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, conns) = mpsc::unbounded_channel();
        let (accept_tx, tcp_accepts) = mpsc::unbounded_channel();
        tokio::spawn(async move {
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
        }
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
