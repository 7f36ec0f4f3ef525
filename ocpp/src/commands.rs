//! The charger commands of the session workflow, one implementation per OCPP version: the
//! activities ([`crate::activities`]) pick the one of the station's connection, so the
//! workflow's contracts (a transaction number, a connector number) are the same for both.

use async_trait::async_trait;

use crate::connection::{CallFailed, StationHandle};
use crate::protocol::Protocol;
use crate::{v16, v201};

/// Why a command could not be sent or answered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CommandError {
    /// The CALL failed.
    #[error(transparent)]
    Call(#[from] CallFailed),
    /// The command cannot be expressed for this station (a bug, or a hand-edited registry).
    #[error("{0}")]
    Invalid(String),
}

/// The transaction a command is about.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// chargelink's number of the transaction (the 1.6 id).
    pub(crate) transaction_id: i64,
    /// The connector (2.0.1: the EVSE).
    pub(crate) connector_id: u32,
    /// The station's own id (2.0.1), from the registry.
    pub(crate) station_transaction_id: Option<String>,
}

impl Target {
    fn ocpp16_id(&self) -> Result<i32, CommandError> {
        i32::try_from(self.transaction_id).map_err(|_| {
            CommandError::Invalid(format!(
                "transaction id {} is not an OCPP integer",
                self.transaction_id
            ))
        })
    }

    fn station_id(&self) -> Result<&str, CommandError> {
        self.station_transaction_id.as_deref().ok_or_else(|| {
            CommandError::Invalid(format!(
                "transaction {} has no OCPP 2.0.1 transaction id",
                self.transaction_id
            ))
        })
    }

    /// The id of the pause profile: the same rule for both versions.
    fn pause_profile(&self) -> Result<i32, CommandError> {
        let tx = self.ocpp16_id()?;
        v16::set_charging_profile::pause_profile_id(tx).ok_or_else(|| {
            CommandError::Invalid(format!("no pause profile id for transaction {tx}"))
        })
    }
}

/// One version's charger commands. Each answers whether the station accepted.
#[async_trait]
pub(crate) trait Commands: Send + Sync {
    /// Start a transaction for `id_tag` on `connector_id`.
    async fn remote_start(
        &self,
        station: &StationHandle,
        connector_id: u32,
        id_tag: &str,
    ) -> Result<bool, CommandError>;
    /// Stop the transaction.
    async fn remote_stop(&self, station: &StationHandle, tx: &Target)
    -> Result<bool, CommandError>;
    /// Hold the transaction's energy at zero (a TxProfile of limit 0).
    async fn pause(&self, station: &StationHandle, tx: &Target) -> Result<bool, CommandError>;
    /// Clear the pause profile. A profile the station does not know counts as cleared: without
    /// it nothing holds the energy back (e.g. the station rebooted and forgot it).
    async fn resume(&self, station: &StationHandle, tx: &Target) -> Result<bool, CommandError>;
    /// Ask for the transaction's meter values now.
    async fn request_meter_values(
        &self,
        station: &StationHandle,
        tx: &Target,
    ) -> Result<bool, CommandError>;
}

/// The commands of `protocol`.
pub(crate) fn of(protocol: Protocol) -> &'static dyn Commands {
    match protocol {
        Protocol::V16 => &Ocpp16,
        Protocol::V201 => &Ocpp201,
    }
}

/// OCPP 1.6: RemoteStart/StopTransaction, Set/ClearChargingProfile, TriggerMessage MeterValues.
struct Ocpp16;

#[async_trait]
impl Commands for Ocpp16 {
    async fn remote_start(
        &self,
        station: &StationHandle,
        connector_id: u32,
        id_tag: &str,
    ) -> Result<bool, CommandError> {
        use v16::remote_start_transaction::{RemoteStartStopStatus, RemoteStartTransactionRequest};
        let id_tag = v16::types::IdToken::new(id_tag)
            .ok_or_else(|| CommandError::Invalid(format!("id tag {id_tag} is longer than 20")))?;
        let request = RemoteStartTransactionRequest {
            connector_id: Some(connector_id),
            id_tag,
            charging_profile: None,
        };
        let r = station
            .call::<v16::RemoteStartTransaction>(&request)
            .await?;
        Ok(r.status == RemoteStartStopStatus::Accepted)
    }

    async fn remote_stop(
        &self,
        station: &StationHandle,
        tx: &Target,
    ) -> Result<bool, CommandError> {
        use v16::remote_start_transaction::RemoteStartStopStatus;
        use v16::remote_stop_transaction::RemoteStopTransactionRequest;
        let request = RemoteStopTransactionRequest {
            transaction_id: tx.ocpp16_id()?,
        };
        let r = station.call::<v16::RemoteStopTransaction>(&request).await?;
        Ok(r.status == RemoteStartStopStatus::Accepted)
    }

