//! The Stripe operations, as functions over [`State`]: no I/O, so each runs whole under the state
//! lock. Rules follow the Stripe API reference (Checkout Sessions, PaymentIntents).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::ApiError;
use crate::form::Params;
use crate::state::{
    Card, CheckoutSession, IntentStatus, PaymentIntent, SessionStatus, State, new_id, now,
};
use crate::webhooks::emit;

/// Stripe's bounds for `expires_at`, from creation: 30 minutes to 24 hours.
const MIN_EXPIRY_SECS: i64 = 30 * 60;
const MAX_EXPIRY_SECS: i64 = 24 * 60 * 60;

/// The positions of Checkout's `custom_text`, as Stripe names them.
pub(crate) const CUSTOM_TEXT_POSITIONS: [&str; 4] = [
    "after_submit",
    "shipping_address",
    "submit",
    "terms_of_service_acceptance",
];

/// Stripe's limit on each `custom_text[<position>][message]`.
const CUSTOM_TEXT_MAX_CHARS: usize = 1_200;

/// `custom_text[<position>][message]` by position; any other `custom_text` key is unknown to
/// Stripe, and a message over 1,200 characters is refused, as Stripe does.
fn custom_text(params: &Params) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    for key in params.keys_with_prefix("custom_text[") {
        let Some(position) = CUSTOM_TEXT_POSITIONS
            .iter()
            .find(|p| key == format!("custom_text[{p}][message]"))
        else {
            return Err(ApiError::invalid_param(
                "parameter_unknown",
                key,
                format!("Received unknown parameter: {key}"),
            ));
        };
        let message = params.get(key).unwrap_or_default();
        if message.chars().count() > CUSTOM_TEXT_MAX_CHARS {
            return Err(ApiError::invalid_param(
                "parameter_invalid_string",
                key,
                format!("{key} must be at most {CUSTOM_TEXT_MAX_CHARS} characters."),
            ));
        }
        out.insert((*position).to_owned(), message.to_owned());
    }
    Ok(out)
}

/// Routes a `/v1` request to its operation.
pub(crate) fn dispatch(
    state: &mut State,
    public_base: &url::Url,
    method: &str,
    path: &str,
    params: &Params,
) -> Result<Value, ApiError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("POST", ["v1", "checkout", "sessions"]) => create_session(state, public_base, params),
        ("GET", ["v1", "checkout", "sessions", id]) => retrieve_session(state, id),
        ("POST", ["v1", "checkout", "sessions", id, "expire"]) => expire_session(state, id),
        ("GET", ["v1", "payment_intents", id]) => retrieve_intent(state, id),
        ("GET", ["v1", "charges", id]) => retrieve_charge(state, id),
        ("POST", ["v1", "payment_intents", id, "capture"]) => capture(state, id, params),
        ("POST", ["v1", "payment_intents", id, "cancel"]) => cancel(state, id, params),
        ("POST", ["v1", "payment_intents", id, "increment_authorization"]) => {
            increment_authorization(state, id, params)
        }
        _ => Err(ApiError::unrecognized(method, path)),
    }
}

fn session_json(state: &State, session: &CheckoutSession) -> Value {
    let intent = session
        .payment_intent
        .as_ref()
        .and_then(|id| state.intents.get(id));
    session.to_json(intent)
}

