//! Receipts of settled sessions: the unguessable token of the public receipt URL and the card
//! the provider reported (fetched once, when the receipt is first shown).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "receipts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub session_id: String,
    #[sea_orm(indexed)]
    pub organization_id: String,
    /// Random (256 bits), never derived from the session id: the URL is the capability.
    #[sea_orm(unique)]
    pub token: String,
    /// Card brand as the provider names it (`visa`), once known.
    pub card_brand: Option<String>,
    /// The card's last four digits, once known.
    pub card_last4: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
