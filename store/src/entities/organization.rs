//! Organizations (tenants) and their session settings.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "organizations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    /// ISO 4217, lower case.
    pub currency: String,
    /// Default hold, minor units.
    pub minimum_amount_to_start_session: i64,
    /// Largest hold a session may ask for, minor units.
    pub maximum_authorized_amount: i64,
    pub payment_expiry_seconds: i64,
    pub start_window_seconds: i64,
    /// The operator's name on receipts (`None`: the organization's name).
    pub operator_name: Option<String>,
    /// The operator's VAT / tax id on receipts.
    pub tax_id: Option<String>,
    /// The operator's postal address on receipts.
    pub operator_address: Option<String>,
    /// Top-up: the most a hold may be raised to, minor units (`None`: top-up off).
    pub top_up_ceiling: Option<i64>,
    /// Top-up: what each increment adds, minor units (`None`: the session's first hold).
    pub top_up_step: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
