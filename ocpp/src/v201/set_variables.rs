//! `SetVariables` (CSMS → station): set device-model variables. chargelink sets the metering
//! of transactions after boot (the 2.0.1 counterpart of 1.6's ChangeConfiguration keys).

use serde::{Deserialize, Serialize};

use super::action;
use super::types::{Component, Variable};

action!(
    /// SetVariables.
    SetVariables, SetVariablesRequest => SetVariablesResponse
);

/// The controller of sampled meter data.
pub const SAMPLED_DATA_CTRLR: &str = "SampledDataCtrlr";
/// Seconds between the meter values of a running transaction (TransactionEvent Updated).
pub const TX_UPDATED_INTERVAL: &str = "TxUpdatedInterval";
/// Measurands in those periodic meter values.
pub const TX_UPDATED_MEASURANDS: &str = "TxUpdatedMeasurands";
/// Measurands in the Started event (`Transaction.Begin`): the register the session starts at.
pub const TX_STARTED_MEASURANDS: &str = "TxStartedMeasurands";
/// Measurands in the Ended event (`Transaction.End`): the register it stops at.
pub const TX_ENDED_MEASURANDS: &str = "TxEndedMeasurands";

/// `SetVariableDataType`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetVariableData {
    /// `Actual` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_type: Option<String>,
    /// The value.
    pub attribute_value: String,
    /// The component.
    pub component: Component,
    /// The variable.
    pub variable: Variable,
}

impl SetVariableData {
    /// `component`.`variable` = `value` (the actual value).
    pub fn new(component: &str, variable: &str, value: impl Into<String>) -> Self {
        Self {
            attribute_type: None,
            attribute_value: value.into(),
            component: Component {
                name: component.to_owned(),
            },
            variable: Variable {
                name: variable.to_owned(),
            },
        }
    }
}

/// SetVariablesRequest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetVariablesRequest {
    /// The values to set.
    pub set_variable_data: Vec<SetVariableData>,
}

/// `SetVariableResultType`. The status (`Accepted`, `Rejected`, `UnknownComponent`,
/// `UnknownVariable`, `NotSupportedAttributeType`, `RebootRequired`) is kept as text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetVariableResult {
    /// The attribute set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_type: Option<String>,
    /// The outcome.
    pub attribute_status: String,
    /// The component.
    pub component: Component,
    /// The variable.
    pub variable: Variable,
}

/// SetVariablesResponse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetVariablesResponse {
    /// One result per value.
    pub set_variable_result: Vec<SetVariableResult>,
}
