//! Test support: a real Temporal dev server started once per test binary, recording activity
//! implementations for workflow tests, and session fixtures.
//!
//! # Layout
//! - [`audit`]: the money audit of a run, from the Stripe sandbox's ledger and the store.
//! - [`baseline`]: the fleet benchmark's bare workflow with a session's shape.
//! - [`browser`]: pays on a hosted payment page in a real headless chromium, reads a receipt.
//! - [`devserver`]: starts `temporal server start-dev` from `.tools/bin` (or `$TEMPORAL_CLI`).
//! - [`recording`]: activity implementations that record every call to a journal file and play
//!   a configurable station / payment provider.
//! - [`fixtures`]: session inputs, rates and fast timings.
//! - [`harness`]: the tokio runtime, recording worker and trial runner of each test binary.
//! - [`grpc_client`]: the gRPC `SessionService` from tests (API key metadata, `Watch` read in a
//!   task).
//! - [`pki`]: a CA and its server and client certificates, made at test time (mutual TLS).
//! - [`poppler`]: renders a PDF to an image and reads its text (`pdftoppm`, `pdftotext`).
//! - [`processes`]: the stack as real `chargelink` processes (kill, restart, logs), seeded
//!   through the admin REST API.
//! - [`stack`]: the stack for end-to-end tests (dev server, store, worker with the real payment
//!   and store activities, API with the Stripe webhook receiver, Stripe sandbox).

pub mod audit;
pub mod baseline;
pub mod browser;
pub mod devserver;
pub mod fixtures;
pub mod grpc_client;
pub mod harness;
pub mod pki;
pub mod poppler;
pub mod processes;
pub mod recording;
pub mod stack;
