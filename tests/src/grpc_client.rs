//! Talking to `chargelink.v1.SessionService` in tests: the API key as metadata, a client on the
//! API's port (gRPC shares it with REST, HTTP/2 without TLS), and a `Watch` stream read in a task.

use std::time::Duration;

use anyhow::{Context, bail};
use grpc::pb;
use grpc::pb::session_service_client::SessionServiceClient;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tonic::Request;
use tonic::transport::Channel;

/// A `SessionService` client over a plain HTTP/2 channel.
pub type SessionClient = SessionServiceClient<Channel>;

/// `msg` with the API key as `authorization: Bearer …` metadata. A key that cannot be a header
/// value is not sent, so the server answers `UNAUTHENTICATED` as it does for a missing key.
pub fn auth<T>(key: &str, msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    if let Ok(v) = format!("Bearer {key}").parse() {
        r.metadata_mut().insert("authorization", v);
    }
    r
}

/// A `SessionService` client connected to `api` (`http://127.0.0.1:<port>`).
pub async fn connect(api: &str) -> anyhow::Result<SessionClient> {
    let channel = Channel::from_shared(api.to_owned())
        .with_context(|| format!("{api} is not a gRPC endpoint"))?
        .connect()
        .await
        .with_context(|| format!("connecting to the gRPC API at {api}"))?;
    Ok(SessionClient::new(channel))
}

/// A `Watch` stream read by a task from the moment it is opened: every event is kept, in arrival
/// order, so the test can wait for one while it drives the session, then for the stream's end.
pub struct Watcher {
    events: mpsc::UnboundedReceiver<pb::SessionEvent>,
    reader: JoinHandle<Result<(), tonic::Status>>,
    seen: Vec<pb::SessionEvent>,
}

impl Watcher {
    /// Starts reading `stream` in a task.
    pub fn spawn(mut stream: tonic::Streaming<pb::SessionEvent>) -> Self {
        let (tx, events) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            while let Some(event) = stream.next().await {
                // The test may have given up (dropped the receiver); keep reading to the end.
                let _ = tx.send(event?);
            }
            Ok(())
        });
        Self {
            events,
            reader,
            seen: Vec::new(),
        }
    }

    /// The types received so far, for messages.
    pub fn types(&self) -> Vec<&str> {
        self.seen.iter().map(|e| e.r#type.as_str()).collect()
    }

    /// Waits (at most `timeout`) until an event of type `event_type` has arrived.
    pub async fn until(&mut self, event_type: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.seen.iter().any(|e| e.r#type == event_type) {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) => self.seen.push(e),
                Ok(None) => bail!(
                    "the stream ended without {event_type}; got {:?}",
                    self.types()
                ),
                Err(_) => bail!(
                    "no {event_type} on the stream in {timeout:?}; got {:?}",
                    self.types()
                ),
            }
        }
        Ok(())
    }

    /// Waits (at most `timeout`) for the server to end the stream; every event it delivered.
    /// Fails if the stream is still open then, or ended with an error status.
    pub async fn end(mut self, timeout: Duration) -> anyhow::Result<Vec<pb::SessionEvent>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) => self.seen.push(e),
                Ok(None) => break,
                Err(_) => {
                    self.reader.abort();
                    bail!(
                        "the stream did not end in {timeout:?}; got {:?}",
                        self.types()
                    )
                }
            }
        }
        self.reader
            .await
            .context("the stream's reader task")?
            .map_err(|s| anyhow::anyhow!("the stream ended with an error: {s:?}"))?;
        Ok(self.seen)
    }
}
