//! Recording activity implementations for workflow tests. Every call is appended to a JSON-lines
//! journal file (so a test can read what a worker in another process did), and the answers play
//! a payment provider and a charge station whose behaviour the test chooses.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use domain::money::Money;
use serde::{Deserialize, Serialize};
use serde_json::json;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use workflows::contracts::{
    CancelPaymentInput, CapturePaymentInput, CapturePaymentOutput, ChargeStationLocation,
    CloseTransactionInput, CommandReply, CreatePaymentInput, CreatePaymentOutput,
    IncrementPaymentInput, IncrementPaymentOutput, LocateChargeStationInput, PaymentRef,
    ProviderPaymentState, RecordSessionInput, RemoteStartInput, TransactionRef,
};

/// How the simulated provider and station behave.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Behaviour {
    /// The station answers RemoteStart with Rejected.
    pub refuse_start: bool,
    /// The provider reports the hold as placed when polled (a lost webhook).
    pub authorized_on_poll: Option<Money>,
    /// The station refuses RemoteStop.
    pub refuse_stop: bool,
    /// The station refuses RemoteStop because it has no such transaction (it rebooted).
    pub stop_finds_no_transaction: bool,
    /// The issuer declines every increment of the hold (top-up).
    pub decline_increments: bool,
    /// The provider answers an increment only after this many milliseconds (top-up).
    pub increment_delay_ms: u64,
}

/// One recorded activity call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Activity name (or a pseudo-name such as `capture_replayed`).
    pub activity: String,
    /// The session it was for.
    pub session_id: String,
    /// What it was asked.
    pub detail: serde_json::Value,
}

/// Reads a journal; a missing file is an empty journal.
pub fn read_journal(path: &Path) -> Vec<Entry> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// The recording activities.
pub struct Recorder {
    journal: PathBuf,
    behaviour: Behaviour,
    gateway_queue: String,
    lock: Mutex<()>,
}

impl Recorder {
    /// Records to `journal`; charger commands are routed to `gateway_queue`.
    pub fn new(journal: PathBuf, behaviour: Behaviour, gateway_queue: String) -> Self {
        Self {
            journal,
            behaviour,
            gateway_queue,
            lock: Mutex::new(()),
        }
    }

    fn append(
        &self,
        activity: &str,
        session_id: &str,
        detail: serde_json::Value,
    ) -> anyhow::Result<()> {
        let _guard = self
            .lock
            .lock()
            .map_err(|_| anyhow::anyhow!("journal lock poisoned"))?;
        let entry = Entry {
            activity: activity.to_owned(),
            session_id: session_id.to_owned(),
            detail,
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.journal)?;
        writeln!(file, "{}", serde_json::to_string(&entry)?)?;
        Ok(())
    }

    fn seen_key(&self, activity: &str, key: &str) -> Option<Entry> {
        read_journal(&self.journal)
            .into_iter()
            .find(|e| e.activity == activity && e.detail["idempotency_key"] == key)
    }
}

fn accepted() -> CommandReply {
    CommandReply::accepted()
}

#[activities]
impl Recorder {
    #[activity(definition = workflows::contracts::RecordSession)]
    pub async fn record_session(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: RecordSessionInput,
    ) -> Result<(), ActivityError> {
        let events: Vec<_> = input
            .events
            .iter()
            .map(|e| json!({"id": e.id, "type": e.kind.as_str()}))
            .collect();
        self.append(
            "record_session",
            input.session.id.as_str(),
            json!({"status": input.session.status, "events": events, "session": input.session}),
        )?;
        Ok(())
    }

    #[activity(definition = workflows::contracts::CreatePayment)]
    pub async fn create_payment(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: CreatePaymentInput,
    ) -> Result<CreatePaymentOutput, ActivityError> {
        let body = input
            .session_id
            .as_str()
            .trim_start_matches("ses_")
            .to_owned();
        self.append("create_payment", input.session_id.as_str(), json!(input))?;
        Ok(CreatePaymentOutput {
            url: format!("https://pay.test/checkout/cs_test_{body}"),
            checkout_session_id: format!("cs_test_{body}"),
            intent_id: None,
        })
    }

    #[activity(definition = workflows::contracts::ExpirePayment)]
    pub async fn expire_payment(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: PaymentRef,
    ) -> Result<ProviderPaymentState, ActivityError> {
        self.append("expire_payment", input.session_id.as_str(), json!(input))?;
        Ok(self.provider_state(&input, ProviderPaymentState::Expired))
    }

    #[activity(definition = workflows::contracts::RetrievePayment)]
    pub async fn retrieve_payment(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: PaymentRef,
    ) -> Result<ProviderPaymentState, ActivityError> {
        self.append("retrieve_payment", input.session_id.as_str(), json!(input))?;
        Ok(self.provider_state(&input, ProviderPaymentState::Open))
    }

