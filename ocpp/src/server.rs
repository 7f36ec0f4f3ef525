//! The WebSocket endpoint `/ocpp/{station id}`: accept loop (plain or TLS), authentication
//! before the upgrade by the station's security profile (HTTP Basic auth, over TLS for
//! profile 2; a client certificate naming the station for profile 3), subprotocol negotiation
//! (`ocpp2.0.1` or `ocpp1.6`, the station's order decides), and one task per connection,
//! answered by the central system of the negotiated version.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use domain::ids::ChargeStationId;
use domain::station::SecurityProfile;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::auth::{StationDirectory, Verdict, basic_credentials};
use crate::central::Central;
use crate::central201::Central201;
use crate::connection::{CallHandler, SocketLimits, StationHandle, serve};
use crate::protocol::Protocol;
use crate::registry::{Connections, Registry, StationLocation};
use crate::shutdown::Shutdown;
use crate::tls::PeerIdentity;

/// The subprotocol of OCPP 1.6J.
pub const SUBPROTOCOL: &str = "ocpp1.6";
/// The subprotocol of OCPP 2.0.1.
pub const SUBPROTOCOL_201: &str = "ocpp2.0.1";

/// Everything a connection needs.
pub(crate) struct ServerState {
    pub(crate) directory: Arc<dyn StationDirectory>,
    pub(crate) central: Arc<Central>,
    /// The OCPP 2.0.1 central system (sharing `central`'s registry, events and settings).
    pub(crate) central201: Arc<Central201>,
    pub(crate) registry: Arc<dyn Registry>,
    pub(crate) connections: Connections,
    pub(crate) location: StationLocation,
    pub(crate) limits: SocketLimits,
    pub(crate) call_timeout: Duration,
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) shutdown: Shutdown,
    /// Stations connected since the gateway started (a second connection is a reconnect).
    pub(crate) seen: std::sync::Mutex<std::collections::HashSet<ChargeStationId>>,
}

impl ServerState {
    /// Marks `station` seen; whether it had been before.
    fn seen(&self, station: &ChargeStationId) -> bool {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        !seen.insert(station.clone())
    }
}

/// The HTTP routes.
pub(crate) fn router(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/ocpp/{station}", any(upgrade))
        .with_state(state)
}

/// 401 with the reason in the body, so a station's operator can see what to fix; logged with
/// the station id (the span) for the security event log.
fn unauthorized(why: &'static str, peer: &PeerIdentity) -> Response {
    warn!(why, ?peer, "refused");
    let mut response = (StatusCode::UNAUTHORIZED, why).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"chargelink\""),
    );
    response
}

/// Why a station is refused before the upgrade; `None` lets it in.
async fn refusal(
    state: &ServerState,
    station: &ChargeStationId,
    headers: &HeaderMap,
    peer: &PeerIdentity,
) -> Result<Option<&'static str>, Response> {
    // Unknown stations get the same answer as wrong keys so ids cannot be probed (OCPP-J
    // suggests 404).
    const UNKNOWN_OR_WRONG: &str = "unknown charge station or wrong key";
    let profile = match state.directory.security_profile(station).await {
        Ok(Some(profile)) => profile,
        Ok(None) => {
            debug!("unknown charge station");
            return Ok(Some(UNKNOWN_OR_WRONG));
        }
        Err(e) => {
            warn!(error = %e, "station directory failed");
            return Err((StatusCode::SERVICE_UNAVAILABLE, "try again later").into_response());
        }
    };
    if profile.requires_tls() && *peer == PeerIdentity::Plain {
        return Ok(Some(match profile {
            SecurityProfile::TlsClientCertificate => {
                "security profile 3: connect over wss:// (TLS) with the station's client certificate"
            }
            _ => "security profile 2: connect over wss:// (TLS)",
        }));
    }
    if profile == SecurityProfile::TlsClientCertificate {
        // The certificate alone authenticates (OCA security white paper, profile 3); a Basic
        // header, if the station sends one, is ignored.
        return Ok(match peer {
            PeerIdentity::Certificate {
                common_name: Some(cn),
            } if cn == station.as_str() => None,
            PeerIdentity::Certificate {
                common_name: Some(_),
            } => Some(
                "security profile 3: the client certificate's subject CN is another charge station id",
            ),
            PeerIdentity::Certificate { common_name: None } => {
                Some("security profile 3: the client certificate has no single subject CN")
            }
            _ => Some("security profile 3: a client certificate is required"),
        });
    }
    let Some((user, key)) = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(basic_credentials)
    else {
        return Ok(Some("Basic credentials required"));
    };
    if user != station.as_str() {
        return Ok(Some("the username must be the charge station id"));
    }
    match state.directory.verify(station, &key).await {
        Ok(Verdict::Accepted) => Ok(None),
        Ok(verdict @ (Verdict::UnknownStation | Verdict::WrongKey)) => {
            debug!(?verdict, "Basic credentials do not match");
            Ok(Some(UNKNOWN_OR_WRONG))
        }
        Err(e) => {
            warn!(error = %e, "station directory failed");
            Err((StatusCode::SERVICE_UNAVAILABLE, "try again later").into_response())
        }
    }
}

