//! chargelink types <-> Stripe types. Stripe's wire types appear only here and in `client.rs`.
//! Stripe amounts are integer minor units, like [`Money`], so amounts map one to one.

use std::collections::HashMap;
use std::str::FromStr;

use domain::money::{Currency, Money};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionCustomText, CreateCheckoutSessionLineItems,
    CreateCheckoutSessionLineItemsPriceData, CreateCheckoutSessionPaymentIntentData,
    CreateCheckoutSessionPaymentIntentDataCaptureMethod, CreateCheckoutSessionPaymentMethodOptions,
    CreateCheckoutSessionPaymentMethodOptionsCard,
    CreateCheckoutSessionPaymentMethodOptionsCardRequestIncrementalAuthorization,
    CustomTextPositionParam, ProductData,
};
use stripe_shared::{
    CheckoutSession, CheckoutSessionMode, CheckoutSessionStatus, PaymentIntent, PaymentIntentStatus,
};
use url::Url;
use workflows::contracts::{CreatePaymentInput, ProviderPaymentState};

use super::PaymentError;

/// Stripe's shortest Checkout expiry is 30 minutes after *its* creation time; one more minute
/// keeps clock skew and request latency from tripping the limit. Shorter expiries come from the
/// workflow's timer and the expire call.
pub(crate) const CHECKOUT_LIFETIME_SECS: i64 = 31 * 60;

/// Stripe substitutes this in a success URL with the checkout session's id.
const SESSION_ID_TEMPLATE: &str = "{CHECKOUT_SESSION_ID}";

fn base(public_base_url: &Url) -> &str {
    public_base_url.as_str().trim_end_matches('/')
}

/// Where Stripe sends the driver after paying. Built as text: `Url` would percent-encode the
/// `{CHECKOUT_SESSION_ID}` template Stripe looks for.
pub(crate) fn success_url(public_base_url: &Url, session_id: &str) -> String {
    format!(
        "{}/payments/{session_id}/success?checkout_session_id={SESSION_ID_TEMPLATE}",
        base(public_base_url)
    )
}

/// Where Stripe's page sends the driver who gives up.
pub(crate) fn cancel_url(public_base_url: &Url, session_id: &str) -> String {
    format!("{}/payments/{session_id}/cancel", base(public_base_url))
}

/// chargelink's currency as Stripe's (lower-case ISO code).
pub(crate) fn stripe_currency(currency: Currency) -> stripe_types::Currency {
    let code = String::from(currency);
    // Infallible: unknown codes become `Currency::Unknown(code)` and are sent as they are.
    stripe_types::Currency::from_str(&code).unwrap_or(stripe_types::Currency::Unknown(code))
}

/// An amount Stripe reports, as [`Money`].
pub(crate) fn money(amount: i64, currency: &stripe_types::Currency) -> Result<Money, PaymentError> {
    let currency: Currency = currency.to_string().parse().map_err(|e| {
        PaymentError::Unexpected(format!("Stripe reported currency `{currency}`: {e}"))
    })?;
    Ok(Money::new(amount, currency))
}

/// The Checkout Session for a session's hold: `mode=payment`, one line item of the hold amount,
/// manual capture, the session id as client reference and in both metadata maps.
pub(crate) fn checkout_request(
    input: &CreatePaymentInput,
    public_base_url: &Url,
    now_unix: i64,
) -> CreateCheckoutSession {
    let session_id = input.session_id.as_str();
    let metadata = HashMap::from([
        ("session_id".to_owned(), session_id.to_owned()),
        (
            "payment_id".to_owned(),
            input.payment_id.as_str().to_owned(),
        ),
    ]);

    let mut price =
        CreateCheckoutSessionLineItemsPriceData::new(stripe_currency(input.amount.currency));
    price.unit_amount = Some(input.amount.amount);
    let mut product = ProductData::new("EV charging pre-authorization");
    product.description = Some(format!(
        "Card hold for charging session {session_id}; only the final cost is charged, the rest is released."
    ));
    price.product_data = Some(product);
    let mut item = CreateCheckoutSessionLineItems::new();
    item.price_data = Some(price);
    item.quantity = Some(1);

    let mut intent = CreateCheckoutSessionPaymentIntentData::new();
    intent.capture_method = Some(CreateCheckoutSessionPaymentIntentDataCaptureMethod::Manual);
    intent.metadata = Some(metadata.clone());
    intent.description = Some(format!("chargelink session {session_id}"));

    let request = CreateCheckoutSession::new();
    // The price lines go next to the pay button (`custom_text[submit][message]`, up to 1,200
    // characters): Stripe shows the product description under the line item, which is the hold,
    // not the price of charging.
    let request = match input.price_text.as_deref().filter(|t| !t.is_empty()) {
        Some(text) => {
            let mut custom = CreateCheckoutSessionCustomText::new();
            custom.submit = Some(CustomTextPositionParam::new(text));
            request.custom_text(custom)
        }
        None => request,
    };
    // Top-up: ask for incremental authorization where the card supports it. Only when asked,
    // so sessions without top-up send exactly what they sent before.
    let request = if input.incremental {
        let mut card = CreateCheckoutSessionPaymentMethodOptionsCard::new();
        card.request_incremental_authorization = Some(
            CreateCheckoutSessionPaymentMethodOptionsCardRequestIncrementalAuthorization::IfAvailable,
        );
        let mut options = CreateCheckoutSessionPaymentMethodOptions::new();
        options.card = Some(card);
        request.payment_method_options(options)
    } else {
        request
    };
    request
        .mode(CheckoutSessionMode::Payment)
        .line_items(vec![item])
        .payment_intent_data(intent)
        .client_reference_id(session_id)
        .metadata(metadata)
        .expires_at(now_unix + CHECKOUT_LIFETIME_SECS)
        .success_url(success_url(public_base_url, session_id))
        .cancel_url(cancel_url(public_base_url, session_id))
}

