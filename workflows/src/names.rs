//! Every name the Temporal server stores: workflow, activity, signal, update, query and search
//! attribute names. Running sessions refer to them by these strings, so they never change once
//! deployed; add new names instead.

/// The session workflow type.
pub const SESSION_WORKFLOW: &str = "session";

/// Persist the session read model and append its webhook events to the outbox, atomically.
pub const RECORD_SESSION: &str = "record_session";
/// Create the hosted payment page with a manual-capture card hold.
pub const CREATE_PAYMENT: &str = "create_payment";
/// Expire the hosted payment page before the provider's own expiry.
pub const EXPIRE_PAYMENT: &str = "expire_payment";
/// Read the payment's state from the provider (fallback for late or lost webhooks).
pub const RETRIEVE_PAYMENT: &str = "retrieve_payment";
/// Capture the final cost; the provider releases the rest.
pub const CAPTURE_PAYMENT: &str = "capture_payment";
/// Release the whole hold.
pub const CANCEL_PAYMENT: &str = "cancel_payment";
/// Raise the card hold (incremental authorization).
pub const INCREMENT_PAYMENT: &str = "increment_payment";
/// Find the gateway task queue holding a charge station's connection.
pub const LOCATE_CHARGE_STATION: &str = "locate_charge_station";
/// OCPP RemoteStartTransaction.
pub const REMOTE_START: &str = "remote_start";
/// OCPP RemoteStopTransaction.
pub const REMOTE_STOP: &str = "remote_stop";
/// OCPP SetChargingProfile with a TxProfile limit of 0.
pub const PAUSE_CHARGING: &str = "pause_charging";
/// OCPP ClearChargingProfile of the pause profile.
pub const RESUME_CHARGING: &str = "resume_charging";
/// Record the end of a transaction the station never closed (registry, sessions worker).
pub const CLOSE_TRANSACTION: &str = "close_transaction";
/// OCPP TriggerMessage MeterValues (a fresh reading before a stop decision).
pub const REQUEST_METER_VALUES: &str = "request_meter_values";

/// Patch: the charging loop with stop deadlines, station resets, faults and fresh readings
/// (sessions that started charging before it replay the old loop, `session::legacy`).
pub const PATCH_CHARGE_V2: &str = "charge-v2";

/// Patch: store writes (`record_session`) and the station lookup (`locate_charge_station`) run
/// as local activities, in the worker's own workflow task, instead of a round trip through the
/// Temporal server each (sessions started before it keep regular activities for their run).
pub const PATCH_LOCAL_STORE_AND_LOOKUP: &str = "local-store-and-lookup";

/// Patch: the session's energy target (`target.energy`) stops it once delivered (sessions
/// started before it had none; the marker is recorded only for a session with a target).
pub const PATCH_ENERGY_TARGET: &str = "energy-target";

/// Patch: a session on a rate with parking time announces when charging finishes while the car
/// stays (`session.idle`; asked only by sessions on such a rate).
pub const PATCH_IDLE_EVENT: &str = "idle-event";

/// Patch: a session whose organization enabled top-up raises the hold (incremental
/// authorization) before the stop deadline instead of stopping (asked only by such sessions).
pub const PATCH_TOP_UP: &str = "top-up";

/// Signal: the card hold is placed.
pub const SIGNAL_PAYMENT_AUTHORIZED: &str = "payment_authorized";
/// Signal: the provider expired the payment page.
pub const SIGNAL_PAYMENT_EXPIRED: &str = "payment_expired";
/// Signal: the driver cancelled on the payment page (or the hold was cancelled).
pub const SIGNAL_PAYMENT_CANCELED: &str = "payment_canceled";
/// Signal: the station started the transaction (StartTransaction).
pub const SIGNAL_CHARGING_STARTED: &str = "charging_started";
/// Signal: the station could not start (refused after accepting, faulted, timed out).
pub const SIGNAL_START_FAILED: &str = "start_failed";
/// Signal: meter values of the transaction.
pub const SIGNAL_METER_VALUES: &str = "meter_values";
/// Signal: the connector's status changed (Charging, SuspendedEV, ...).
pub const SIGNAL_CONNECTOR_STATUS: &str = "connector_status";
/// Signal: the station stopped the transaction (StopTransaction).
pub const SIGNAL_CHARGING_STOPPED: &str = "charging_stopped";

/// Update: wait for the payment page and return the session (used with update-with-start).
pub const UPDATE_CREATED: &str = "created";
/// Update: pause charging.
pub const UPDATE_PAUSE: &str = "pause";
/// Update: resume charging.
pub const UPDATE_RESUME: &str = "resume";
/// Update: stop the session.
pub const UPDATE_STOP: &str = "stop";
/// Query: the session as the API shows it.
pub const QUERY_SESSION: &str = "session";
/// Query: the live cost, the hold, the stop deadline and why a stop was decided
/// (`temporal workflow query --name explain`).
pub const QUERY_EXPLAIN: &str = "explain";

/// Search attribute (Keyword): the session's charge station.
pub const SA_CHARGE_STATION: &str = "ChargeStation";
/// Search attribute (Keyword): the session's status.
pub const SA_SESSION_STATUS: &str = "SessionStatus";
/// Search attribute (Keyword): the session's organization.
pub const SA_ORGANIZATION: &str = "Organization";

/// Search attribute (Keyword): the Stripe PaymentIntent holding the card, once the driver paid
/// (patch `payment-intent-search`).
pub const SA_PAYMENT_INTENT: &str = "PaymentIntent";

/// `--search-attribute` arguments a Temporal dev server needs for chargelink.
pub const SEARCH_ATTRIBUTES: [&str; 4] = [
    SA_CHARGE_STATION,
    SA_SESSION_STATUS,
    SA_ORGANIZATION,
    SA_PAYMENT_INTENT,
];
