//! The error answers every operation can give, added to the OpenAPI document so that it lists
//! every status the API really sends (schemathesis checks each answer against it).

use utoipa::openapi::path::Operation;
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

/// Adds the shared error responses (body [`crate::error::ErrorBody`]) to every operation:
/// 400 (a malformed parameter or body), 429 (the key's rate limit) and 503 (a dependency did
/// not answer) everywhere; 401 where a key or token is required (403 too for the admin token,
/// which may be disabled); 404 where the path or the body names a resource; 413, 415 and 422
/// where there is a body.
pub(crate) struct ErrorResponses;

const ERRORS: &[(&str, &str)] = &[
    (
        "400",
        "invalid_request: a parameter or the body is malformed; `field` names it",
    ),
    ("401", "unauthorized: no, an unknown or a revoked key"),
    ("403", "admin_disabled: no admin token is configured"),
    (
        "404",
        "not_found (or a more precise code): no such resource in your organization",
    ),
    (
        "409",
        "the request conflicts with the resource's state (see the code)",
    ),
    (
        "413",
        "payload_too_large: the body is larger than the API accepts",
    ),
    (
        "415",
        "invalid_request: send `Content-Type: application/json`",
    ),
    (
        "422",
        "invalid_request: the body does not fit the schema; `field` names the culprit",
    ),
    (
        "429",
        "rate_limited: too many requests with this key; retry after `Retry-After` seconds",
    ),
    (
        "503",
        "a dependency (workflow service, station, provider) did not answer; try again",
    ),
];

fn add_errors(path: &str, op: &mut Operation, has_body_param: bool) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let admin = path.starts_with("/admin/");
    let names_resource = path.contains('{') || has_body_param;
    let body = op.request_body.is_some();
    for (status, description) in ERRORS {
        let wanted = match *status {
            "400" | "429" | "503" => true,
            "401" => secured,
            "403" => admin,
            "404" => names_resource || body,
            "409" | "413" | "415" | "422" => body,
            _ => false,
        };
        if !wanted || op.responses.responses.contains_key(*status) {
            continue;
        }
        let mut response = ResponseBuilder::new().description(*description).content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        );
        if *status == "429" {
            response = response.header(
                "Retry-After",
                utoipa::openapi::header::HeaderBuilder::new()
                    .schema(
                        utoipa::openapi::ObjectBuilder::new()
                            .schema_type(utoipa::openapi::schema::Type::Integer),
                    )
                    .description(Some("seconds until the key may send again"))
                    .build(),
            );
        }
        op.responses
            .responses
            .insert((*status).to_owned(), response.build().into());
    }
}

impl utoipa::Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            // The Payment Links spec sends session commands as GET; POST is the same operation.
            let command = ["/pause", "/resume", "/stop"]
                .iter()
                .any(|c| path.ends_with(c));
            if command && item.get.is_none() {
                item.get = item.post.clone().map(|mut op| {
                    op.operation_id = op.operation_id.map(|id| format!("{id}_get"));
                    op
                });
            }
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                // A query parameter such as `session` names a resource too.
                let query_names_resource = op
                    .parameters
                    .as_ref()
                    .is_some_and(|ps| ps.iter().any(|p| p.name == "session"));
                add_errors(path, op, query_names_resource);
            }
        }
    }
}