/// A checkout session's state, before looking at its PaymentIntent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CheckoutState {
    Open,
    Expired,
    /// Paid: the PaymentIntent tells whether the hold still stands.
    Complete {
        intent_id: String,
    },
}

pub(crate) fn checkout_state(session: &CheckoutSession) -> Result<CheckoutState, PaymentError> {
    match &session.status {
        Some(CheckoutSessionStatus::Open) => Ok(CheckoutState::Open),
        Some(CheckoutSessionStatus::Expired) => Ok(CheckoutState::Expired),
        Some(CheckoutSessionStatus::Complete) => match &session.payment_intent {
            Some(intent) => Ok(CheckoutState::Complete {
                intent_id: intent.id().as_str().to_owned(),
            }),
            None => Err(PaymentError::Unexpected(format!(
                "checkout session {} is complete but has no PaymentIntent",
                session.id.as_str()
            ))),
        },
        other => Err(PaymentError::Unexpected(format!(
            "checkout session {} has status {other:?}",
            session.id.as_str()
        ))),
    }
}

/// The payment state of a completed checkout, from its PaymentIntent. Gates on
/// `requires_capture`, not on the session's `payment_status` (which stays `unpaid` for a hold).
pub(crate) fn intent_state(intent: &PaymentIntent) -> Result<ProviderPaymentState, PaymentError> {
    match &intent.status {
        PaymentIntentStatus::RequiresCapture => Ok(ProviderPaymentState::Authorized {
            intent_id: intent.id.as_str().to_owned(),
            amount_capturable: money(intent.amount_capturable, &intent.currency)?,
        }),
        PaymentIntentStatus::Canceled => Ok(ProviderPaymentState::Canceled),
        // chargelink captures only after charging ends, so a captured intent here means someone
        // else moved money: stop rather than start charging on it.
        PaymentIntentStatus::Succeeded => Err(PaymentError::AlreadyCaptured {
            intent_id: intent.id.as_str().to_owned(),
        }),
        // Still being confirmed (3-D Secure, processing): not authorized yet.
        _ => Ok(ProviderPaymentState::Open),
    }
}

/// The integrity check after a capture: Stripe must report exactly the amount and currency
/// asked for, or money moved that chargelink did not mean to move.
pub(crate) fn captured(intent: &PaymentIntent, asked: Money) -> Result<Money, PaymentError> {
    let reported = money(intent.amount_received, &intent.currency)?;
    if intent.status != PaymentIntentStatus::Succeeded || reported != asked {
        return Err(PaymentError::Mismatch { asked, reported });
    }
    Ok(reported)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(json: &str) -> PaymentIntent {
        miniserde::json::from_str(json).unwrap()
    }

    fn pi_json(status: &str, capturable: i64, received: i64, currency: &str) -> String {
        format!(
            r#"{{"id":"pi_1","object":"payment_intent","amount":5000,"amount_capturable":{capturable},"amount_received":{received},
            "capture_method":"manual","confirmation_method":"automatic","created":1700000000,"currency":"{currency}","livemode":false,
            "metadata":{{}},"payment_method_types":["card"],"status":"{status}"}}"#
        )
    }

    #[test]
    fn return_urls_keep_stripes_template_literal() {
        let base = Url::parse("https://charge.example/app/").unwrap();
        assert_eq!(
            success_url(&base, "ses_1"),
            "https://charge.example/app/payments/ses_1/success?checkout_session_id={CHECKOUT_SESSION_ID}"
        );
        assert_eq!(
            cancel_url(&base, "ses_1"),
            "https://charge.example/app/payments/ses_1/cancel"
        );
    }

    #[test]
    fn a_held_intent_is_authorized_with_its_capturable_amount() {
        let state = intent_state(&intent(&pi_json("requires_capture", 5000, 0, "eur"))).unwrap();
        assert_eq!(
            state,
            ProviderPaymentState::Authorized {
                intent_id: "pi_1".into(),
                amount_capturable: Money::new(5000, Currency::EUR)
            }
        );
        assert_eq!(
            intent_state(&intent(&pi_json("canceled", 0, 0, "eur"))).unwrap(),
            ProviderPaymentState::Canceled
        );
        assert_eq!(
            intent_state(&intent(&pi_json("requires_action", 0, 0, "eur"))).unwrap(),
            ProviderPaymentState::Open
        );
        assert!(matches!(
            intent_state(&intent(&pi_json("succeeded", 0, 5000, "eur"))),
            Err(PaymentError::AlreadyCaptured { .. })
        ));
    }

    #[test]
    fn integrity_check_refuses_other_amounts_and_currencies() {
        let asked = Money::new(1234, Currency::EUR);
        assert_eq!(
            captured(&intent(&pi_json("succeeded", 0, 1234, "eur")), asked).unwrap(),
            asked
        );
        assert!(matches!(
            captured(&intent(&pi_json("succeeded", 0, 1200, "eur")), asked),
            Err(PaymentError::Mismatch { .. })
        ));
        assert!(matches!(
            captured(&intent(&pi_json("succeeded", 0, 1234, "usd")), asked),
            Err(PaymentError::Mismatch { .. })
        ));
    }

    #[test]
    fn currencies_round_trip_through_stripes_codes() {
        assert_eq!(stripe_currency(Currency::EUR), stripe_types::Currency::EUR);
        assert_eq!(
            money(5, &stripe_types::Currency::USD).unwrap(),
            Money::new(5, Currency::USD)
        );
        assert!(money(5, &stripe_types::Currency::Unknown("xyz".into())).is_err());
    }
}