fn create_session(
    state: &mut State,
    public_base: &url::Url,
    params: &Params,
) -> Result<Value, ApiError> {
    let mode = params.require("mode")?;
    if mode != "payment" {
        return Err(ApiError::invalid_param(
            "parameter_invalid_string",
            "mode",
            format!("The stripe sandbox supports only mode=payment, not `{mode}`."),
        ));
    }
    let items = params.indices("line_items");
    if items.is_empty() {
        return Err(ApiError::missing("line_items"));
    }
    let mut amount: i64 = 0;
    let mut currency: Option<String> = None;
    let mut product_name = String::new();
    for i in items {
        // `k` is the rest of the key after the index, e.g. `[price_data][currency]`.
        let key = |k: &str| format!("line_items[{i}]{k}");
        if params.get(&key("[price]")).is_some() {
            return Err(ApiError::invalid_param(
                "parameter_unknown",
                &key("[price]"),
                "The stripe sandbox supports only price_data line items.",
            ));
        }
        let item_currency = params
            .require(&key("[price_data][currency]"))?
            .to_ascii_lowercase();
        let unit = params
            .int(&key("[price_data][unit_amount]"))?
            .ok_or_else(|| ApiError::missing(&key("[price_data][unit_amount]")))?;
        let quantity = params
            .int(&key("[quantity]"))?
            .ok_or_else(|| ApiError::missing(&key("[quantity]")))?;
        let name = params.require(&key("[price_data][product_data][name]"))?;
        if unit < 0 || quantity < 1 {
            return Err(ApiError::invalid_param(
                "parameter_invalid_integer",
                &key("[price_data][unit_amount]"),
                "This value must be greater than or equal to 0 (quantity at least 1).",
            ));
        }
        if currency.as_ref().is_some_and(|c| *c != item_currency) {
            return Err(ApiError::invalid_param(
                "parameter_invalid_string",
                &key("[price_data][currency]"),
                "All line items must use the same currency.",
            ));
        }
        currency = Some(item_currency);
        amount = unit
            .checked_mul(quantity)
            .and_then(|line| amount.checked_add(line))
            .ok_or_else(|| {
                ApiError::invalid_param("amount_too_large", &key("[quantity]"), "Amount too large.")
            })?;
        if product_name.is_empty() {
            product_name = name.to_owned();
        }
    }
    let currency = currency.unwrap_or_default();
    if amount < 1 {
        return Err(ApiError::invalid_param(
            "amount_too_small",
            "line_items",
            "The Checkout Session's total amount due must be greater than 0.",
        ));
    }

    let created = now();
    let expires_at = params
        .int("expires_at")?
        .unwrap_or(created + MAX_EXPIRY_SECS);
    if !(created + MIN_EXPIRY_SECS..=created + MAX_EXPIRY_SECS).contains(&expires_at) {
        return Err(ApiError::invalid_param(
            "parameter_invalid_integer",
            "expires_at",
            "The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session creation.",
        ));
    }
    let capture_method = params
        .get("payment_intent_data[capture_method]")
        .unwrap_or("automatic_async");
    if !matches!(capture_method, "manual" | "automatic" | "automatic_async") {
        return Err(ApiError::invalid_param(
            "parameter_invalid_string",
            "payment_intent_data[capture_method]",
            format!(
                "Invalid payment_intent_data[capture_method]: must be one of automatic, automatic_async, or manual, not `{capture_method}`."
            ),
        ));
    }
    let client_reference_id = params.get("client_reference_id").map(str::to_owned);
    if client_reference_id.as_ref().is_some_and(|c| c.len() > 200) {
        return Err(ApiError::invalid_param(
            "parameter_invalid_string",
            "client_reference_id",
            "client_reference_id must be at most 200 characters.",
        ));
    }
    for param in ["success_url", "cancel_url"] {
        if let Some(u) = params.get(param)
            && url::Url::parse(u).is_err()
        {
            return Err(ApiError::invalid_param(
                "url_invalid",
                param,
                "Not a valid URL",
            ));
        }
    }

    let custom_text = custom_text(params)?;
    let incremental_param = "payment_method_options[card][request_incremental_authorization]";
    let request_incremental = match params.get(incremental_param) {
        None | Some("never") => false,
        Some("if_available") => true,
        Some(other) => {
            return Err(ApiError::invalid_param(
                "parameter_invalid_string",
                incremental_param,
                format!(
                    "Invalid {incremental_param}: must be one of if_available or never, not `{other}`."
                ),
            ));
        }
    };

    let id = new_id("cs_test_");
    let url = public_base
        .join(&format!("c/pay/{id}"))
        .map(String::from)
        .unwrap_or_default();
    let session = CheckoutSession {
        id: id.clone(),
        created,
        expires_at,
        status: SessionStatus::Open,
        amount,
        currency,
        product_name,
        custom_text,
        client_reference_id,
        metadata: params.map("metadata"),
        success_url: params.get("success_url").map(str::to_owned),
        cancel_url: params.get("cancel_url").map(str::to_owned),
        capture_method: capture_method.to_owned(),
        intent_metadata: params.map("payment_intent_data[metadata]"),
        payment_intent: None,
        attempt_intent: None,
        request_incremental,
        url,
    };
    let json = session.to_json(None);
    state.sessions.insert(id, session);
    Ok(json)
}

