//! Receipts of settled sessions (EU AFIR / US NEVI ad-hoc charging): `GET /receipts/{token}`
//! (HTML, public: the random token is the capability), `GET /receipts/{token}.pdf` (the same as
//! PDF) and `GET /sessions/{id}/receipt` (JSON, with the API key).
//!
//! The token is made when the capture is recorded (`record_session`); the figures come from the
//! read model (final cost breakdown, hold, capture), the organization's operator details and
//! the station's address. The card is asked from the provider the first time a receipt is
//! shown and kept, so no workflow or activity changes for it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::ids::{OrganizationId, SessionId};
use domain::money::Money;
use domain::receipt::{Receipt, ReceiptCard, ReceiptFigures, ReceiptOperator, ReceiptStation};
use domain::session::Payment;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use tracing::Instrument;

use crate::AppState;
use crate::auth::Org;
use crate::error::ApiError;
use crate::pages::escape;

/// How receipts are served.
#[derive(Debug, Clone)]
pub struct ReceiptConfig {
    /// chargelink's public base URL (`CHARGELINK_PUBLIC_URL`), for receipts of sessions
    /// captured before receipts existed (newer ones carry their URL in the session).
    pub public_url: String,
    /// Asks the payment provider for the card; `None`: receipts show no card.
    pub cards: Option<activities::payments::CardLookup>,
}

impl Default for ReceiptConfig {
    fn default() -> Self {
        Self {
            public_url: domain::config::DEFAULT_PUBLIC_URL.to_owned(),
            cards: None,
        }
    }
}

/// The error code of a receipt asked for before the payment is captured.
pub const NOT_SETTLED: &str = "session_not_settled";

/// `GET /receipts/{token}` (HTML) and `GET /receipts/{token}.pdf` (PDF): public, no API key.
pub async fn public(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let (token, pdf) = match token.strip_suffix(".pdf") {
        Some(token) => (token, true),
        None => (token.as_str(), false),
    };
    let row = state
        .store
        .receipt_by_token(token)
        .await?
        .ok_or_else(|| ApiError::not_found("receipt"))?;
    let receipt = assemble(&state, row).await?;
    let mut response = if pdf {
        let disposition = format!("inline; filename=\"receipt-{}.pdf\"", receipt.session);
        (
            [(header::CONTENT_TYPE, "application/pdf".to_owned())],
            [(header::CONTENT_DISPOSITION, disposition)],
            render_pdf(&receipt),
        )
            .into_response()
    } else {
        Html(render_html(&receipt)).into_response()
    };
    // The URL is the capability: keep it out of Referer headers, caches and search engines.
    let headers = response.headers_mut();
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    headers.insert("x-robots-tag", HeaderValue::from_static("noindex"));
    Ok(response)
}

/// A settled session's receipt: each priced component with its VAT, totals, captured and
/// released amounts, station, operator and card. Another organization's session is 404; a
/// session whose payment is not captured (yet, or never: nothing was owed) is 409
/// `session_not_settled`.
#[utoipa::path(get, path = "/sessions/{id}/receipt", tag = "sessions", params(("id" = String, Path)),
    responses((status = 200, body = Receipt), (status = 404, body = crate::error::ErrorBody),
              (status = 409, description = "`session_not_settled`: the payment is not captured", body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn for_session(
    State(state): State<AppState>,
    Org(org): Org,
    Path(id): Path<String>,
) -> Result<Json<Receipt>, ApiError> {
    let id = crate::sessions::owned(&state, &org, &id).await?;
    let session = state
        .store
        .session(&org, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("session {id}")))?;
    if session.captured_payment().is_none() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            NOT_SETTLED,
            format!(
                "session {id} is {} and its payment is not captured, so it has no receipt; \
                 a receipt exists once the final cost is captured (session.payment.captured)",
                session.status.as_str()
            ),
        ));
    }
    // Sessions captured before receipts existed get their token now.
    let row = state.store.ensure_receipt(&org, &id, Utc::now()).await?;
    assemble(&state, row).await.map(Json)
}

