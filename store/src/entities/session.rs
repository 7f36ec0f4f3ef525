//! Sessions with their payment: the read model the session workflow keeps current.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(indexed)]
    pub organization_id: String,
    #[sea_orm(indexed)]
    pub status: String,
    #[sea_orm(indexed)]
    pub charge_station_id: String,
    pub connector_id: String,
    pub user_id: String,
    /// `domain::session::Session`, exactly as the API returns it.
    pub document: Json,
    /// Number of events written for this session (the outbox position).
    pub events_written: i32,
    #[sea_orm(indexed)]
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
