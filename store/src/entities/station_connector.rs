//! The last status every connector of a station reported (StatusNotification), including
//! connector 0 (the whole station) and connectors the store does not list.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "station_connector_statuses")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub station_id: String,
    /// OCPP connector number (0 = the whole station).
    #[sea_orm(primary_key, auto_increment = false)]
    pub connector_id: i32,
    /// OCPP `ChargePointStatus` as sent.
    pub status: String,
    /// OCPP `ChargePointErrorCode` as sent.
    pub error_code: String,
    /// Station time of the report; an older report never replaces a newer one.
    pub reported_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
