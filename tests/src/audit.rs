//! The money audit that ends a load or fault run: counted from the Stripe sandbox's ledger (its
//! request log and its PaymentIntents and Checkout Sessions) and from the store's sessions,
//! never from what the code under test reports about itself.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::processes::ProcessStack;

/// Whether a session (as stored) has reached its end: no longer charging, its payment captured,
/// released, expired or never taken.
pub fn settled(s: &Value) -> bool {
    matches!(s["status"].as_str(), Some("ended" | "canceled" | "expired"))
        && !matches!(
            s["payment"]["status"].as_str(),
            Some("created" | "authorized")
        )
}

/// The money audit of a run. Every count but `sessions` and `terminal` must be 0.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MoneyAudit {
    /// Sessions audited.
    pub sessions: usize,
    /// Of those, settled.
    pub terminal: usize,
    /// Holds authorized at the provider and neither captured nor released.
    pub stranded: usize,
    /// Payment pages still payable after their session ended.
    pub open_pages: usize,
    /// Intents with more than one successful capture or cancel (or both).
    pub double_moves: usize,
    /// Paid sessions with neither a capture nor a cancel.
    pub no_move: usize,
    /// Captures above what was authorized.
    pub captured_over_hold: usize,
    /// Captures that differ from the session's final cost.
    pub captured_not_cost: usize,
    /// Sessions priced above their hold (the station overran).
    pub priced_over_hold: usize,
}

impl MoneyAudit {
    /// No money out of place and every session settled.
    pub fn clean(&self) -> bool {
        self.terminal == self.sessions
            && self.stranded == 0
            && self.open_pages == 0
            && self.double_moves == 0
            && self.no_move == 0
            && self.captured_over_hold == 0
            && self.captured_not_cost == 0
            && self.priced_over_hold == 0
    }

    /// The audit as a Markdown table.
    pub fn table(&self) -> String {
        let rows = [
            (
                "sessions terminal".to_owned(),
                format!("{} of {}", self.terminal, self.sessions),
                "100 %",
            ),
            (
                "stranded holds (authorized, neither captured nor released)".into(),
                self.stranded.to_string(),
                "0",
            ),
            (
                "payment pages still payable after the session ended".into(),
                self.open_pages.to_string(),
                "0",
            ),
            (
                "double captures (or capture and cancel) of one hold".into(),
                self.double_moves.to_string(),
                "0",
            ),
            (
                "paid sessions neither captured nor released".into(),
                self.no_move.to_string(),
                "0",
            ),
            (
                "captured > authorized".into(),
                self.captured_over_hold.to_string(),
                "0",
            ),
            (
                "captured != final cost".into(),
                self.captured_not_cost.to_string(),
                "0",
            ),
            (
                "priced cost above the hold (station overran)".into(),
                self.priced_over_hold.to_string(),
                "0",
            ),
        ];
        let mut out = String::from("| check | count | must be |\n|---|---:|---:|\n");
        for (check, count, target) in rows {
            out.push_str(&format!("| {check} | {count} | {target} |\n"));
        }
        out
    }
}

/// Successful, non-replayed captures (their amounts) and cancels per PaymentIntent, from the
/// sandbox's request log.
async fn money_moves(stack: &ProcessStack) -> anyhow::Result<BTreeMap<String, (Vec<i64>, usize)>> {
    let mut moves: BTreeMap<String, (Vec<i64>, usize)> = BTreeMap::new();
    for r in stack.stripe_requests().await? {
        if r["status"] != 200 || r["replayed"] != false {
            continue;
        }
        let path = r["path"].as_str().unwrap_or_default();
        let Some(rest) = path.strip_prefix("/v1/payment_intents/") else {
            continue;
        };
        if let Some(intent) = rest.strip_suffix("/capture") {
            let amount = r["params"]["amount_to_capture"]
                .as_str()
                .and_then(|a| a.parse().ok())
                .unwrap_or(-1);
            moves.entry(intent.to_owned()).or_default().0.push(amount);
        } else if let Some(intent) = rest.strip_suffix("/cancel") {
            moves.entry(intent.to_owned()).or_default().1 += 1;
        }
    }
    Ok(moves)
}

/// `GET /v1/<path>` at the sandbox, as the provider's own view.
async fn provider(stack: &ProcessStack, path: &str) -> anyhow::Result<Value> {
    Ok(stack
        .http
        .get(format!("{}/v1/{path}", stack.sandbox))
        .bearer_auth(crate::processes::STRIPE_SECRET_KEY)
        .send()
        .await?
        .json()
        .await?)
}

/// Audits `sessions` (as the store has them at the end of a run) against the sandbox.
pub async fn audit_money(stack: &ProcessStack, sessions: &[Value]) -> anyhow::Result<MoneyAudit> {
    let moves = money_moves(stack).await?;
    let mut a = MoneyAudit {
        sessions: sessions.len(),
        ..MoneyAudit::default()
    };
    for s in sessions {
        let ended = settled(s);
        if ended {
            a.terminal += 1;
        }
        let priced = s["cost"]["details"]["amount"]["amount"]
            .as_i64()
            .unwrap_or(0);
        let hold = s["payment"]["authorized_amount"].as_i64().unwrap_or(0);
        if priced > hold && s["payment"]["stripe"]["intent_id"].is_string() {
            a.priced_over_hold += 1;
        }
        let Some(intent) = s["payment"]["stripe"]["intent_id"].as_str() else {
            // Never paid: the page must not take a hold after the session ended.
            if ended && let Some(checkout) = s["payment"]["stripe"]["checkout_session_id"].as_str()
            {
                let page = provider(stack, &format!("checkout/sessions/{checkout}")).await?;
                if page["status"] == "open" {
                    a.open_pages += 1;
                }
            }
            continue;
        };
        let at_provider = provider(stack, &format!("payment_intents/{intent}")).await?;
        if at_provider["status"] == "requires_capture" {
            a.stranded += 1;
        }
        let (captures, cancels) = moves.get(intent).cloned().unwrap_or_default();
        match captures.len() + cancels {
            0 => a.no_move += 1,
            1 => {}
            _ => a.double_moves += 1,
        }
        let authorized = at_provider["amount"].as_i64().unwrap_or(0);
        if captures.iter().any(|&c| c > authorized) {
            a.captured_over_hold += 1;
        }
        let cost = s["cost"]["amount"].as_i64().unwrap_or(0);
        let right = if cost > 0 {
            captures == [cost]
        } else {
            captures.is_empty()
        };
        if !right {
            a.captured_not_cost += 1;
        }
    }
    Ok(a)
}
