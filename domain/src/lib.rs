//! chargelink's domain model. Pure: no I/O, no async runtime, no Temporal, no clock reads, so
//! workflow code may call any of it.
//!
//! # Layout
//! - [`ids`]: typed, prefixed identifiers (`ses_…`, `pay_…`) and the OCPP id tag of a session.
//! - [`money`]: [`Money`] in integer minor units with an explicit [`Currency`].
//! - [`rate`]: the operator's rate (eDRV-style price components) attached to a session.
//! - [`tariff`]: OCPI 2.2.1 tariffs and the one exact cost engine; CDR pricing for the CLI.
//! - [`pricing`]: live and final cost of a session from meter samples and the rate.
//! - [`price_list`]: the rate as a driver reads it before paying, money formatting, and what
//!   the hold buys.
//! - [`receipt`]: a settled session's receipt: lines with VAT that add up to the capture.
//! - [`session`]: the session and payment objects exactly as the API and webhooks show them.
//! - [`events`]: webhook event types.
//! - [`station`]: a charge station's OCPP [`station::SecurityProfile`].
//! - [`config`]: the durations and limits that drive a session.

pub mod config;
pub mod events;
pub mod ids;
pub mod money;
pub mod price_list;
pub mod pricing;
pub mod rate;
pub mod receipt;
pub mod session;
pub mod station;
pub mod tariff;

pub use money::{Currency, Money, MoneyError};
