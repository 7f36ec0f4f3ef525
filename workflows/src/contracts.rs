//! Activity contracts: what the session workflow asks of the world, by name, input and output.
//! Implementations live elsewhere (`activities`, the gateway) and bind to these contracts with
//! `#[activity(definition = workflows::contracts::X)]`, which checks name, input and output at
//! compile time.
//!
//! Every input carries the session id (for logs and idempotency); every money-moving input carries
//! an idempotency key derived from the session id and the step, so a retry never moves money twice.

use chrono::{DateTime, Utc};
use domain::events::SessionEvent;
use domain::ids::{ChargeStationId, IdTag, OrganizationId, PaymentId, SessionId};
use domain::money::Money;
use domain::session::Session;
use serde::{Deserialize, Serialize};

use crate::names;

macro_rules! contract {
    ($(#[$doc:meta])* $marker:ident, $name:expr, $input:ty => $output:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $marker;

        impl temporalio_common::ActivityDefinition for $marker {
            type Input = $input;
            type Output = $output;
            fn name(&self) -> &str {
                $name
            }
        }
    };
}

/// Steps of a session that move money or create provider objects; each gets its own key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Creating the hosted payment.
    CreatePayment,
    /// Expiring it.
    ExpirePayment,
    /// Capturing the final cost.
    Capture,
    /// Releasing the hold.
    Cancel,
}

/// `"<session id>:<step>"`: stable across activity retries and worker restarts.
pub fn idempotency_key(session: &SessionId, step: Step) -> String {
    let step = match step {
        Step::CreatePayment => "create_payment",
        Step::ExpirePayment => "expire_payment",
        Step::Capture => "capture",
        Step::Cancel => "cancel",
    };
    format!("{session}:{step}")
}

/// Persist the session and append events to the outbox in one transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordSessionInput {
    /// The organization owning the session (the read model is scoped by it).
    pub organization: OrganizationId,
    /// The session after the step.
    pub session: Session,
    /// Events the step emits (may be empty), in order.
    pub events: Vec<SessionEvent>,
}

contract!(
    /// Upsert the session read model and append its events to the webhook outbox.
    RecordSession, names::RECORD_SESSION, RecordSessionInput => ()
);

/// Create the hosted payment page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatePaymentInput {
    /// The session paid for (metadata and client reference at the provider).
    pub session_id: SessionId,
    /// Our payment id.
    pub payment_id: PaymentId,
    /// The hold to place.
    pub amount: Money,
    /// Provider idempotency key.
    pub idempotency_key: String,
    /// The price as the driver reads it before paying (`domain::price_list`), one line each,
    /// shown next to the pay button. Optional with a default: histories recorded before it
    /// existed replay, and their pages simply show no price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_text: Option<String>,
    /// Ask the provider for incremental authorization support on the hold (top-up). Left out
    /// when false, so inputs of sessions without top-up serialize as before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incremental: bool,
}

/// The hosted payment page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatePaymentOutput {
    /// Where the driver pays.
    pub url: String,
    /// The provider's checkout session.
    pub checkout_session_id: String,
    /// The PaymentIntent, when the provider creates it up front.
    pub intent_id: Option<String>,
}

contract!(
    /// Create the hosted payment page with a manual-capture hold of the session's amount.
    CreatePayment, names::CREATE_PAYMENT, CreatePaymentInput => CreatePaymentOutput
);

/// Refers to a session's hosted payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRef {
    /// The session.
    pub session_id: SessionId,
    /// The provider's checkout session.
    pub checkout_session_id: String,
    /// Provider idempotency key (for calls that change state).
    pub idempotency_key: String,
}

/// The state of a hosted payment at the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ProviderPaymentState {
    /// Not paid yet.
    Open,
    /// The hold is placed.
    Authorized {
        /// The PaymentIntent holding the card.
        intent_id: String,
        /// What can be captured.
        amount_capturable: Money,
    },
    /// The page expired.
    Expired,
    /// The hold was cancelled.
    Canceled,
}