/// The receipt of a stored receipt row.
async fn assemble(
    state: &AppState,
    row: store::entities::receipt::Model,
) -> Result<Receipt, ApiError> {
    let span = tracing::info_span!("receipt", session_id = %row.session_id);
    async {
        let org: OrganizationId = row.organization_id.parse().map_err(ApiError::internal)?;
        let id: SessionId = row.session_id.parse().map_err(ApiError::internal)?;
        let session = state
            .store
            .session(&org, &id)
            .await?
            .ok_or_else(|| ApiError::internal(format!("receipt of missing session {id}")))?;
        let payment = session
            .captured_payment()
            .ok_or_else(|| ApiError::internal(format!("receipt of uncaptured session {id}")))?;
        let cost = session
            .cost
            .details
            .as_ref()
            .ok_or_else(|| ApiError::internal(format!("captured session {id} has no cost")))?;
        let captured = Money::new(payment.captured_amount.unwrap_or(0), payment.currency);
        let figures = ReceiptFigures::new(cost, payment.authorized(), captured)
            .map_err(ApiError::internal)?;
        let organization = state.store.organization(&org).await?;
        let station = state
            .store
            .charge_station(session.chargestation.as_str())
            .await?;
        let card = card(state, &row, payment).await;
        let url = session.receipt_url.clone().unwrap_or_else(|| {
            domain::receipt::receipt_url(&state.config.receipts.public_url, &row.token)
        });
        let duration_seconds = match (session.started_at, session.ended_at) {
            (Some(start), Some(end)) => (end - start).num_seconds().max(0),
            _ => cost.charging_seconds + cost.parking_seconds,
        };
        Ok(Receipt {
            session: id.to_string(),
            pdf_url: format!("{url}.pdf"),
            url,
            issued_at: row.created_at,
            operator: ReceiptOperator {
                name: organization
                    .operator_name
                    .clone()
                    .unwrap_or(organization.name),
                tax_id: organization.tax_id,
                address: organization.operator_address,
            },
            station: ReceiptStation {
                id: session.chargestation.to_string(),
                name: station
                    .as_ref()
                    .map_or_else(|| session.chargestation.to_string(), |s| s.name.clone()),
                address: station.and_then(|s| s.address),
                connector: session.connector.to_string(),
            },
            started_at: session.started_at,
            ended_at: session.ended_at,
            energy_wh: cost.energy_wh,
            duration_seconds,
            charging_seconds: cost.charging_seconds,
            parking_seconds: cost.parking_seconds,
            figures,
            card,
        })
    }
    .instrument(span)
    .await
}

/// The card, as stored, else asked from the provider once and stored. A provider that cannot
/// answer now leaves the receipt without a card; the next view asks again.
async fn card(
    state: &AppState,
    row: &store::entities::receipt::Model,
    payment: &Payment,
) -> Option<ReceiptCard> {
    if let (Some(brand), Some(last4)) = (&row.card_brand, &row.card_last4) {
        return Some(ReceiptCard {
            brand: brand.clone(),
            last4: last4.clone(),
        });
    }
    let cards = state.config.receipts.cards.as_ref()?;
    let intent = payment.stripe.intent_id.as_deref()?;
    match cards.card(intent).await {
        Ok(Some(card)) => {
            let session: Result<SessionId, _> = row.session_id.parse();
            if let Ok(session) = session
                && let Err(e) = state
                    .store
                    .set_receipt_card(&session, &card.brand, &card.last4)
                    .await
            {
                tracing::warn!(error = %e, "could not store the receipt's card; asked again next time");
            }
            Some(ReceiptCard {
                brand: card.brand,
                last4: card.last4,
            })
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(payment_intent_id = intent, error = %e, "could not ask the provider for the card; the receipt shows none for now");
            None
        }
    }
}

/// `1234` minor units as `12.34 USD`.
fn money(receipt: &Receipt, minor: i64) -> String {
    Money::new(minor, receipt.figures.currency).to_string()
}

