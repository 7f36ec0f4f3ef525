//! The outbox: every event a session emitted, written with the state change that caused it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_events")]
pub struct Model {
    /// Stable event id (`evt_<session>_<seq>`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(indexed)]
    pub organization_id: String,
    #[sea_orm(indexed)]
    pub session_id: String,
    /// Position in the session's event stream, from 1.
    pub seq: i32,
    pub event_type: String,
    /// `domain::events::SessionEvent` as delivered.
    pub payload: Json,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
