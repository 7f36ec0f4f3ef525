//! The hosted checkout page: plain HTML, no external assets. A form with `card_number`, an
//! element `#error` for declines, and a link back to the session's `cancel_url`.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use domain::money::{Currency, Money};
use serde::Deserialize;

use crate::server::Shared;
use crate::state::{CheckoutSession, SessionStatus};

/// `{CHECKOUT_SESSION_ID}` in a success URL is replaced by the session id, as at Stripe.
const SESSION_ID_TEMPLATE: &str = "{CHECKOUT_SESSION_ID}";

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// `50.00 EUR`, using the currency's ISO 4217 exponent.
fn amount_text(amount: i64, currency: &str) -> String {
    match currency.parse::<Currency>() {
        Ok(c) => Money::new(amount, c).to_string(),
        Err(_) => format!("{amount} {} (minor units)", currency.to_ascii_uppercase()),
    }
}

/// A `custom_text` message as Checkout shows it: one paragraph per line, in an element named
/// after its position (`#custom-text-submit`).
fn custom_text(session: &CheckoutSession, position: &str) -> String {
    let Some(message) = session.custom_text.get(position) else {
        return String::new();
    };
    let lines: String = message
        .lines()
        .map(|l| format!("<li class=\"custom-text-line\">{}</li>", escape(l)))
        .collect();
    format!(
        r#"<ul id="custom-text-{}" class="custom-text">{lines}</ul>"#,
        position.replace('_', "-")
    )
}

fn render(session: &CheckoutSession, error: Option<&str>) -> String {
    let amount = escape(&amount_text(session.amount, &session.currency));
    // Stripe shows `submit` next to the pay button and `after_submit` below it.
    let submit_text = custom_text(session, "submit");
    let after_submit = custom_text(session, "after_submit");
    let form = match session.status {
        SessionStatus::Open => format!(
            r#"<form method="post" action="/c/pay/{id}">
  <label for="card_number">Card number</label>
  <input id="card_number" name="card_number" inputmode="numeric" autocomplete="cc-number" placeholder="4242 4242 4242 4242" required>
  {submit_text}
  <button type="submit" id="pay">Pay {amount}</button>
  {after_submit}
</form>"#,
            id = escape(&session.id)
        ),
        SessionStatus::Complete => r#"<p id="status">This payment is complete.</p>"#.to_owned(),
        SessionStatus::Expired => r#"<p id="status">This payment page has expired.</p>"#.to_owned(),
    };
    let cancel = session
        .cancel_url
        .as_ref()
        .filter(|_| session.status == SessionStatus::Open)
        .map(|u| {
            format!(
                r#"<p><a id="cancel" href="{}">Cancel and return</a></p>"#,
                escape(u)
            )
        })
        .unwrap_or_default();
    let error = error.map(escape).unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Pay {amount} - Stripe sandbox</title>
<style>body{{font-family:sans-serif;max-width:28rem;margin:3rem auto}}#error{{color:#b00020;min-height:1.2em}}.custom-text{{list-style:none;padding:0;color:#444}}</style>
</head>
<body>
<h1>{product}</h1>
<p>Card hold: <strong id="amount" data-amount="{minor}" data-currency="{currency}">{amount}</strong></p>
<p id="error" role="alert">{error}</p>
{form}
{cancel}
<p><small>Stripe sandbox. Test cards: 4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is declined, 4000 0000 0000 6975 succeeds but declines incremental authorizations.</small></p>
</body>
</html>
"#,
        product = escape(&session.product_name),
        minor = session.amount,
        currency = escape(&session.currency),
    )
}

fn not_found(id: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(format!(
            "<!doctype html><p id=\"error\">No such checkout session: {}</p>",
            escape(id)
        )),
    )
        .into_response()
}

pub(crate) async fn show(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let session = shared.lock().sessions.get(&id).cloned();
    match session {
        Some(s) => Html(render(&s, None)).into_response(),
        None => not_found(&id),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct PayForm {
    #[serde(default)]
    card_number: String,
}

pub(crate) async fn submit(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Form(form): Form<PayForm>,
) -> Response {
    let result = shared.pay(&id, &form.card_number);
    let Some(session) = shared.lock().sessions.get(&id).cloned() else {
        return not_found(&id);
    };
    match result {
        Ok(_) => match &session.success_url {
            Some(url) => {
                Redirect::to(&url.replace(SESSION_ID_TEMPLATE, &session.id)).into_response()
            }
            None => Html(render(&session, None)).into_response(),
        },
        Err(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            (
                status,
                [(header::CACHE_CONTROL, "no-store")],
                Html(render(&session, Some(&e.message))),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_use_the_currency_exponent_and_html_is_escaped() {
        assert_eq!(amount_text(5000, "eur"), "50.00 EUR");
        assert_eq!(amount_text(500, "jpy"), "500 JPY");
        assert_eq!(
            escape(r#"<a href="x">&"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;"
        );
    }
}
