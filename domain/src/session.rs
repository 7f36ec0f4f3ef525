//! The session and payment objects exactly as the REST API and webhooks show them (the Payment
//! Links spec's JSON shapes: `_id`, `chargestation`, `createdAt`, amounts in integer minor units).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use crate::ids::{ChargeStationId, ConnectorRef, PaymentId, RateId, SessionId, UserId};
use crate::money::{Currency, Money};
use crate::pricing::CostSummary;

/// Where a session is in its life.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Waiting for the driver to pay, then for the station to start.
    Created,
    /// Energy is flowing (or the EV is connected and the transaction runs).
    Started,
    /// Paused through the API: the transaction runs, energy is held at zero.
    Paused,
    /// The station reported the stop; the final cost is known.
    Ended,
    /// Cancelled by the driver, or the station never started.
    Canceled,
    /// The payment link expired before the driver paid.
    Expired,
}

impl SessionStatus {
    /// The status as a lower-case word (for search attributes and logs).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Started => "started",
            Self::Paused => "paused",
            Self::Ended => "ended",
            Self::Canceled => "canceled",
            Self::Expired => "expired",
        }
    }

    /// Whether the session can change no more.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Ended | Self::Canceled | Self::Expired)
    }
}

/// Where the card hold is in its life.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// The payment page exists; the driver has not paid yet.
    Created,
    /// The hold is placed.
    Authorized,
    /// The page expired or the card was refused before the expiry.
    Expired,
    /// The hold was released without capturing anything.
    Canceled,
    /// The final cost was captured and the rest released.
    Captured,
}

/// Provider references of a payment (Stripe).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeRefs {
    /// The PaymentIntent holding the card; known once the driver paid.
    #[serde(default)]
    pub intent_id: Option<String>,
    /// The hosted Checkout Session.
    #[serde(default)]
    pub checkout_session_id: Option<String>,
}

/// The payment entity of a session.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Payment id.
    #[serde(rename = "_id")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: PaymentId,
    /// The session it pays for.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub session: SessionId,
    /// The hosted payment page the driver is sent to.
    pub url: String,
    /// Currency of every amount.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub currency: Currency,
    /// The hold, in minor units.
    pub authorized_amount: i64,
    /// Captured amount in minor units, once captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured_amount: Option<i64>,
    /// Always `anonymous` for payment links: the driver has no account.
    #[serde(rename = "type")]
    pub kind: String,
    /// Provider references.
    pub stripe: StripeRefs,
    /// Payment status.
    pub status: PaymentStatus,
    /// Creation time.
    #[serde(rename = "createdAt")]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(rename = "updatedAt")]
    pub updated_at: DateTime<Utc>,
}

impl Payment {
    /// The hold as money.
    pub fn authorized(&self) -> Money {
        Money::new(self.authorized_amount, self.currency)
    }
}

/// Per-session targets set at creation.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionTarget {
    /// Seconds the driver has to pay before the link expires (overrides the organization's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_expiry_time: Option<u64>,
    /// Energy target, kWh (as eDRV's `target.energy`): the session is stopped once this much
    /// has been delivered (`end_reason: target_reached`), or earlier at the hold.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::float_option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>, example = 20.5))]
    pub energy: Option<Decimal>,
}

impl SessionTarget {
    /// The energy target in whole Wh (`energy` kWh, rounded half up), if set.
    pub fn energy_wh(&self) -> Option<i64> {
        self.energy.and_then(|kwh| {
            (kwh * Decimal::ONE_THOUSAND)
                .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
                .to_i64()
        })
    }
}

/// The cost of a session as the API shows it; empty until charging starts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCost {
    /// Total including tax, in minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    /// Currency of `amount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub currency: Option<Currency>,
    /// Per-dimension costs and the quantities behind them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<CostSummary>,
}

impl SessionCost {
    /// The API view of a computed cost.
    pub fn from_summary(summary: &CostSummary) -> Self {
        Self {
            amount: Some(summary.amount.amount),
            currency: Some(summary.amount.currency),
            details: Some(summary.clone()),
        }
    }
}

/// Why a session ended or was cancelled.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Stopped through the API.
    StoppedByApi,
    /// Stopped by chargelink before the cost could pass the hold.
    HoldLimit,
    /// The driver unplugged the cable.
    Unplugged,
    /// The station stopped on its own (local stop, EV, fault).
    Station,
    /// The station never confirmed the stop; ended on the last meter values.
    StationUnresponsive,
    /// The driver cancelled on the payment page.
    DriverCanceled,
    /// The payment page expired, or the card was refused until it did.
    PaymentExpired,
    /// The station did not start within the start window.
    StartFailed,
    /// Stopped by chargelink once the session's energy target was delivered.
    TargetReached,
    /// The station lost the transaction (it rebooted, or answered a stop with "no such
    /// transaction"); ended on the last meter values it sent.
    StationReset,
    /// The connector stayed Faulted or Unavailable past the fault grace; ended on the meter
    /// values from before the fault.
    StationFault,
}

