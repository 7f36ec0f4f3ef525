//! One event to one endpoint: its delivery state and history.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    /// `<event id>:<endpoint id>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(indexed)]
    pub event_id: String,
    #[sea_orm(indexed)]
    pub endpoint_id: String,
    pub session_id: String,
    pub seq: i32,
    /// `pending`, `delivered`, `failed` (gave up) or `skipped` (endpoint disabled).
    #[sea_orm(indexed)]
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    pub last_error: Option<String>,
    pub last_status_code: Option<i32>,
    pub delivered_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
