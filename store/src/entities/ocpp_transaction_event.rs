//! The `seqNo`s of the OCPP 2.0.1 TransactionEvents each transaction has had: a repeat (sent
//! again after a lost answer, or to two gateways) is acknowledged and not acted on twice.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ocpp_transaction_events")]
pub struct Model {
    /// The transaction (`ocpp_transactions.id`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub transaction_id: i64,
    /// The event's `seqNo`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq_no: i64,
    /// When the gateway recorded it.
    pub received_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
