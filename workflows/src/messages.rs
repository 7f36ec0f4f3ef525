//! Payloads of the session workflow's signals, updates and result.

use chrono::{DateTime, Utc};
use domain::money::Money;
use domain::pricing::MeterSample;
use domain::session::{EndReason, SessionStatus, StopState};
use serde::{Deserialize, Serialize};

/// The card hold is placed (Stripe `checkout.session.completed` /
/// `payment_intent.amount_capturable_updated`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentAuthorized {
    /// The PaymentIntent holding the card.
    pub intent_id: String,
    /// What the provider says can be captured.
    pub amount_capturable: Money,
}

/// The payment page was closed without a hold (expired at the provider, or cancelled).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentClosed {
    /// Why, in words (for the history).
    pub reason: String,
}

/// The station started the transaction (StartTransaction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargingStarted {
    /// OCPP transaction id assigned by the gateway.
    pub transaction_id: i64,
    /// Energy register at start, Wh.
    pub meter_start_wh: i64,
    /// Station time of the start.
    pub timestamp: DateTime<Utc>,
}

/// The station could not start (it answered, faulted or timed out after accepting).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartFailed {
    /// Why, in words.
    pub reason: String,
}

/// Meter values of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterValues {
    /// OCPP transaction id.
    pub transaction_id: i64,
    /// Samples, possibly late and out of order.
    pub samples: Vec<MeterSample>,
}

/// OCPP 1.6 ChargePointStatus of the session's connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnectorState {
    /// Free.
    Available,
    /// Plugged in or authorized, not yet charging.
    Preparing,
    /// Energy flows.
    Charging,
    /// The EV does not take energy (full, or its own schedule).
    SuspendedEV,
    /// The station offers no energy (e.g. a pause profile).
    #[serde(rename = "SuspendedEVSE")]
    SuspendedEvse,
    /// Transaction stopped, cable not yet removed.
    Finishing,
    /// Reserved.
    Reserved,
    /// Out of service.
    Unavailable,
    /// In error.
    Faulted,
}

/// The connector's status changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorStatus {
    /// New status.
    pub status: ConnectorState,
    /// Station time of the change.
    pub timestamp: DateTime<Utc>,
}

/// The station stopped the transaction (StopTransaction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargingStopped {
    /// OCPP transaction id.
    pub transaction_id: i64,
    /// Energy register at stop, Wh.
    pub meter_stop_wh: i64,
    /// Station time of the stop.
    pub timestamp: DateTime<Utc>,
    /// OCPP stop reason (`Remote`, `EVDisconnected`, `Local`, ...); absent means `Local`.
    pub reason: Option<String>,
}

/// Stable codes of refused session commands (pause, resume, stop, created).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandErrorCode {
    /// Stop through the API is not allowed on rates with a PARKING_TIME component.
    StopNotAllowed,
    /// Pause (or stop) asked while the session is not charging.
    NotCharging,
    /// Resume asked while the session is not paused.
    NotPaused,
    /// The session has already ended or was cancelled.
    SessionFinished,
    /// The station answered the command with Rejected.
    StationRejected,
    /// The station could not be reached.
    StationUnavailable,
    /// The payment page could not be created.
    PaymentUnavailable,
}

impl CommandErrorCode {
    /// The code as text.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::StopNotAllowed => "stop_not_allowed",
            Self::NotCharging => "session_not_charging",
            Self::NotPaused => "session_not_paused",
            Self::SessionFinished => "session_finished",
            Self::StationRejected => "charge_station_rejected",
            Self::StationUnavailable => "charge_station_unavailable",
            Self::PaymentUnavailable => "payment_unavailable",
        }
    }

    fn parse(code: &str) -> Option<Self> {
        [
            Self::StopNotAllowed,
            Self::NotCharging,
            Self::NotPaused,
            Self::SessionFinished,
            Self::StationRejected,
            Self::StationUnavailable,
            Self::PaymentUnavailable,
        ]
        .into_iter()
        .find(|c| c.as_str() == code)
    }
}

/// A refused command. Displayed as `<code>: <message>`, which is how it crosses Temporal's
/// update failure; [`CommandError::parse`] reads it back on the client side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct CommandError {
    /// Stable code.
    pub code: CommandErrorCode,
    /// What was wrong and what to do.
    pub message: String,
}

impl CommandError {
    pub(crate) fn new(code: CommandErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// Finds a command error in an update failure message.
    pub fn parse(text: &str) -> Option<Self> {
        // Failure messages may be wrapped ("Update failed: <ours>"); our code is a snake_case word
        // followed by ": ".
        text.match_indices(": ").find_map(|(i, _)| {
            let head = &text[..i];
            let start = head
                .rfind(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .map_or(0, |p| p + 1);
            let code = CommandErrorCode::parse(&head[start..])?;
            Some(Self {
                code,
                message: text[i + 2..].to_owned(),
            })
        })
    }
}

/// How a session finished: the workflow's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionOutcome {
    /// Final status.
    pub status: SessionStatus,
    /// Why it finished.
    pub end_reason: Option<EndReason>,
    /// What was captured, if anything.
    pub captured: Option<Money>,
}

/// The `explain` query: what an operator needs to see why a session is where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// The session's status.
    pub status: SessionStatus,
    /// The cost so far (live while charging, final once ended).
    pub cost: Option<Money>,
    /// The hold that can be captured: the cost never goes above it.
    pub hold: Money,
    /// The latest instant a stop can go out with the hold still covering the worst case (the
    /// assumed power from the latest reading until the stop latency after it); unset before
    /// the first reading and once a stop was decided.
    pub stop_deadline: Option<DateTime<Utc>>,
    /// The power auto-stop assumes between readings, W.
    pub assumed_power_w: i64,
    /// The stop once decided: reason, when it was due and sent, attempts, the station's answer.
    pub stop: Option<StopState>,
    /// Why the session ended, once it has.
    pub end_reason: Option<EndReason>,
    /// The same in one sentence.
    pub why: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_errors_survive_a_wrapped_message() {
        let e = CommandError::new(
            CommandErrorCode::StopNotAllowed,
            "the rate bills PARKING_TIME: unplug to stop",
        );
        let wrapped = format!("Update failed: {e}");
        assert_eq!(CommandError::parse(&wrapped), Some(e));
        assert_eq!(CommandError::parse("something else: entirely"), None);
    }
}
