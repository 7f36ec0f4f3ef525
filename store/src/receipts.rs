//! Receipts: a settled session's unguessable token (the public receipt URL) and the card the
//! provider reported; the operator's receipt details on organizations and stations.

use chrono::{DateTime, Utc};
use domain::ids::{OrganizationId, SessionId};
use rand::Rng;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use crate::entities::{charge_station, organization, receipt};
use crate::{Store, StoreError};

/// What an organization prints on its receipts; `None` leaves a field as it is, an empty
/// string clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperatorDetails {
    /// Operator name (else the organization's name is shown).
    pub name: Option<String>,
    /// VAT / tax id.
    pub tax_id: Option<String>,
    /// Postal address.
    pub address: Option<String>,
}

/// A new receipt token: `rct_` and 64 hex characters (256 random bits).
fn new_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    format!("rct_{}", hex::encode(bytes))
}

/// `Some(text)` for a non-empty text, `None` for an empty one (clears the column).
fn set_text(value: String) -> Option<String> {
    let value = value.trim().to_owned();
    (!value.is_empty()).then_some(value)
}

impl Store {
    /// The receipt of `session`, made now with a fresh random token if it has none. Idempotent:
    /// a retried call (or a race) answers the token first stored.
    pub async fn ensure_receipt(
        &self,
        org: &OrganizationId,
        session: &SessionId,
        now: DateTime<Utc>,
    ) -> Result<receipt::Model, StoreError> {
        if let Some(found) = self.receipt_of(session).await? {
            return Ok(found);
        }
        let inserted = receipt::ActiveModel {
            session_id: Set(session.to_string()),
            organization_id: Set(org.to_string()),
            token: Set(new_token()),
            card_brand: Set(None),
            card_last4: Set(None),
            created_at: Set(now),
        }
        .insert(&self.db)
        .await;
        match inserted {
            Ok(row) => Ok(row),
            // Another attempt inserted it first: its token stands.
            Err(e) => self
                .receipt_of(session)
                .await?
                .ok_or(StoreError::Database(e)),
        }
    }

    async fn receipt_of(&self, session: &SessionId) -> Result<Option<receipt::Model>, StoreError> {
        Ok(receipt::Entity::find_by_id(session.to_string())
            .one(&self.db)
            .await?)
    }

    /// The receipt of `org`'s `session`, if one was issued (another organization's: `None`).
    pub async fn receipt_for_session(
        &self,
        org: &OrganizationId,
        session: &SessionId,
    ) -> Result<Option<receipt::Model>, StoreError> {
        Ok(self
            .receipt_of(session)
            .await?
            .filter(|r| r.organization_id == org.as_str()))
    }

    /// The receipt with this token, whatever its organization (the public receipt page).
    pub async fn receipt_by_token(
        &self,
        token: &str,
    ) -> Result<Option<receipt::Model>, StoreError> {
        Ok(receipt::Entity::find()
            .filter(receipt::Column::Token.eq(token))
            .one(&self.db)
            .await?)
    }

    /// Records the card the provider reported for a receipt's payment.
    pub async fn set_receipt_card(
        &self,
        session: &SessionId,
        brand: &str,
        last4: &str,
    ) -> Result<(), StoreError> {
        let row = self
            .receipt_of(session)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("receipt of session {session}")))?;
        let mut row: receipt::ActiveModel = row.into();
        row.card_brand = Set(Some(brand.to_owned()));
        row.card_last4 = Set(Some(last4.to_owned()));
        row.update(&self.db).await?;
        Ok(())
    }

    /// Changes what the organization prints on receipts (fields left `None` stay as they are).
    pub async fn set_operator_details(
        &self,
        org: &OrganizationId,
        details: OperatorDetails,
        now: DateTime<Utc>,
    ) -> Result<organization::Model, StoreError> {
        let mut row: organization::ActiveModel = self.organization(org).await?.into();
        if let Some(name) = details.name {
            row.operator_name = Set(set_text(name));
        }
        if let Some(tax_id) = details.tax_id {
            row.tax_id = Set(set_text(tax_id));
        }
        if let Some(address) = details.address {
            row.operator_address = Set(set_text(address));
        }
        row.updated_at = Set(now);
        Ok(row.update(&self.db).await?)
    }

    /// Sets the postal address of one of the organization's stations (shown on receipts).
    pub async fn set_charge_station_address(
        &self,
        org: &OrganizationId,
        station: &str,
        address: String,
    ) -> Result<charge_station::Model, StoreError> {
        let row = self
            .charge_station(station)
            .await?
            .filter(|s| s.organization_id == org.as_str())
            .ok_or_else(|| StoreError::NotFound(format!("charge station {station}")))?;
        let mut row: charge_station::ActiveModel = row.into();
        row.address = Set(set_text(address));
        Ok(row.update(&self.db).await?)
    }
}
