//! The durable session workflow and the activity contracts it calls.
//!
//! # Layout
//! - [`session`]: `SessionWorkflow`, one workflow per payment-link session (workflow id = session id).
//! - [`contracts`]: activity contracts (name, input, output); implementations live in other crates.
//! - [`messages`]: signal, update and result payloads.
//! - [`names`]: every pinned name (workflow, activities, signals, updates, search attributes).
//! - [`options`]: timeouts and retry policies per kind of activity.
//! - [`queues`]: task queues.
//!
//! # Determinism rules (workflow code only)
//! - No I/O, clock, randomness, threads or globals: use `ctx.workflow_time()`, `ctx.timer()`,
//!   `temporalio_sdk::workflows::select!` (biased, declaration order). Never `tokio::select!`,
//!   `tokio::spawn`, `tokio::time::sleep`, `Utc::now()` or `Uuid::new_v4()`; `clippy.toml` in this
//!   crate enforces it.
//! - `BTreeMap`, never `HashMap`, in workflow state.
//! - Names in [`names`] never change once deployed. A change to the command sequence of a running
//!   session goes behind `ctx.patched(..)`, and the replay tests (recorded histories in
//!   `tests/histories`) fail until it does.

pub mod client;
pub mod contracts;
pub mod messages;
pub mod names;
pub mod options;
pub mod queues;
pub mod session;

pub use session::{SessionInput, SessionWorkflow, TopUp};