impl EndReason {
    /// The reason as the API writes it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::StoppedByApi => "stopped_by_api",
            Self::HoldLimit => "hold_limit",
            Self::Unplugged => "unplugged",
            Self::Station => "station",
            Self::StationUnresponsive => "station_unresponsive",
            Self::DriverCanceled => "driver_canceled",
            Self::PaymentExpired => "payment_expired",
            Self::StartFailed => "start_failed",
            Self::TargetReached => "target_reached",
            Self::StationReset => "station_reset",
            Self::StationFault => "station_fault",
        }
    }
}

/// What the station answered to the last stop chargelink sent for a session.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StationAnswer {
    /// The station will stop; `session.ended` follows its StopTransaction.
    Accepted,
    /// The station refused; the stop is sent again, and the session ends on its last meter
    /// values if the station never confirms.
    Rejected,
    /// The station has no such transaction (it rebooted): the session ends on its last meter
    /// values, unless the station's own StopTransaction arrives first.
    NoTransaction,
    /// The station could not be reached; handled like `rejected`.
    Unreachable,
}

/// A stop chargelink asked for: why, when, how often, and the station's latest answer. Shown
/// on the session from the first stop until the end, so a client sees what a stop led to.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopState {
    /// Why the session is being stopped (the end reason it gets if the station confirms).
    pub reason: EndReason,
    /// When the first stop was sent.
    pub requested_at: DateTime<Utc>,
    /// When the stop was due: the stop deadline for a hold-limit stop (the moment the cost
    /// would reach the hold at the connector's full power, less the stop latency), the command
    /// for an API stop. `requested_at - due_at` is how late the stop went out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
    /// RemoteStopTransaction attempts so far.
    pub attempts: u32,
    /// The station's answer to the latest attempt.
    pub station_answer: StationAnswer,
}

/// A charging session with its payment, as the API returns it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Session id.
    #[serde(rename = "_id")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: SessionId,
    /// The driver.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub user: UserId,
    /// The charge station.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub chargestation: ChargeStationId,
    /// The connector.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub connector: ConnectorRef,
    /// Session status.
    pub status: SessionStatus,
    /// The rate applied.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub rate: RateId,
    /// Targets set at creation.
    pub target: SessionTarget,
    /// Cost so far (final once ended).
    pub cost: SessionCost,
    /// Always `payment_link`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The payment; absent only for the instant before the payment page exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<Payment>,
    /// Why it ended or was cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<EndReason>,
    /// The stop chargelink sent, once it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StopState>,
    /// Charging finished while the car stays plugged in (a rate with parking time only):
    /// since when, and when the parking fee starts. Cleared when charging resumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<SessionIdle>,
    /// When charging started, per the station.
    #[serde(default, rename = "startedAt", skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    #[serde(default, rename = "endedAt", skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    /// The driver's receipt (HTML; `.pdf` appended gives the PDF), at an unguessable URL;
    /// `null` until the payment is captured.
    #[serde(default)]
    pub receipt_url: Option<String>,
    /// Creation time.
    #[serde(rename = "createdAt")]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(rename = "updatedAt")]
    pub updated_at: DateTime<Utc>,
}

/// A session whose charging finished while the car stays plugged in (`session.idle`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionIdle {
    /// When energy stopped flowing, per the station (SuspendedEV, SuspendedEVSE, Finishing).
    pub since: DateTime<Utc>,
    /// When the parking (overstay) fee starts if the car stays: after the rate's grace period,
    /// `since` itself without one. Absent when staying costs nothing more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parking_fee_from: Option<DateTime<Utc>>,
}

impl Session {
    /// The payment, once its final cost is captured (what a receipt is made of).
    pub fn captured_payment(&self) -> Option<&Payment> {
        self.payment
            .as_ref()
            .filter(|p| p.status == PaymentStatus::Captured)
    }
}

/// `type` of every session chargelink creates.
pub const PAYMENT_LINK: &str = "payment_link";
/// `payment.type` of a payment link: the driver has no account.
pub const ANONYMOUS: &str = "anonymous";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_energy_target_is_kwh_as_a_json_number() {
        let t: SessionTarget = serde_json::from_str(r#"{"energy": 20.5}"#).unwrap();
        assert_eq!(t.energy_wh(), Some(20_500));
        assert_eq!(serde_json::to_value(&t).unwrap()["energy"], 20.5);
        // Rounded to the Wh, half away from zero.
        let t: SessionTarget = serde_json::from_str(r#"{"energy": 0.0125}"#).unwrap();
        assert_eq!(t.energy_wh(), Some(13));
        // Absent: absent in the output too, as an eDRV client sent it.
        let none: SessionTarget = serde_json::from_str("{}").unwrap();
        assert_eq!(none.energy_wh(), None);
        assert_eq!(serde_json::to_string(&none).unwrap(), "{}");
        assert!(serde_json::from_str::<SessionTarget>(r#"{"energy": "x"}"#).is_err());
    }
}