async fn upgrade(
    ws: WebSocketUpgrade,
    Path(station): Path<String>,
    headers: HeaderMap,
    Extension(peer): Extension<PeerIdentity>,
    State(state): State<Arc<ServerState>>,
) -> Response {
    let span = info_span!("upgrade", charge_point_id = %station);
    async move {
        let Ok(station) = station.parse::<ChargeStationId>() else {
            return (StatusCode::NOT_FOUND, "not a charge station id").into_response();
        };
        match refusal(&state, &station, &headers, &peer).await {
            Ok(None) => {}
            Ok(Some(why)) => return unauthorized(why, &peer),
            Err(response) => return response,
        }
        let Ok(permit) = state.permits.clone().try_acquire_owned() else {
            warn!("connection limit reached");
            return (StatusCode::SERVICE_UNAVAILABLE, "too many connections").into_response();
        };
        // The station's order decides: the first subprotocol it offers that this gateway
        // speaks. Read from the headers: axum keeps the offer in a sorted set, and its
        // `protocols` picks by the order of the list given to it.
        let offered = headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|p| p.to_str().ok())
            .collect::<Vec<_>>();
        let protocol = Protocol::negotiate(offered.iter().copied());
        let ws = ws
            .protocols(protocol.map(Protocol::subprotocol))
            // OCPP messages are small: keep per-connection buffers small (10k connections).
            .read_buffer_size(4 * 1024)
            .write_buffer_size(0)
            .max_message_size(crate::connection::MAX_MESSAGE_BYTES)
            .max_frame_size(crate::connection::MAX_MESSAGE_BYTES);
        let Some(protocol) = protocol.filter(|_| ws.selected_protocol().is_some()) else {
            // OCPP-J §3.1.2 (1.6 and 2.0.1): complete the handshake without a subprotocol,
            // then close.
            warn!(
                ?offered,
                "no ocpp2.0.1 or ocpp1.6 subprotocol offered; closing"
            );
            return ws.on_upgrade(|mut socket: WebSocket| async move {
                let frame = CloseFrame {
                    code: 1002,
                    reason: "the ocpp2.0.1 or ocpp1.6 subprotocol is required".into(),
                };
                let _ = socket.send(Message::Close(Some(frame))).await;
            });
        };
        let span = tracing::Span::current();
        ws.on_upgrade(move |socket| {
            connected(socket, station, protocol, state, permit).instrument(span)
        })
    }
    .instrument(span)
    .await
}

async fn connected(
    socket: WebSocket,
    station: ChargeStationId,
    protocol: Protocol,
    state: Arc<ServerState>,
    _permit: OwnedSemaphorePermit,
) {
    let connection_id = format!(
        "{}-{:016x}",
        state.location.instance_id,
        rand::random::<u64>()
    );
    let (tx, rx) = mpsc::channel(16);
    let handle = StationHandle::new(
        station.clone(),
        connection_id.clone(),
        protocol,
        tx,
        state.call_timeout,
    );
    if let Some(old) = state.connections.insert(handle.clone()) {
        info!("replacing the station's previous connection");
        old.close("replaced by a new connection");
    }
    if let Err(e) = state
        .registry
        .station_connected(&station, &state.location, &connection_id)
        .await
    {
        // The socket still works for station-initiated messages; commands cannot find it
        // until the next reconnect.
        warn!(error = %e, "could not record the connection");
    }
    info!(connection_id, ocpp_version = %protocol, "connected");
    telemetry::ocpp::connected(state.seen(&station));
    let span = info_span!("connection", charge_point_id = %station, connection_id, ocpp_version = %protocol);
    let central: Arc<dyn CallHandler> = match protocol {
        Protocol::V16 => state.central.clone(),
        Protocol::V201 => state.central201.clone(),
    };
    serve(
        socket,
        handle.clone(),
        rx,
        central,
        state.limits,
        state.shutdown.clone(),
    )
    .instrument(span)
    .await;
    state.connections.remove(&handle);
    telemetry::ocpp::disconnected();
    if let Err(e) = state
        .registry
        .station_disconnected(&station, &connection_id)
        .await
    {
        warn!(error = %e, "could not record the disconnect");
    }
    info!(connection_id, "disconnected");
}

/// Accepts connections until shutdown; each is served on its own task.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    mut shutdown: Shutdown,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.recv() => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Usually EMFILE: back off instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        match tls.clone() {
            None => {
                tokio::spawn(serve_http(stream, peer, PeerIdentity::Plain, router));
            }
            Some(acceptor) => {
                tokio::spawn(async move {
                    let handshake = acceptor.accept(stream);
                    match tokio::time::timeout(Duration::from_secs(10), handshake).await {
                        Ok(Ok(tls)) => {
                            let identity = PeerIdentity::of(tls.get_ref().1);
                            serve_http(tls, peer, identity, router).await;
                        }
                        Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

async fn serve_http<I>(io: I, peer: SocketAddr, identity: PeerIdentity, router: Router)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Every request on this connection carries how the peer identified itself at the transport.
    let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
        request.extensions_mut().insert(identity.clone());
        tower_service::Service::call(&mut router.clone(), request)
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    if let Err(e) = connection.await {
        debug!(%peer, error = %e, "HTTP connection ended with an error");
    }
}
