//! placeholder
pub mod payments;