contract!(
    /// Expire the payment page. Answers the state after the call: `Expired`, or `Authorized` when
    /// the driver paid in the same instant (the race the workflow must not lose money on).
    ExpirePayment, names::EXPIRE_PAYMENT, PaymentRef => ProviderPaymentState
);

contract!(
    /// Read the payment's state at the provider.
    RetrievePayment, names::RETRIEVE_PAYMENT, PaymentRef => ProviderPaymentState
);

/// Capture the final cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturePaymentInput {
    /// The session.
    pub session_id: SessionId,
    /// The PaymentIntent holding the card.
    pub intent_id: String,
    /// The amount to capture (at most the hold).
    pub amount: Money,
    /// Provider idempotency key.
    pub idempotency_key: String,
}

/// The capture as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturePaymentOutput {
    /// What was captured; the implementation checks it equals the requested amount.
    pub captured: Money,
}

contract!(
    /// Capture the final cost and release the rest of the hold.
    CapturePayment, names::CAPTURE_PAYMENT, CapturePaymentInput => CapturePaymentOutput
);

/// Release a hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelPaymentInput {
    /// The session.
    pub session_id: SessionId,
    /// The PaymentIntent holding the card.
    pub intent_id: String,
    /// Provider idempotency key.
    pub idempotency_key: String,
}

contract!(
    /// Release the whole hold (nothing owed, or the session never started).
    CancelPayment, names::CANCEL_PAYMENT, CancelPaymentInput => ()
);

/// Raise a hold (incremental authorization) to a new total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncrementPaymentInput {
    /// The session.
    pub session_id: SessionId,
    /// The PaymentIntent holding the card.
    pub intent_id: String,
    /// The new total of the hold (not the difference).
    pub amount: Money,
    /// Provider idempotency key ([`increment_key`]).
    pub idempotency_key: String,
}

/// How an increment ended. A refusal is an answer, not a failure: the session keeps the hold it
/// has and stops on it as before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum IncrementPaymentOutput {
    /// The hold now stands at `amount_capturable`.
    Raised {
        /// What can be captured now.
        amount_capturable: Money,
    },
    /// The issuer declined, or the card or intent does not allow it; the hold is unchanged.
    Refused {
        /// The provider's error code (`card_declined`, ...), if any.
        code: Option<String>,
        /// The provider's message.
        message: String,
    },
}

contract!(
    /// Raise the hold to a new total (Stripe `increment_authorization`).
    IncrementPayment, names::INCREMENT_PAYMENT, IncrementPaymentInput => IncrementPaymentOutput
);

/// `"<session id>:increment_payment:<n>"`: one key per attempt `n` (1-based); a retry of the
/// same attempt reuses it.
pub fn increment_key(session: &SessionId, attempt: u32) -> String {
    format!("{session}:increment_payment:{attempt}")
}

/// Find a charge station.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocateChargeStationInput {
    /// The session asking.
    pub session_id: SessionId,
    /// The station.
    pub charge_station: ChargeStationId,
}

/// Where a charge station is connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeStationLocation {
    /// Task queue of the gateway holding its socket; `None` when it is offline.
    pub task_queue: Option<String>,
}

contract!(
    /// Find the gateway task queue that holds the station's connection.
    LocateChargeStation, names::LOCATE_CHARGE_STATION, LocateChargeStationInput => ChargeStationLocation
);

/// Start a transaction remotely.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteStartInput {
    /// The session.
    pub session_id: SessionId,
    /// The station.
    pub charge_station: ChargeStationId,
    /// OCPP connector number (1-based).
    pub connector_id: u32,
    /// The session's id tag, echoed by the station in StartTransaction.
    pub id_tag: IdTag,
}

/// A transaction of a station.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionRef {
    /// The session.
    pub session_id: SessionId,
    /// The station.
    pub charge_station: ChargeStationId,
    /// OCPP connector number.
    pub connector_id: u32,
    /// OCPP transaction id.
    pub transaction_id: i64,
}

