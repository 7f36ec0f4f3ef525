//! Task queues.

/// Session workflows and their payment / store / webhook activities.
pub const SESSIONS: &str = "chargelink-sessions";

/// The task queue of one gateway instance: charger commands run where the station's socket is.
pub fn gateway(instance: &str) -> String {
    format!("chargelink-gateway-{instance}")
}
