//! The OCPP gateway (central system), 1.6J and 2.0.1: charge stations connect over WebSocket
//! with either version (negotiated per connection), the gateway answers them, turns what they
//! report into signals to the session workflows, and runs the workflows' charger commands
//! (remote start and stop, pause, resume) on the station's socket, in the station's version.
//!
//! # Layout
//! - [`gateway`]: [`GatewayConfig`], [`Gateway`] (bind, then run the server and the Temporal
//!   worker of the gateway's own task queue) and [`run`] for the CLI.
//! - `server`: accept loop (plain or TLS), authentication by security profile before the
//!   upgrade, subprotocol negotiation ([`Protocol`]).
//! - [`connection`]: one socket: read loop, writer task, [`StationHandle::call`] with one
//!   outstanding CALL and a timeout.
//! - [`frame`]: OCPP-J framing (`CALL`, `CALLRESULT`, `CALLERROR`) and error codes.
//! - [`protocol`]: the versions ([`Protocol`]) and the [`protocol::Action`] trait.
//! - [`v16`], [`v201`]: OCPP 1.6 and 2.0.1 messages, one file per action.
//! - `central`, `central201`: each version's answers and the session facts they reveal.
//! - `commands`: each version's charger commands.
//! - `metering`: meter values of either version as the session's samples.
//! - [`events`]: the [`SessionEvents`] seam between the protocol and the workflows.
//! - [`signals`]: [`TemporalEvents`], session events as Temporal signals.
//! - [`activities`]: [`GatewayActivities`] (charger commands) and [`StationLocator`].
//! - [`registry`]: the persistent [`Registry`] ([`StoreRegistry`], in the store's database) and
//!   the live [`Connections`].
//! - [`auth`]: [`StationDirectory`] and the file-backed [`FileStationDirectory`].
//! - [`tls`]: rustls setup for security profiles 2 and 3 (client CA), and the
//!   [`tls::PeerIdentity`] a handshake established.
//! - `shutdown`: the shutdown signal every task listens to.

pub mod activities;
pub mod auth;
mod central;
mod central201;
mod commands;
pub mod connection;
pub mod events;
pub mod frame;
pub mod gateway;
mod metering;
pub mod protocol;
pub mod registry;
mod server;
mod shutdown;
pub mod signals;
pub mod tls;
pub mod v16;
pub mod v201;

pub use activities::{GatewayActivities, StationLocator};
pub use auth::{
    FileStationDirectory, StationDirectory, StationEntry, StationsFile, StoreStationDirectory,
};
pub use central::SAMPLED_DATA;
pub use connection::{CallFailed, StationHandle};
pub use events::{ChannelEvents, SessionEvent, SessionEvents};
pub use gateway::{Gateway, GatewayConfig, GatewayError, run};
pub use protocol::Protocol;
pub use registry::{Connections, Registry, StoreRegistry};
pub use server::{SUBPROTOCOL, SUBPROTOCOL_201};
pub use signals::TemporalEvents;
pub use tls::TlsPaths;
