//! A raw OCPP-J client: exact frames in and out, for protocol edge cases.

use std::time::Duration;

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The upgrade request for `station` with optional credentials and subprotocol.
pub fn request(
    url: &str,
    station: &str,
    credentials: Option<(&str, &str)>,
    subprotocol: Option<&str>,
) -> anyhow::Result<tokio_tungstenite::tungstenite::handshake::client::Request> {
    let mut req = format!("{url}/{station}").into_client_request()?;
    if let Some(p) = subprotocol {
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_str(p)?);
    }
    if let Some((user, key)) = credentials {
        req.headers_mut().insert(
            "Authorization",
            HeaderValue::from_str(&ocpp::auth::basic_header(user, key))?,
        );
    }
    Ok(req)
}

/// Connects as `station` with the test key and `ocpp1.6`.
pub async fn connect(url: &str, station: &str) -> anyhow::Result<Socket> {
    let req = request(url, station, Some((station, super::KEY)), Some("ocpp1.6"))?;
    let (socket, response) = tokio_tungstenite::connect_async(req).await?;
    let protocol = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok());
    if protocol != Some("ocpp1.6") {
        bail!("negotiated {protocol:?}");
    }
    Ok(socket)
}

/// Sends `text`.
pub async fn send(socket: &mut Socket, text: &str) -> anyhow::Result<()> {
    socket.send(Message::text(text.to_owned())).await?;
    Ok(())
}

/// The next text frame, parsed; CALLs from the gateway are returned too.
pub async fn recv(socket: &mut Socket) -> anyhow::Result<Value> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .context("no message within 10 s")?
            .context("connection closed")??;
        match msg {
            Message::Text(t) => return Ok(serde_json::from_str(t.as_str())?),
            Message::Close(c) => bail!("closed: {c:?}"),
            _ => continue,
        }
    }
}

/// Sends a CALL and returns the answer to it, answering the gateway's own CALLs (the
/// configuration it pushes after boot) with `{"status": "Accepted"}` meanwhile.
pub async fn call(
    socket: &mut Socket,
    id: &str,
    action: &str,
    payload: Value,
) -> anyhow::Result<Value> {
    send(
        socket,
        &serde_json::json!([2, id, action, payload]).to_string(),
    )
    .await?;
    answer_until(socket, id).await
}

/// Sends raw text and returns the answer with message id `id`.
pub async fn send_raw(socket: &mut Socket, text: &str, id: &str) -> anyhow::Result<Value> {
    send(socket, text).await?;
    answer_until(socket, id).await
}

async fn answer_until(socket: &mut Socket, id: &str) -> anyhow::Result<Value> {
    loop {
        let v = recv(socket).await?;
        if v[0] == 2 {
            let reply = serde_json::json!([3, v[1], {"status": "Accepted"}]);
            send(socket, &reply.to_string()).await?;
            continue;
        }
        if v[1] == id {
            return Ok(v);
        }
    }
}