/// A station's answer to a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandReply {
    /// `Accepted` (true) or `Rejected` / `NotSupported` (false).
    pub accepted: bool,
    /// Not accepted because the station has no such transaction: it reports the connector
    /// free (it rebooted, or lost the transaction). Absent in replies recorded before it existed.
    #[serde(default)]
    pub no_transaction: bool,
}

impl CommandReply {
    /// The station accepted.
    pub fn accepted() -> Self {
        Self {
            accepted: true,
            no_transaction: false,
        }
    }

    /// The station refused (or does not support the command).
    pub fn rejected() -> Self {
        Self {
            accepted: false,
            no_transaction: false,
        }
    }

    /// The station refused: it has no such transaction.
    pub fn no_transaction() -> Self {
        Self {
            accepted: false,
            no_transaction: true,
        }
    }
}

contract!(
    /// OCPP RemoteStartTransaction. Accepted only means the station will try.
    RemoteStart, names::REMOTE_START, RemoteStartInput => CommandReply
);
contract!(
    /// OCPP RemoteStopTransaction.
    RemoteStop, names::REMOTE_STOP, TransactionRef => CommandReply
);
contract!(
    /// OCPP SetChargingProfile (TxProfile, limit 0): energy stops, the transaction goes on.
    PauseCharging, names::PAUSE_CHARGING, TransactionRef => CommandReply
);
contract!(
    /// OCPP ClearChargingProfile of the pause profile: energy flows again.
    ResumeCharging, names::RESUME_CHARGING, TransactionRef => CommandReply
);
/// Close a transaction the station never closed itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseTransactionInput {
    /// The transaction.
    pub transaction: TransactionRef,
    /// Energy register it ends on (the last reading), Wh.
    pub meter_stop_wh: i64,
    /// When it ends (station time of the last reading, or the fault's start).
    pub at: DateTime<Utc>,
    /// Why, as recorded with the stop (`chargelink:station_reset`, ...).
    pub reason: String,
}

contract!(
    /// Records the end of a transaction the station lost or never confirmed, so the registry
    /// no longer routes the connector's reports to the session; a StopTransaction the station
    /// sends later counts as a repeat. Runs on the sessions worker.
    CloseTransaction, names::CLOSE_TRANSACTION, CloseTransactionInput => ()
);

contract!(
    /// OCPP TriggerMessage MeterValues for the transaction's connector: a fresh reading, asked
    /// for when the stop decision is near and the next periodic one would come too late.
    RequestMeterValues, names::REQUEST_METER_VALUES, TransactionRef => CommandReply
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_per_session_and_step() {
        let s: SessionId = "ses_abc".parse().unwrap();
        assert_eq!(idempotency_key(&s, Step::Capture), "ses_abc:capture");
        assert_ne!(
            idempotency_key(&s, Step::Capture),
            idempotency_key(&s, Step::Cancel)
        );
    }

    #[test]
    fn each_increment_attempt_has_its_own_key() {
        let s: SessionId = "ses_abc".parse().unwrap();
        assert_eq!(increment_key(&s, 1), "ses_abc:increment_payment:1");
        assert_ne!(increment_key(&s, 1), increment_key(&s, 2));
    }

    /// Without top-up, the create input serializes as before it existed (histories replay and
    /// old workers read it).
    #[test]
    fn a_create_input_without_top_up_leaves_incremental_out() {
        let input = CreatePaymentInput {
            session_id: "ses_abc".parse().unwrap(),
            payment_id: "pay_abc".parse().unwrap(),
            amount: Money::new(500, domain::money::Currency::USD),
            idempotency_key: "ses_abc:create_payment".into(),
            price_text: None,
            incremental: false,
        };
        let json = serde_json::to_value(&input).unwrap();
        assert!(json.get("incremental").is_none(), "{json}");
        let back: CreatePaymentInput = serde_json::from_value(json).unwrap();
        assert_eq!(back, input);
    }
}
