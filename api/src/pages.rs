//! Driver-facing payment return pages (plain HTML, no external assets). The random session id in
//! the URL is the capability; nothing private is shown.

use axum::extract::{Path, State};
use axum::response::Html;
use domain::ids::SessionId;
use domain::session::{PaymentStatus, SessionStatus};
use workflows::messages::PaymentClosed;

use crate::AppState;

pub(crate) fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title}</title><style>body{{font-family:sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}</style>\
         </head><body><h1>{title}</h1>{body}</body></html>"
    ))
}

/// `s` safe inside HTML text and attribute values.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Where Stripe sends the driver after paying.
pub async fn success(State(state): State<AppState>, Path(id): Path<String>) -> Html<String> {
    let Ok(id) = id.parse::<SessionId>() else {
        return page("Unknown session", "<p>This link is not valid.</p>");
    };
    match state.store.session_by_id(&id).await {
        Ok(Some(s)) => {
            let paid = s
                .payment
                .as_ref()
                .is_some_and(|p| p.status != PaymentStatus::Created);
            let line = match (s.status, paid) {
                (SessionStatus::Started, _) => "Charging has started.".to_owned(),
                (SessionStatus::Created, true) => {
                    "Payment received. Plug in your vehicle: charging starts in a moment."
                        .to_owned()
                }
                (SessionStatus::Created, false) => {
                    "We are confirming your payment. This page shows the result in a moment."
                        .to_owned()
                }
                (other, _) => format!("This session is {}.", other.as_str()),
            };
            // Once the final cost is captured, the driver's receipt (an unguessable URL).
            let receipt = s
                .receipt_url
                .as_deref()
                .filter(|_| s.captured_payment().is_some())
                .map(|url| {
                    format!(
                        "<p><a id=\"receipt\" href=\"{0}\">Your receipt</a> (<a id=\"receipt-pdf\" href=\"{0}.pdf\">PDF</a>)</p>",
                        escape(url)
                    )
                })
                .unwrap_or_default();
            page(
                "Thank you",
                &format!(
                    "<p id=\"state\" data-status=\"{}\">{}</p><p>Session <code>{}</code></p>{receipt}",
                    s.status.as_str(),
                    escape(&line),
                    escape(id.as_str())
                ),
            )
        }
        _ => page("Unknown session", "<p>This link is not valid.</p>"),
    }
}

/// Where Stripe sends the driver who pressed "back" / cancel: the session is cancelled.
pub async fn cancel(State(state): State<AppState>, Path(id): Path<String>) -> Html<String> {
    let Ok(id) = id.parse::<SessionId>() else {
        return page("Unknown session", "<p>This link is not valid.</p>");
    };
    match state.store.session_by_id(&id).await {
        Ok(Some(s)) if s.status == SessionStatus::Created => {
            let signal = state
                .sessions
                .payment_canceled(
                    &id,
                    PaymentClosed {
                        reason: "driver cancelled on the payment page".into(),
                    },
                )
                .await;
            if let Err(e) = signal {
                tracing::warn!(session_id = %id, error = %e, "could not signal the driver's cancel");
            }
            page(
                "Payment cancelled",
                "<p id=\"state\" data-status=\"canceled\">No money was taken. You can close this page.</p>",
            )
        }
        Ok(Some(s)) => page(
            "Payment",
            &format!(
                "<p id=\"state\" data-status=\"{0}\">This session is {0}.</p>",
                s.status.as_str()
            ),
        ),
        _ => page("Unknown session", "<p>This link is not valid.</p>"),
    }
}