fn session_mut<'a>(state: &'a mut State, id: &str) -> Result<&'a mut CheckoutSession, ApiError> {
    state
        .sessions
        .get_mut(id)
        .ok_or_else(|| ApiError::no_such("checkout.session", "session", id))
}

fn intent_mut<'a>(state: &'a mut State, id: &str) -> Result<&'a mut PaymentIntent, ApiError> {
    state
        .intents
        .get_mut(id)
        .ok_or_else(|| ApiError::no_such("payment_intent", "intent", id))
}

fn retrieve_session(state: &mut State, id: &str) -> Result<Value, ApiError> {
    let session = session_mut(state, id)?.clone();
    Ok(session_json(state, &session))
}

/// Only an open session can be expired; that emits `checkout.session.expired`.
fn expire_session(state: &mut State, id: &str) -> Result<Value, ApiError> {
    let session = session_mut(state, id)?;
    if session.status != SessionStatus::Open {
        return Err(ApiError::state(
            None,
            format!(
                "Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout Session has a status of \"{}\".",
                session.status.as_str()
            ),
        ));
    }
    session.status = SessionStatus::Expired;
    let session = session.clone();
    let json = session_json(state, &session);
    emit(state, "checkout.session.expired", &session.id, json.clone());
    Ok(json)
}

/// Expires every open session whose `expires_at` has passed (Stripe's own expiry).
pub(crate) fn expire_due(state: &mut State) {
    let due: Vec<String> = state
        .sessions
        .values()
        .filter(|s| s.status == SessionStatus::Open && s.expires_at <= now())
        .map(|s| s.id.clone())
        .collect();
    for id in due {
        // Cannot fail: the session is open.
        let _ = expire_session(state, &id);
    }
}

fn retrieve_intent(state: &mut State, id: &str) -> Result<Value, ApiError> {
    Ok(intent_mut(state, id)?.to_json())
}

/// A charge: the latest charge of the intent that made it (the sandbox keeps no other).
fn retrieve_charge(state: &mut State, id: &str) -> Result<Value, ApiError> {
    state
        .intents
        .values()
        .filter(|pi| pi.latest_charge.as_deref() == Some(id))
        .find_map(PaymentIntent::charge_json)
        .ok_or_else(|| ApiError::no_such("charge", "charge", id))
}

/// Capture: only `requires_capture`, at most `amount_capturable`; the rest is released and the
/// intent succeeds (single capture, no multicapture).
fn capture(state: &mut State, id: &str, params: &Params) -> Result<Value, ApiError> {
    let amount_to_capture = params.int("amount_to_capture")?;
    let intent = intent_mut(state, id)?;
    if intent.status != IntentStatus::RequiresCapture {
        return Err(ApiError::state(
            Some("payment_intent_unexpected_state"),
            format!(
                "This PaymentIntent could not be captured because it has a status of {}. Only a PaymentIntent with one of the following statuses may be captured: requires_capture.",
                intent.status.as_str()
            ),
        ));
    }
    let amount = amount_to_capture.unwrap_or(intent.amount_capturable);
    if amount > intent.amount_capturable {
        let mut e = ApiError::state(
            Some("amount_too_large"),
            format!(
                "The amount to capture ({amount}) must be less than or equal to the amount capturable ({}).",
                intent.amount_capturable
            ),
        );
        e.param = Some("amount_to_capture".into());
        return Err(e);
    }
    if amount < 1 {
        return Err(ApiError::invalid_param(
            "parameter_invalid_integer",
            "amount_to_capture",
            "amount_to_capture must be greater than 0; cancel the PaymentIntent to release the whole hold.",
        ));
    }
    intent.amount_received = amount;
    intent.amount_capturable = 0;
    intent.status = IntentStatus::Succeeded;
    let json = intent.to_json();
    emit(state, "payment_intent.succeeded", id, json.clone());
    Ok(json)
}

const CANCELLATION_REASONS: [&str; 4] = [
    "duplicate",
    "fraudulent",
    "requested_by_customer",
    "abandoned",
];

