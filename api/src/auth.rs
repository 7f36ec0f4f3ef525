//! Bearer API keys: each key belongs to one organization, and every handler sees only that
//! organization's data.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use domain::ids::OrganizationId;

use crate::AppState;
use crate::error::ApiError;

/// The organization of the request's API key.
pub struct Org(pub OrganizationId);

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

impl FromRequestParts<AppState> for Org {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(state, bearer(parts)).await.map(Org)
    }
}

/// The organization of the API key `key` (the bearer token without `Bearer `); REST and gRPC
/// both call this. `None` or an unknown / revoked key is 401 `unauthorized`; a key over its
/// rate limit is 429 `rate_limited`.
pub async fn authenticate(state: &AppState, key: Option<&str>) -> Result<OrganizationId, ApiError> {
    let unauthorized = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send your organization's API key as `Authorization: Bearer ck_...`",
        )
    };
    let key = key.ok_or_else(unauthorized)?;
    let org = state
        .store
        .authenticate(key)
        .await?
        .ok_or_else(unauthorized)?;
    // Only real keys get a bucket, so unknown ones cannot grow the table.
    state
        .config
        .rate_limit
        .check(key)
        .map_err(ApiError::rate_limited)?;
    Ok(org)
}

/// The operator: the admin token from the configuration.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = state.config.admin_token.as_deref();
        match (token, bearer(parts)) {
            (Some(expected), Some(given))
                if store::secrets::same_digest(
                    &store::secrets::hash(expected),
                    &store::secrets::hash(given),
                ) =>
            {
                Ok(Operator)
            }
            (None, _) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "admin_disabled",
                "no admin token is configured (CHARGELINK_ADMIN_TOKEN)",
            )),
            _ => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send the admin token as `Authorization: Bearer ...`",
            )),
        }
    }
}
