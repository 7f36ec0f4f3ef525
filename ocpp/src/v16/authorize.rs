//! `Authorize` (station → central system): may the holder of this id tag charge?

use serde::{Deserialize, Serialize};

use super::action;
use super::types::{IdTagInfo, IdToken};

action!(
    /// Authorize.
    Authorize, AuthorizeRequest => AuthorizeResponse
);

/// Authorize.req.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizeRequest {
    /// The id tag presented.
    pub id_tag: IdToken,
}

/// Authorize.conf.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizeResponse {
    /// The verdict.
    pub id_tag_info: IdTagInfo,
}
