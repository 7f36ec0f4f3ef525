//! The card a driver paid with, for receipts: Stripe reports it on the PaymentIntent's latest
//! charge, `payment_method_details.card.{brand,last4}`. Read-only, asked when a receipt is
//! first shown (not by a workflow: nothing to replay, no activity to add).

use serde::Deserialize;

use super::client::StripeClient;
use super::{PaymentError, StripeSettings};

/// Stripe's API when no base is configured.
const STRIPE_API: &str = "https://api.stripe.com/";

/// A card as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    /// Brand as Stripe names it: `visa`, `mastercard`, `amex`, ...
    pub brand: String,
    /// Last four digits.
    pub last4: String,
}

/// Looks up the card behind a PaymentIntent.
#[derive(Clone)]
pub struct CardLookup {
    stripe: StripeClient,
    http: reqwest::Client,
    base: String,
    secret_key: String,
}

impl std::fmt::Debug for CardLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("CardLookup")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Charge {
    payment_method_details: Option<Details>,
}

#[derive(Deserialize)]
struct Details {
    card: Option<CardJson>,
}

#[derive(Deserialize)]
struct CardJson {
    brand: Option<String>,
    last4: Option<String>,
}

impl CardLookup {
    /// A lookup with the payment settings' key and API base.
    pub fn new(settings: &StripeSettings) -> Result<Self, PaymentError> {
        let base = settings
            .api_base
            .as_ref()
            .map_or(STRIPE_API.to_owned(), |b| b.to_string());
        Ok(Self {
            stripe: StripeClient::new(settings.client()?),
            http: reqwest::Client::builder()
                .timeout(settings.request_timeout)
                .build()
                .map_err(|e| PaymentError::Config(e.to_string()))?,
            base: format!("{}/", base.trim_end_matches('/')),
            secret_key: settings.secret_key.clone(),
        })
    }

    /// The card of PaymentIntent `intent_id`; `None` when it has no card charge (yet).
    pub async fn card(&self, intent_id: &str) -> Result<Option<Card>, PaymentError> {
        let intent = self.stripe.retrieve_intent(intent_id).await?;
        let Some(charge) = intent.latest_charge else {
            return Ok(None);
        };
        // async-stripe's Charge type requires dozens of fields we never read; the two we need
        // are taken from Stripe's JSON directly.
        let url = format!("{}v1/charges/{}", self.base, charge.id().as_str());
        let unexpected = |e: reqwest::Error| PaymentError::Unexpected(format!("GET {url}: {e}"));
        let answer = self
            .http
            .get(&url)
            .bearer_auth(&self.secret_key)
            .send()
            .await
            .map_err(unexpected)?
            .error_for_status()
            .map_err(unexpected)?;
        let charge: Charge = answer.json().await.map_err(unexpected)?;
        let card = charge
            .payment_method_details
            .and_then(|d| d.card)
            .and_then(|c| {
                Some(Card {
                    brand: c.brand?,
                    last4: c.last4?,
                })
            });
        Ok(card)
    }
}
