//! OCPP transactions. The auto-increment key is the OCPP 1.6 `transactionId` (and the number an
//! OCPP 2.0.1 station's own transaction id maps to), so gateways sharing one database never
//! hand out the same id.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ocpp_transactions")]
pub struct Model {
    /// The OCPP transaction id.
    #[sea_orm(primary_key)]
    pub id: i64,
    pub station_id: String,
    pub connector_id: i32,
    pub id_tag: String,
    /// The session, when the id tag was a session's.
    pub session_id: Option<String>,
    /// Energy register at start, Wh.
    pub meter_start: i64,
    /// Station time of the start.
    pub started_at: DateTimeUtc,
    /// Energy register at stop, Wh; set with `stopped_at`.
    pub meter_stop: Option<i64>,
    /// Station time of the stop; `None` while open.
    pub stopped_at: Option<DateTimeUtc>,
    /// OCPP stop reason, as sent.
    pub stop_reason: Option<String>,
    /// OCPP 2.0.1: the station's own transaction id (text it chose); `id` is the number
    /// chargelink's sessions know the transaction by. `None` for 1.6 transactions, whose id
    /// is `id` itself.
    pub station_transaction_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
