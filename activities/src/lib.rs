//! Activity implementations of the session workflow's contracts, and the customer webhook
//! dispatcher.
//!
//! # Layout
//! - [`store`]: `record_session`, the read model and the outbox in one transaction.
//! - [`webhooks`]: delivers the outbox to the customers' endpoints, signed, in order per session,
//!   at least once, with backoff; disables endpoints that keep failing. Runs beside the worker,
//!   never inside a workflow, so a slow endpoint never delays a session.

pub mod store;
pub mod webhooks;
