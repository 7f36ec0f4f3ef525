//! Which gateway instance holds each station's WebSocket (the OCPP registry's locator table).
//! Every station that ever connected has a row, also stations the store does not list (a
//! gateway may authenticate them from a stations file).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "station_connections")]
pub struct Model {
    /// The OCPP identity.
    #[sea_orm(primary_key, auto_increment = false)]
    pub station_id: String,
    /// The gateway instance holding (or that last held) the socket.
    #[sea_orm(indexed)]
    pub instance_id: String,
    /// That gateway's Temporal task queue.
    pub task_queue: String,
    /// The connection (unique per socket): a late disconnect of an older socket is ignored.
    pub connection_id: String,
    pub connected: bool,
    /// When the current (or last) connection opened.
    pub connected_at: DateTimeUtc,
    /// When it closed; `None` while connected.
    pub disconnected_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