    async fn pause(&self, station: &StationHandle, tx: &Target) -> Result<bool, CommandError> {
        use v16::set_charging_profile::{ChargingProfileStatus, pause};
        let request = pause(tx.connector_id, tx.ocpp16_id()?, tx.pause_profile()?);
        let r = station.call::<v16::SetChargingProfile>(&request).await?;
        Ok(r.status == ChargingProfileStatus::Accepted)
    }

    async fn resume(&self, station: &StationHandle, tx: &Target) -> Result<bool, CommandError> {
        use v16::clear_charging_profile::{
            ClearChargingProfileRequest, ClearChargingProfileStatus,
        };
        let request = ClearChargingProfileRequest {
            id: Some(tx.pause_profile()?),
            ..ClearChargingProfileRequest::default()
        };
        let r = station.call::<v16::ClearChargingProfile>(&request).await?;
        Ok(matches!(
            r.status,
            ClearChargingProfileStatus::Accepted | ClearChargingProfileStatus::Unknown
        ))
    }

    async fn request_meter_values(
        &self,
        station: &StationHandle,
        tx: &Target,
    ) -> Result<bool, CommandError> {
        use v16::trigger_message::{MessageTrigger, TriggerMessageRequest, TriggerMessageStatus};
        let request = TriggerMessageRequest {
            requested_message: MessageTrigger::MeterValues,
            connector_id: Some(tx.connector_id),
        };
        let r = station.call::<v16::TriggerMessage>(&request).await?;
        Ok(r.status == TriggerMessageStatus::Accepted)
    }
}

/// OCPP 2.0.1: Request(Start|Stop)Transaction, Set/ClearChargingProfile, TriggerMessage
/// TransactionEvent (in 2.0.1 a transaction's readings come in TransactionEvent).
struct Ocpp201;

#[async_trait]
impl Commands for Ocpp201 {
    async fn remote_start(
        &self,
        station: &StationHandle,
        connector_id: u32,
        id_tag: &str,
    ) -> Result<bool, CommandError> {
        use v201::request_start_transaction::{
            RequestStartStopStatus, RequestStartTransactionRequest, remote_start_id,
        };
        let id_token = v201::types::IdToken::central(id_tag)
            .ok_or_else(|| CommandError::Invalid(format!("id token {id_tag} is longer than 36")))?;
        let request = RequestStartTransactionRequest {
            evse_id: Some(connector_id),
            remote_start_id: remote_start_id(id_tag),
            id_token,
        };
        let r = station
            .call::<v201::RequestStartTransaction>(&request)
            .await?;
        Ok(r.status == RequestStartStopStatus::Accepted)
    }

    async fn remote_stop(
        &self,
        station: &StationHandle,
        tx: &Target,
    ) -> Result<bool, CommandError> {
        use v201::request_start_transaction::RequestStartStopStatus;
        use v201::request_stop_transaction::RequestStopTransactionRequest;
        let request = RequestStopTransactionRequest {
            transaction_id: tx.station_id()?.to_owned(),
        };
        let r = station
            .call::<v201::RequestStopTransaction>(&request)
            .await?;
        Ok(r.status == RequestStartStopStatus::Accepted)
    }

    async fn pause(&self, station: &StationHandle, tx: &Target) -> Result<bool, CommandError> {
        use v201::set_charging_profile::{ChargingProfileStatus, pause};
        let request = pause(tx.connector_id, tx.station_id()?, tx.pause_profile()?);
        let r = station.call::<v201::SetChargingProfile>(&request).await?;
        Ok(r.status == ChargingProfileStatus::Accepted)
    }

    async fn resume(&self, station: &StationHandle, tx: &Target) -> Result<bool, CommandError> {
        use v201::clear_charging_profile::{
            ClearChargingProfileRequest, ClearChargingProfileStatus,
        };
        let request = ClearChargingProfileRequest {
            charging_profile_id: Some(tx.pause_profile()?),
            charging_profile_criteria: None,
        };
        let r = station.call::<v201::ClearChargingProfile>(&request).await?;
        Ok(matches!(
            r.status,
            ClearChargingProfileStatus::Accepted | ClearChargingProfileStatus::Unknown
        ))
    }

    async fn request_meter_values(
        &self,
        station: &StationHandle,
        tx: &Target,
    ) -> Result<bool, CommandError> {
        use v201::trigger_message::{MessageTrigger, TriggerMessageRequest, TriggerMessageStatus};
        let request = TriggerMessageRequest {
            requested_message: MessageTrigger::TransactionEvent,
            evse: Some(v201::types::Evse {
                id: tx.connector_id,
                connector_id: None,
            }),
        };
        let r = station.call::<v201::TriggerMessage>(&request).await?;
        Ok(r.status == TriggerMessageStatus::Accepted)
    }
}
