//! The customer's webhook endpoints.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(indexed)]
    pub organization_id: String,
    pub url: String,
    /// HMAC-SHA256 signing secret (`whsec_…`).
    pub secret: String,
    /// Subscribed event types (JSON array of names); empty = all.
    pub events: Json,
    pub enabled: bool,
    /// Why the endpoint was disabled (after sustained failures).
    pub disabled_reason: Option<String>,
    /// Consecutive failed deliveries.
    pub consecutive_failures: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