/// Cancel: a Checkout-owned intent only in `requires_capture` (otherwise the session must be
/// expired); the whole hold is released.
fn cancel(state: &mut State, id: &str, params: &Params) -> Result<Value, ApiError> {
    let reason = params.get("cancellation_reason");
    if let Some(r) = reason
        && !CANCELLATION_REASONS.contains(&r)
    {
        return Err(ApiError::invalid_param(
            "parameter_invalid_string",
            "cancellation_reason",
            format!(
                "Invalid cancellation_reason: must be one of {}",
                CANCELLATION_REASONS.join(", ")
            ),
        ));
    }
    let intent = intent_mut(state, id)?;
    match intent.status {
        IntentStatus::RequiresCapture => {}
        IntentStatus::RequiresPaymentMethod => {
            return Err(ApiError::state(
                Some("payment_intent_unexpected_state"),
                "You can only cancel a PaymentIntent created by a Checkout Session when it has a status of requires_capture. Otherwise, expire the Checkout Session.",
            ));
        }
        IntentStatus::Succeeded | IntentStatus::Canceled => {
            return Err(ApiError::state(
                Some("payment_intent_unexpected_state"),
                format!(
                    "You cannot cancel this PaymentIntent because it has a status of {}. Only a PaymentIntent with one of the following statuses may be canceled: requires_payment_method, requires_capture, requires_confirmation, requires_action, processing.",
                    intent.status.as_str()
                ),
            ));
        }
    }
    intent.status = IntentStatus::Canceled;
    intent.amount_capturable = 0;
    intent.canceled_at = Some(now());
    intent.cancellation_reason = reason.map(str::to_owned);
    let json = intent.to_json();
    emit(state, "payment_intent.canceled", id, json.clone());
    Ok(json)
}

/// Stripe's largest amount for a card payment, in minor units (`amount_too_large` above it).
const MAX_AMOUNT: i64 = 99_999_999;

/// Stripe's limit of incremental authorization attempts per PaymentIntent, declines included.
const MAX_INCREMENT_ATTEMPTS: u32 = 10;

/// Incremental authorization: `amount` is the new total, above the current one. Only a held,
/// uncaptured intent created with `request_incremental_authorization=if_available`; a decline
/// (`card_declined`, 402) leaves the intent capturable for its previous amount.
fn increment_authorization(
    state: &mut State,
    id: &str,
    params: &Params,
) -> Result<Value, ApiError> {
    let amount = params
        .int("amount")?
        .ok_or_else(|| ApiError::missing("amount"))?;
    let intent = intent_mut(state, id)?;
    if intent.status != IntentStatus::RequiresCapture {
        return Err(ApiError::state(
            Some("payment_intent_unexpected_state"),
            format!(
                "This PaymentIntent's authorization could not be incremented because it has a status of {}. Only a PaymentIntent with one of the following statuses may be incremented: requires_capture.",
                intent.status.as_str()
            ),
        ));
    }
    if !intent.incremental_available() {
        return Err(ApiError::state(
            None,
            "This PaymentIntent is not eligible for incremental authorization: request it at creation with payment_method_options[card][request_incremental_authorization]=if_available, on a card whose charge shows incremental_authorization.status=available.",
        ));
    }
    if amount <= intent.amount {
        return Err(ApiError::invalid_param(
            "parameter_invalid_integer",
            "amount",
            format!(
                "The amount ({amount}) must be greater than the currently authorized amount ({}).",
                intent.amount
            ),
        ));
    }
    if amount > MAX_AMOUNT {
        return Err(ApiError::invalid_param(
            "amount_too_large",
            "amount",
            format!("Amount must be no more than {MAX_AMOUNT}."),
        ));
    }
    if intent.increment_attempts >= MAX_INCREMENT_ATTEMPTS {
        return Err(ApiError::state(
            None,
            format!(
                "This PaymentIntent has reached the maximum of {MAX_INCREMENT_ATTEMPTS} incremental authorization attempts."
            ),
        ));
    }
    intent.increment_attempts += 1;
    if intent.card.as_ref().is_some_and(|c| c.declines_increments) {
        return Err(ApiError::card(
            "card_declined",
            Some("generic_decline"),
            "Your card was declined.",
        ));
    }
    intent.amount = amount;
    intent.amount_capturable = amount;
    // No webhook: the caller has the answer, and chargelink treats
    // `amount_capturable_updated` as the first hold.
    Ok(intent.to_json())
}

