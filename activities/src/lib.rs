//! Activity implementations: how chargelink talks to the world. Workflows see these only as the
//! contracts in `workflows::contracts`; each implementation binds to its contract with
//! `#[activity(definition = ..)]`, so names, inputs and outputs are checked at compile time.
//!
//! # Layout
//! - [`payments`]: Stripe Checkout with a manual-capture card hold ([`payments::PaymentActivities`],
//!   [`payments::StripeSettings`]).
//!   - `payments/mod.rs`: the activities and settings.
//!   - `payments/client.rs`: a thin async-stripe wrapper; every state-changing call carries the
//!     step's idempotency key; Stripe errors are classified retryable or not.
//!   - `payments/transformers.rs`: chargelink types <-> Stripe types (requests, statuses, money),
//!     and the integrity check after capture.
//! - [`store`]: `record_session`, the read model and the outbox in one transaction.
//! - [`webhooks`]: delivers the outbox to the customers' endpoints, signed, in order per session,
//!   at least once, with backoff; disables endpoints that keep failing. Runs beside the worker,
//!   never inside a workflow, so a slow endpoint never delays a session.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod payments;
pub mod store;
pub mod webhooks;
