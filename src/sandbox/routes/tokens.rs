//! Tokens: the token endpoint (`POST /{tenant}/oauth2/token` and `/oauth2/v2.0/token`, the
//! refresh_token grant only), which issues access and refresh tokens, and the bearer check every
//! `/v1` call passes first.

use std::collections::HashMap;
use std::time::Instant;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::common::{error, header, reply, CallIds};
use super::Shared;

/// The bearer token the sandbox always accepts.
pub const STATIC_TOKEN: &str = "sandbox";
/// The refresh token the token endpoint always accepts.
pub const INITIAL_REFRESH_TOKEN: &str = "sandbox-refresh-token";

pub(super) fn authorize(s: &Shared, h: &HeaderMap, ids: &CallIds) -> Result<(), Box<Response>> {
    let token = header(h, "Authorization").and_then(|a| {
        let (scheme, t) = a.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then_some(t.trim())
    });
    let why = match token {
        None => "missing bearer token",
        Some(STATIC_TOKEN) => return Ok(()),
        Some(t) => match s.tokens.lock().unwrap().access.get(t) {
            Some(exp) if Instant::now() < *exp => return Ok(()),
            Some(_) => "the access token has expired",
            None => "the access token is not valid",
        },
    };
    s.stats.lock().unwrap().unauthorized += 1;
    let (st, body) = error(401, 401, &format!("Unauthorized: {why}"));
    let mut resp = reply(st, body, ids, false);
    resp.headers_mut().insert(
        "WWW-Authenticate",
        HeaderValue::from_str(&format!(
            "Bearer error=\"invalid_token\", error_description=\"{why}\""
        ))
        .unwrap(),
    );
    Err(Box::new(resp))
}

pub(super) fn token_endpoint(s: &Shared, body: &Bytes) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    let refusal = |error: &str, description: &str| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(
                json!({"error": error, "error_description": description, "error_codes": [70000]}),
            ),
        )
            .into_response()
    };
    if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
        return refusal(
            "unsupported_grant_type",
            "AADSTS70003: The sandbox supports the refresh_token grant only.",
        );
    }
    let Some(presented) = form.get("refresh_token") else {
        return refusal(
            "invalid_request",
            "AADSTS900144: The request body must contain the parameter: 'refresh_token'.",
        );
    };
    let mut book = s.tokens.lock().unwrap();
    let usable = presented == INITIAL_REFRESH_TOKEN
        || match book.refresh.get(presented) {
            Some(None) => true,
            Some(Some(replaced)) => replaced.elapsed() < s.opts.refresh_grace,
            None => false,
        };
    if !usable {
        return refusal(
            "invalid_grant",
            "AADSTS70000: The provided value for the 'refresh_token' is invalid, expired or revoked.",
        );
    }
    book.issued += 1;
    let n = book.issued;
    let access = format!("sbx-at-{n}-{}", uuid::Uuid::new_v4().simple());
    let refresh = format!("sbx-rt-{n}-{}", uuid::Uuid::new_v4().simple());
    let lifetime = s.opts.token_lifetime;
    book.access
        .insert(access.clone(), Instant::now() + lifetime);
    if presented != INITIAL_REFRESH_TOKEN {
        book.refresh.insert(presented.clone(), Some(Instant::now()));
    }
    book.refresh.insert(refresh.clone(), None);
    drop(book);
    s.stats.lock().unwrap().tokens_issued += 1;
    axum::Json(json!({
        "token_type": "Bearer",
        "expires_in": lifetime.as_secs().to_string(),
        "access_token": access,
        "refresh_token": refresh,
        "resource": "https://api.partnercenter.microsoft.com",
    }))
    .into_response()
}
