//! RemoteStartTransactions a station was asked for, by the session's id tag: a StartTransaction
//! with that tag belongs to the session.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ocpp_pending_starts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id_tag: String,
    pub session_id: String,
    pub station_id: String,
    pub connector_id: i32,
    /// When the RemoteStart was (last) sent.
    pub created_at: DateTimeUtc,
    /// Accepted by the station and neither started nor abandoned yet.
    pub armed: bool,
    /// The connector reported Preparing since the RemoteStart.
    pub preparing: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
