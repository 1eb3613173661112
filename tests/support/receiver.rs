//! A webhook receiver for the hub's deliveries: records every request and answers 200 with
//! a small JSON body (which the hub keeps a preview of).

use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: String,
}

/// A running receiver: its URL and what it got.
pub struct Receiver {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Received>>>,
}

/// The answer body of every delivery.
pub const ANSWER: &str = r#"{"received":true}"#;

impl Receiver {
    /// Listens on an ephemeral loopback port at `/hook`.
    pub async fn start() -> Receiver {
        let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
        let record = seen.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: String| {
                let record = record.clone();
                async move {
                    record.lock().unwrap().push(Received { headers, body });
                    ([("content-type", "application/json")], ANSWER)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, seen }
    }

    /// How many deliveries it got.
    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}
