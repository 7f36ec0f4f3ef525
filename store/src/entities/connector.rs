//! Connectors of charge stations, with the rate they charge and their live OCPP status.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "connectors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(indexed)]
    pub organization_id: String,
    #[sea_orm(indexed)]
    pub charge_station_id: String,
    /// OCPP connector number (1-based).
    pub connector_number: i32,
    pub rate_id: String,
    /// Last OCPP ChargePointStatus (`Available`, `Charging`, ...).
    pub status: String,
    /// The most power it delivers, W (operator setting; `None` = the deployment's default).
    pub max_power_w: Option<i64>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