/// What a card number does on the hosted page: the card Stripe would report, or the error.
fn card_outcome(number: &str) -> Result<Card, ApiError> {
    let digits: String = number
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    match digits.as_str() {
        crate::CARD_SUCCESS | crate::CARD_DECLINES_INCREMENTS => Ok(Card {
            brand: "visa".into(),
            last4: digits[digits.len() - 4..].to_owned(),
            declines_increments: digits == crate::CARD_DECLINES_INCREMENTS,
        }),
        crate::CARD_DECLINED => Err(ApiError::card(
            "card_declined",
            Some("generic_decline"),
            "Your card was declined.",
        )),
        _ => Err(ApiError::card(
            "incorrect_number",
            None,
            "Your card number is incorrect. In the sandbox use 4242 4242 4242 4242 (succeeds) or 4000 0000 0000 0002 (declined).",
        )),
    }
}

/// Pays an open session with a test card, as the hosted page does: success places the hold
/// (or captures, for automatic capture) and completes the session; a decline leaves it open.
pub(crate) fn pay(
    state: &mut State,
    id: &str,
    card_number: &str,
) -> Result<CheckoutSession, ApiError> {
    let session = session_mut(state, id)?.clone();
    if session.status != SessionStatus::Open {
        let why = match session.status {
            SessionStatus::Complete => "This Checkout Session is already paid.",
            _ => "This Checkout Session has expired.",
        };
        return Err(ApiError::state(None, why));
    }
    let outcome = card_outcome(card_number);
    let intent_id = session
        .attempt_intent
        .clone()
        .unwrap_or_else(|| new_id("pi_"));
    let intent = state
        .intents
        .entry(intent_id.clone())
        .or_insert_with(|| PaymentIntent {
            id: intent_id.clone(),
            created: now(),
            amount: session.amount,
            currency: session.currency.clone(),
            amount_capturable: 0,
            amount_received: 0,
            capture_method: session.capture_method.clone(),
            status: IntentStatus::RequiresPaymentMethod,
            metadata: session.intent_metadata.clone(),
            latest_charge: None,
            canceled_at: None,
            cancellation_reason: None,
            last_payment_error: None,
            card: None,
            request_incremental: session.request_incremental,
            increment_attempts: 0,
        });
    let card = match outcome {
        Ok(card) => card,
        Err(e) => {
            intent.last_payment_error = Some((
                e.code.unwrap_or("card_declined").to_owned(),
                e.decline_code.map(str::to_owned),
                e.message.clone(),
            ));
            let json = intent.to_json();
            session_mut(state, id)?.attempt_intent = Some(intent_id.clone());
            emit(state, "payment_intent.payment_failed", &intent_id, json);
            return Err(e);
        }
    };
    intent.last_payment_error = None;
    intent.card = Some(card);
    intent.latest_charge = Some(new_id("ch_"));
    let manual = intent.capture_method == "manual";
    if manual {
        intent.status = IntentStatus::RequiresCapture;
        intent.amount_capturable = intent.amount;
    } else {
        intent.status = IntentStatus::Succeeded;
        intent.amount_received = intent.amount;
    }
    let intent_json = intent.to_json();
    let session = session_mut(state, id)?;
    session.status = SessionStatus::Complete;
    session.payment_intent = Some(intent_id.clone());
    let session = session.clone();
    // Stripe's order: the intent's event first, then the session's.
    if manual {
        emit(
            state,
            "payment_intent.amount_capturable_updated",
            &intent_id,
            intent_json,
        );
    } else {
        emit(state, "payment_intent.succeeded", &intent_id, intent_json);
    }
    let session_json = session_json(state, &session);
    emit(state, "checkout.session.completed", id, session_json);
    Ok(session)
}

/// Ends a hold as the card network does after about 7 days: the intent is canceled
/// (`cancellation_reason=automatic`) and `payment_intent.canceled` is sent.
pub(crate) fn lapse_authorization(state: &mut State, id: &str) -> Result<Value, ApiError> {
    let intent = intent_mut(state, id)?;
    if intent.status != IntentStatus::RequiresCapture {
        return Err(ApiError::state(
            Some("payment_intent_unexpected_state"),
            "Only a held PaymentIntent can lapse.",
        ));
    }
    intent.status = IntentStatus::Canceled;
    intent.amount_capturable = 0;
    intent.canceled_at = Some(now());
    intent.cancellation_reason = Some("automatic".into());
    let json = intent.to_json();
    emit(state, "payment_intent.canceled", id, json.clone());
    Ok(json)
}
