//! Tokens: the token endpoint (`POST /{tenant}/oauth2/token` and `/oauth2/v2.0/token`), which
//! issues App+User tokens for the refresh_token grant and app-only tokens for the
//! client_credentials grant, and the bearer check every `/v1` call passes first.
//!
//! The static token `sandbox` stands for a user's delegated (App+User) token, so the samples and a
//! plain `PCBULK_ACCESS_TOKEN=sandbox` reach every operation; `sandbox-app-only` stands for an
//! application's own token.

use std::collections::HashMap;
use std::time::Instant;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::common::{error, header, reply, CallIds};
use super::state::TokenKind;
use super::Shared;

/// The bearer token the sandbox always accepts, as an App+User token.
pub const STATIC_TOKEN: &str = "sandbox";
/// The bearer token the sandbox always accepts, as an app-only token.
pub const STATIC_APP_ONLY_TOKEN: &str = "sandbox-app-only";
/// The refresh token the token endpoint always accepts.
pub const INITIAL_REFRESH_TOKEN: &str = "sandbox-refresh-token";

/// Checks the bearer token and says what kind it is. A refusal is a 401 shaped as the error-codes
/// page shows it: the error body (`code` as a string, as the schema has it) and
/// `WWW-Authenticate: OAuth realm=urn:cpsvc:cpid:...`, with the reason added for people reading.
pub(super) fn authorize(
    s: &Shared,
    h: &HeaderMap,
    ids: &CallIds,
) -> Result<TokenKind, Box<Response>> {
    let token = header(h, "Authorization").and_then(|a| {
        let (scheme, t) = a.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then_some(t.trim())
    });
    let why = match token {
        None => "missing bearer token",
        Some(STATIC_TOKEN) => return Ok(TokenKind::AppUser),
        Some(STATIC_APP_ONLY_TOKEN) => return Ok(TokenKind::AppOnly),
        Some(t) => match s.tokens.lock().unwrap().access.get(t) {
            Some((exp, kind)) if Instant::now() < *exp => return Ok(*kind),
            Some(_) => "the access token has expired",
            None => "the access token is not valid",
        },
    };
    s.stats.lock().unwrap().unauthorized += 1;
    let (st, mut body) = error(401, 401, &format!("Unauthorized: {why}"));
    body["code"] = json!("401");
    let mut resp = reply(st, body, ids, false);
    resp.headers_mut().insert(
        "WWW-Authenticate",
        HeaderValue::from_str(&format!(
            "OAuth realm=urn:cpsvc:cpid:sandbox, error=\"invalid_token\", error_description=\"{why}\""
        ))
        .unwrap(),
    );
    Err(Box::new(resp))
}

pub(super) fn token_endpoint(s: &Shared, body: &Bytes) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    if let Some(other) = other_grant(s, &form) {
        return other;
    }
    let Some(presented) = form.get("refresh_token") else {
        return token_refusal(
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
        return token_refusal(
            "invalid_grant",
            "AADSTS70000: The provided value for the 'refresh_token' is invalid, expired or revoked.",
        );
    }
    book.issued += 1;
    let n = book.issued;
    let access = format!("sbx-at-{n}-{}", uuid::Uuid::new_v4().simple());
    let refresh = format!("sbx-rt-{n}-{}", uuid::Uuid::new_v4().simple());
    let lifetime = s.opts.token_lifetime;
    book.access.insert(
        access.clone(),
        (Instant::now() + lifetime, TokenKind::AppUser),
    );
    if presented != INITIAL_REFRESH_TOKEN {
        book.refresh.insert(presented.clone(), Some(Instant::now()));
    }
    book.refresh.insert(refresh.clone(), None);
    drop(book);
    granted(s, access, Some(refresh))
}

/// The token endpoint's answer issuing `access` (and `refresh`, for a grant that renews), counted
/// in the stats.
fn granted(s: &Shared, access: String, refresh: Option<String>) -> Response {
    s.stats.lock().unwrap().tokens_issued += 1;
    let mut body = json!({
        "token_type": "Bearer",
        "expires_in": s.opts.token_lifetime.as_secs().to_string(),
        "access_token": access,
    });
    if let Some(refresh) = refresh {
        body["refresh_token"] = json!(refresh);
    }
    body["resource"] = json!("https://api.partnercenter.microsoft.com");
    axum::Json(body).into_response()
}

/// The token endpoint's refusal, as Azure AD words it.
fn token_refusal(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(
            json!({"error": error, "error_description": description, "error_codes": [70000]}),
        ),
    )
        .into_response()
}

/// The answer to any grant but refresh_token: an app-only token for client_credentials, else a
/// refusal; `None` for the refresh_token grant.
fn other_grant(s: &Shared, form: &HashMap<String, String>) -> Option<Response> {
    match form.get("grant_type").map(String::as_str) {
        Some("refresh_token") => None,
        Some("client_credentials") if form.contains_key("client_id") => Some(app_only_grant(s)),
        Some("client_credentials") => Some(token_refusal(
            "invalid_request",
            "AADSTS900144: The request body must contain the parameter: 'client_id'.",
        )),
        _ => Some(token_refusal(
            "unsupported_grant_type",
            "AADSTS70003: The sandbox supports the refresh_token and client_credentials grants.",
        )),
    }
}

/// The client_credentials grant: an app-only access token, and no refresh token (an application
/// asks again with its secret).
fn app_only_grant(s: &Shared) -> Response {
    let mut book = s.tokens.lock().unwrap();
    book.issued += 1;
    let access = format!("sbx-app-{}-{}", book.issued, uuid::Uuid::new_v4().simple());
    let lifetime = s.opts.token_lifetime;
    book.access.insert(
        access.clone(),
        (Instant::now() + lifetime, TokenKind::AppOnly),
    );
    drop(book);
    granted(s, access, None)
}
