//! sea-orm entities, one module per table. Rows hold ids as text (the domain's prefixed ids),
//! money as integer minor units, documents the API returns as JSON.

pub mod api_key;
pub mod charge_station;
pub mod connector;
pub mod ocpp_transaction;
pub mod ocpp_transaction_event;
pub mod organization;
pub mod pending_start;
pub mod rate;
pub mod receipt;
pub mod session;
pub mod station_connection;
pub mod station_connector;
pub mod user;
pub mod webhook_delivery;
pub mod webhook_endpoint;
pub mod webhook_event;