    #[activity(definition = workflows::contracts::CapturePayment)]
    pub async fn capture_payment(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: CapturePaymentInput,
    ) -> Result<CapturePaymentOutput, ActivityError> {
        // Like the provider: a repeated idempotency key returns the first result, moves nothing.
        if let Some(first) = self.seen_key("capture_payment", &input.idempotency_key) {
            self.append("capture_replayed", input.session_id.as_str(), json!(input))?;
            let captured: Money = serde_json::from_value(first.detail["amount"].clone())?;
            return Ok(CapturePaymentOutput { captured });
        }
        self.append("capture_payment", input.session_id.as_str(), json!(input))?;
        Ok(CapturePaymentOutput {
            captured: input.amount,
        })
    }

    #[activity(definition = workflows::contracts::IncrementPayment)]
    pub async fn increment_payment(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: IncrementPaymentInput,
    ) -> Result<IncrementPaymentOutput, ActivityError> {
        self.append("increment_payment", input.session_id.as_str(), json!(input))?;
        tokio::time::sleep(std::time::Duration::from_millis(
            self.behaviour.increment_delay_ms,
        ))
        .await;
        Ok(if self.behaviour.decline_increments {
            IncrementPaymentOutput::Refused {
                code: Some("card_declined".into()),
                message: "Your card was declined.".into(),
            }
        } else {
            IncrementPaymentOutput::Raised {
                amount_capturable: input.amount,
            }
        })
    }

    #[activity(definition = workflows::contracts::CancelPayment)]
    pub async fn cancel_payment(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: CancelPaymentInput,
    ) -> Result<(), ActivityError> {
        self.append("cancel_payment", input.session_id.as_str(), json!(input))?;
        Ok(())
    }

    #[activity(definition = workflows::contracts::LocateChargeStation)]
    pub async fn locate_charge_station(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: LocateChargeStationInput,
    ) -> Result<ChargeStationLocation, ActivityError> {
        self.append(
            "locate_charge_station",
            input.session_id.as_str(),
            json!(input),
        )?;
        Ok(ChargeStationLocation {
            task_queue: Some(self.gateway_queue.clone()),
        })
    }

    #[activity(definition = workflows::contracts::RemoteStart)]
    pub async fn remote_start(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: RemoteStartInput,
    ) -> Result<CommandReply, ActivityError> {
        self.append("remote_start", input.session_id.as_str(), json!(input))?;
        Ok(if self.behaviour.refuse_start {
            CommandReply::rejected()
        } else {
            accepted()
        })
    }

    #[activity(definition = workflows::contracts::RemoteStop)]
    pub async fn remote_stop(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: TransactionRef,
    ) -> Result<CommandReply, ActivityError> {
        self.append("remote_stop", input.session_id.as_str(), json!(input))?;
        Ok(if self.behaviour.stop_finds_no_transaction {
            CommandReply::no_transaction()
        } else if self.behaviour.refuse_stop {
            CommandReply::rejected()
        } else {
            accepted()
        })
    }

    #[activity(definition = workflows::contracts::PauseCharging)]
    pub async fn pause_charging(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: TransactionRef,
    ) -> Result<CommandReply, ActivityError> {
        self.append("pause_charging", input.session_id.as_str(), json!(input))?;
        Ok(accepted())
    }

    #[activity(definition = workflows::contracts::RequestMeterValues)]
    pub async fn request_meter_values(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: TransactionRef,
    ) -> Result<CommandReply, ActivityError> {
        self.append(
            "request_meter_values",
            input.session_id.as_str(),
            json!(input),
        )?;
        Ok(accepted())
    }

    #[activity(definition = workflows::contracts::CloseTransaction)]
    pub async fn close_transaction(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: CloseTransactionInput,
    ) -> Result<(), ActivityError> {
        self.append(
            "close_transaction",
            input.transaction.session_id.as_str(),
            json!(input),
        )?;
        Ok(())
    }

    #[activity(definition = workflows::contracts::ResumeCharging)]
    pub async fn resume_charging(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: TransactionRef,
    ) -> Result<CommandReply, ActivityError> {
        self.append("resume_charging", input.session_id.as_str(), json!(input))?;
        Ok(accepted())
    }
}

impl Recorder {
    fn provider_state(
        &self,
        payment: &PaymentRef,
        otherwise: ProviderPaymentState,
    ) -> ProviderPaymentState {
        match self.behaviour.authorized_on_poll {
            Some(amount) => ProviderPaymentState::Authorized {
                intent_id: format!(
                    "pi_test_{}",
                    payment.session_id.as_str().trim_start_matches("ses_")
                ),
                amount_capturable: amount,
            },
            None => otherwise,
        }
    }
}
