//! Charge stations: OCPP identity, hashed Basic-auth key, and which gateway holds the socket.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "charge_stations")]
pub struct Model {
    /// The OCPP identity (last path segment of the station's URL).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(indexed)]
    pub organization_id: String,
    pub name: String,
    /// Salted SHA-256 of the station's AuthorizationKey.
    pub auth_key_hash: String,
    pub auth_key_salt: String,
    /// The OCPP security profile the station must connect with (1, 2 or 3, see
    /// [`domain::station::SecurityProfile`]); 1 for stations made before profiles existed.
    #[sea_orm(default_value = 1)]
    pub security_profile: i32,
    /// Task queue of the gateway holding the connection; `None` when offline. Kept by the
    /// station registry (`station_connections` is the source).
    pub gateway_queue: Option<String>,
    /// When the station last connected or disconnected, or its gateway last renewed its lease
    /// (see [`crate::stations::GATEWAY_LEASE`]).
    pub last_seen_at: Option<DateTimeUtc>,
    /// Postal address, shown on receipts.
    pub address: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The station's security profile; an unknown number (a row written by a newer release)
    /// counts as the strictest, so it is never weakened.
    pub fn security_profile(&self) -> domain::station::SecurityProfile {
        domain::station::SecurityProfile::from_number(self.security_profile.into())
            .unwrap_or(domain::station::SecurityProfile::TlsClientCertificate)
    }

    /// Whether the station is connected to a gateway that is alive at `now`: a gateway killed
    /// outright never says its stations went away, so its lease running out says it instead.
    pub fn is_online(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        self.gateway_queue.is_some()
            && self.last_seen_at.is_some_and(|seen| {
                now.signed_duration_since(seen)
                    .to_std()
                    .map_or(true, |age| age <= crate::stations::GATEWAY_LEASE)
            })
    }
}
