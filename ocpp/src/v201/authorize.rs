//! `Authorize` (station → CSMS): may this token charge?

use serde::{Deserialize, Serialize};

use super::action;
use super::types::{IdToken, IdTokenInfo};

action!(
    /// Authorize.
    Authorize, AuthorizeRequest => AuthorizeResponse
);

/// AuthorizeRequest (certificate fields of ISO 15118 are not used by chargelink).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizeRequest {
    /// The token.
    pub id_token: IdToken,
}

/// AuthorizeResponse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizeResponse {
    /// The verdict.
    pub id_token_info: IdTokenInfo,
}