/// Wh as kWh with three decimals.
fn kwh(wh: i64) -> String {
    let sign = if wh < 0 { "-" } else { "" };
    let wh = wh.unsigned_abs();
    format!("{sign}{}.{:03} kWh", wh / 1000, wh % 1000)
}

/// Seconds as `h:mm:ss`.
fn hms(seconds: i64) -> String {
    let s = seconds.max(0);
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn time(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(
        || "-".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// `visa •••• 4242`.
fn card_text(card: &ReceiptCard) -> String {
    format!(
        "{} \u{2022}\u{2022}\u{2022}\u{2022} {}",
        card.brand, card.last4
    )
}

/// What both forms print, in order: (label, value, html id).
fn facts(r: &Receipt) -> Vec<(&'static str, String, &'static str)> {
    let mut facts = vec![
        ("Operator", r.operator.name.clone(), "operator"),
        (
            "Operator address",
            r.operator.address.clone().unwrap_or_else(|| "-".into()),
            "operator-address",
        ),
        (
            "Tax id",
            r.operator.tax_id.clone().unwrap_or_else(|| "-".into()),
            "tax-id",
        ),
        (
            "Charge station",
            format!("{} ({})", r.station.name, r.station.id),
            "station",
        ),
        (
            "Station address",
            r.station.address.clone().unwrap_or_else(|| "-".into()),
            "station-address",
        ),
        ("Connector", r.station.connector.clone(), "connector"),
        ("Session", r.session.clone(), "session"),
        ("Started", time(r.started_at), "started"),
        ("Ended", time(r.ended_at), "ended"),
        ("Energy", kwh(r.energy_wh), "energy"),
        ("Duration", hms(r.duration_seconds), "duration"),
        ("Charging time", hms(r.charging_seconds), "charging-time"),
        ("Parking time", hms(r.parking_seconds), "parking-time"),
    ];
    facts.push((
        "Paid with",
        r.card
            .as_ref()
            .map_or_else(|| "card (details unavailable)".into(), card_text),
        "card",
    ));
    facts
}

/// (label, amount, html id) of the totals and the payment.
fn totals(r: &Receipt) -> [(&'static str, String, &'static str); 6] {
    [
        (
            "Total excl. VAT",
            money(r, r.figures.total_excl_vat),
            "total-excl",
        ),
        ("VAT", money(r, r.figures.total_vat), "total-vat"),
        (
            "Total incl. VAT",
            money(r, r.figures.total_incl_vat),
            "total-incl",
        ),
        ("Card hold", money(r, r.figures.authorized), "authorized"),
        ("Captured", money(r, r.figures.captured), "captured"),
        ("Released", money(r, r.figures.released), "released"),
    ]
}

/// A line's quantity as people read it: kWh to the Wh, times as `h:mm:ss`, the exact value
/// (kept in the JSON form) otherwise.
fn quantity(line: &domain::receipt::ReceiptLine) -> String {
    use domain::rate::Dimension;
    let Some(q) = line.quantity.as_deref() else {
        return String::new();
    };
    let exact: Option<Decimal> = q.parse().ok();
    match (line.dimension, exact) {
        (Some(Dimension::Energy), Some(kwh)) => format!("{} kWh", kwh.round_dp(3).normalize()),
        (Some(Dimension::Time | Dimension::ParkingTime), Some(hours)) => {
            let seconds = (hours * Decimal::from(3600))
                .round()
                .to_i64()
                .unwrap_or_default();
            hms(seconds)
        }
        _ => format!("{q} {}", line.unit).trim().to_owned(),
    }
}

/// Unit price with at least two decimals (`0.30 USD/kWh`).
fn unit_price(r: &Receipt, line: &domain::receipt::ReceiptLine) -> String {
    line.unit_price.as_ref().map_or_else(String::new, |p| {
        let per = if line.unit.is_empty() {
            String::new()
        } else {
            format!("/{}", line.unit)
        };
        let shown = match p.parse::<Decimal>() {
            Ok(mut d) => {
                d = d.normalize();
                if d.scale() < 2 {
                    d.rescale(2);
                }
                d.to_string()
            }
            Err(_) => p.clone(),
        };
        format!("{shown} {}{per}", r.figures.currency)
    })
}

/// The HTML receipt: self-contained (no external assets), printable.
pub fn render_html(r: &Receipt) -> String {
    let mut facts_html = String::new();
    for (label, value, id) in facts(r) {
        facts_html.push_str(&format!(
            "<tr><th>{label}</th><td id=\"{id}\">{}</td></tr>",
            escape(&value)
        ));
    }
    let mut lines_html = String::new();
    for (i, l) in r.figures.lines.iter().enumerate() {
        lines_html.push_str(&format!(
            "<tr class=\"line\" id=\"line-{i}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{} %</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&l.description),
            escape(&quantity(l)),
            escape(&unit_price(r, l)),
            escape(&l.vat_percent),
            escape(&money(r, l.excl_vat)),
            escape(&money(r, l.vat)),
            escape(&money(r, l.incl_vat)),
        ));
    }
    let mut totals_html = String::new();
    for (label, value, id) in totals(r) {
        totals_html.push_str(&format!(
            "<tr><th>{label}</th><td class=\"n\" id=\"{id}\">{}</td></tr>",
            escape(&value)
        ));
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><meta name=\"robots\" content=\"noindex\">\
         <title>Receipt {session}</title><style>\
         body{{font-family:sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}}\
         table{{border-collapse:collapse;width:100%;margin:1rem 0}}th,td{{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #ddd}}\
         .n{{text-align:right;white-space:nowrap}}</style></head><body>\
         <h1>Charging receipt</h1><p>Issued {issued}</p>\
         <table id=\"facts\">{facts_html}</table>\
         <table id=\"lines\"><thead><tr><th>Item</th><th>Quantity</th><th>Unit price</th><th class=\"n\">VAT rate</th>\
         <th class=\"n\">Excl. VAT</th><th class=\"n\">VAT</th><th class=\"n\">Incl. VAT</th></tr></thead><tbody>{lines_html}</tbody></table>\
         <table id=\"totals\">{totals_html}</table>\
         <p><a id=\"pdf\" href=\"{pdf}\">Download as PDF</a></p></body></html>",
        session = escape(&r.session),
        issued = escape(&time(Some(r.issued_at))),
        pdf = escape(&r.pdf_url),
    )
}

/// Text in the PDF's WinAnsiEncoding (the standard Helvetica's); characters it lacks become
/// `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            '\u{2022}' => 0x95,
            '\u{20ac}' => 0x80,
            '\u{2013}' => 0x96,
            '\u{2014}' => 0x97,
            c if (' '..='~').contains(&c) => c as u8,
            c if ('\u{a0}'..='\u{ff}').contains(&c) => u8::try_from(u32::from(c)).unwrap_or(b'?'),
            _ => b'?',
        })
        .collect()
}

/// A4 in points.
const PAGE: (f32, f32) = (595.0, 842.0);

/// The PDF receipt: one A4 page, the standard Helvetica (no font embedded), the same figures
/// as the HTML form.
pub fn render_pdf(r: &Receipt) -> Vec<u8> {
    use pdf_writer::{Content, Name, Pdf, Rect, Ref, Str, TextStr};

    let (catalog, tree, page, font, bold, contents, info) = (
        Ref::new(1),
        Ref::new(2),
        Ref::new(3),
        Ref::new(4),
        Ref::new(5),
        Ref::new(6),
        Ref::new(7),
    );
    let (regular_name, bold_name) = (Name(b"F1"), Name(b"F2"));
    let mut text = Content::new();
    let mut y = PAGE.1 - 60.0;
    let mut put = |x: f32, y: f32, size: f32, strong: bool, s: &str| {
        text.begin_text();
        text.set_font(if strong { bold_name } else { regular_name }, size);
        text.next_line(x, y);
        text.show(Str(&win_ansi(s)));
        text.end_text();
    };
    put(50.0, y, 18.0, true, "Charging receipt");
    y -= 18.0;
    put(
        50.0,
        y,
        9.0,
        false,
        &format!("Issued {}", time(Some(r.issued_at))),
    );
    y -= 24.0;
    for (label, value, _) in facts(r) {
        put(50.0, y, 10.0, true, label);
        put(170.0, y, 10.0, false, &value);
        y -= 14.0;
    }
    y -= 12.0;
    let columns = [50.0, 160.0, 240.0, 330.0, 375.0, 440.0, 505.0];
    let header = [
        "Item",
        "Quantity",
        "Unit price",
        "VAT rate",
        "Excl. VAT",
        "VAT",
        "Incl. VAT",
    ];
    for (x, h) in columns.iter().zip(header) {
        put(*x, y, 9.0, true, h);
    }
    y -= 14.0;
    for l in &r.figures.lines {
        let cells = [
            l.description.clone(),
            quantity(l),
            unit_price(r, l),
            format!("{} %", l.vat_percent),
            money(r, l.excl_vat),
            money(r, l.vat),
            money(r, l.incl_vat),
        ];
        for (x, cell) in columns.iter().zip(&cells) {
            put(*x, y, 8.0, false, cell);
        }
        y -= 13.0;
    }
    y -= 12.0;
    for (label, value, _) in totals(r) {
        put(330.0, y, 10.0, true, label);
        put(440.0, y, 10.0, false, &value);
        y -= 14.0;
    }

    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids([page]).count(1);
    let mut p = pdf.page(page);
    p.parent(tree)
        .media_box(Rect::new(0.0, 0.0, PAGE.0, PAGE.1))
        .contents(contents);
    p.resources()
        .fonts()
        .pair(regular_name, font)
        .pair(bold_name, bold);
    drop(p);
    for (id, base) in [(font, Name(b"Helvetica")), (bold, Name(b"Helvetica-Bold"))] {
        pdf.type1_font(id)
            .base_font(base)
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    let stream = text.finish();
    pdf.stream(contents, &stream);
    pdf.document_info(info)
        .title(TextStr(&format!("Charging receipt {}", r.session)))
        .producer(TextStr("chargelink"));
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_outside_win_ansi_becomes_a_question_mark() {
        assert_eq!(
            win_ansi("visa \u{2022}4 \u{20ac}1 é 日"),
            b"visa \x954 \x801 \xe9 ?"
        );
    }

    use domain::money::Currency;

    fn sample() -> Receipt {
        let usd = Currency::USD;
        let cost = domain::pricing::CostSummary {
            amount: Money::new(2640, usd),
            energy_wh: 80_000,
            charging_seconds: 3600,
            parking_seconds: 0,
            breakdown: vec![domain::pricing::CostComponent {
                dimension: domain::rate::Dimension::Energy,
                quantity: Decimal::from(80),
                unit_price: Decimal::new(30, 2),
                tax: Decimal::from(10),
                before_tax: Decimal::from(24),
                total: Decimal::new(264, 1),
            }],
            amount_excl_vat: Some(Money::new(2400, usd)),
        };
        let figures =
            ReceiptFigures::new(&cost, Money::new(1800, usd), Money::new(1800, usd)).unwrap();
        Receipt {
            session: "ses_1".into(),
            url: "http://x/receipts/rct_1".into(),
            pdf_url: "http://x/receipts/rct_1.pdf".into(),
            issued_at: Utc::now(),
            operator: ReceiptOperator {
                name: "Op".into(),
                tax_id: None,
                address: Some("Street 1".into()),
            },
            station: ReceiptStation {
                id: "CP-1".into(),
                name: "one".into(),
                address: None,
                connector: "con_1".into(),
            },
            started_at: None,
            ended_at: Some(Utc::now()),
            energy_wh: 80_000,
            duration_seconds: 3600,
            charging_seconds: 3600,
            parking_seconds: 0,
            figures,
            card: Some(ReceiptCard {
                brand: "visa".into(),
                last4: "4242".into(),
            }),
        }
    }

    /// Property names and required names of an OpenAPI schema, following `allOf` and `$ref`.
    fn documented(
        doc: &serde_json::Value,
        schema: &serde_json::Value,
    ) -> (
        std::collections::BTreeSet<String>,
        std::collections::BTreeSet<String>,
    ) {
        let mut names = std::collections::BTreeSet::new();
        let mut required = std::collections::BTreeSet::new();
        if let Some(r) = schema["$ref"].as_str() {
            let name = r.trim_start_matches("#/components/schemas/");
            return documented(doc, &doc["components"]["schemas"][name]);
        }
        for part in schema["allOf"].as_array().into_iter().flatten() {
            let (n, r) = documented(doc, part);
            names.extend(n);
            required.extend(r);
        }
        if let Some(props) = schema["properties"].as_object() {
            names.extend(props.keys().cloned());
        }
        for r in schema["required"].as_array().into_iter().flatten() {
            required.extend(r.as_str().map(str::to_owned));
        }
        (names, required)
    }

    /// The JSON form answers exactly the fields /openapi.json documents (schemathesis only sees
    /// 404s for random ids), and what it requires is there.
    #[test]
    fn the_json_receipt_matches_its_documented_schema() {
        let doc = serde_json::to_value(crate::openapi()).unwrap();
        let answer = serde_json::to_value(sample()).unwrap();
        let keys: std::collections::BTreeSet<String> =
            answer.as_object().unwrap().keys().cloned().collect();
        let (names, required) = documented(&doc, &doc["components"]["schemas"]["Receipt"]);
        assert_eq!(keys, names);
        assert!(required.is_subset(&keys), "{required:?}");
        assert!(required.contains("total_incl_vat") && required.contains("lines"));
        let line = answer["lines"][0].as_object().unwrap();
        let (names, _) = documented(&doc, &doc["components"]["schemas"]["ReceiptLine"]);
        assert_eq!(
            line.keys()
                .cloned()
                .collect::<std::collections::BTreeSet<_>>(),
            names
        );
        assert_eq!(answer["currency"], "usd");
        let path = &doc["paths"]["/sessions/{id}/receipt"]["get"]["responses"];
        assert!(path["409"].is_object() && path["404"].is_object(), "{path}");
    }

    #[test]
    fn both_forms_show_the_figures_and_the_card() {
        let r = sample();
        let html = render_html(&r);
        for shown in [
            "<td class=\"n\" id=\"total-incl\">18.00 USD</td>",
            "<td class=\"n\" id=\"released\">0.00 USD</td>",
            "<td id=\"energy\">80.000 kWh</td>",
            "visa \u{2022}\u{2022}\u{2022}\u{2022} 4242",
            "Not charged: above the card hold",
        ] {
            assert!(html.contains(shown), "{shown} in {html}");
        }
        let pdf = render_pdf(&r);
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.starts_with("%PDF-") && text.trim_end().ends_with("%%EOF"));
        // Text with bytes above ASCII (the WinAnsi bullets, 0x95) is written as a hex string;
        // poppler's reading of it is checked end to end (cli/tests/e2e.rs).
        let card = format!(
            "<{}>",
            hex::encode_upper(win_ansi("visa \u{2022}\u{2022}\u{2022}\u{2022} 4242"))
        );
        for shown in ["(18.00 USD)", card.as_str(), "/MediaBox [0 0 595 842]"] {
            assert!(text.contains(shown), "{shown} in the PDF");
        }
    }

    #[test]
    fn energy_and_durations_read_as_people_write_them() {
        assert_eq!(kwh(12_345), "12.345 kWh");
        assert_eq!(kwh(5), "0.005 kWh");
        assert_eq!(hms(3_725), "1:02:05");
    }
}
