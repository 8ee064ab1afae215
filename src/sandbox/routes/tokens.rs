//! Tokens: the token endpoint (`POST /{tenant}/oauth2/token` and `/oauth2/v2.0/token`), which
//! issues App+User tokens for the refresh_token and device_code grants and app-only tokens for the
//! client_credentials grant, the device authorization endpoint, and the bearer check every `/v1`
//! call passes first.
//!
//! The device authorization grant follows the Microsoft identity platform's page on it (RFC 8628):
//! `POST /{tenant}/oauth2/v2.0/devicecode` hands out a device code and a user code; polls of the
//! token endpoint with `grant_type=urn:ietf:params:oauth:grant-type:device_code` are answered
//! `authorization_pending` until the user acts, `slow_down` when they come faster than the
//! interval, `authorization_declined` or `expired_token` when the user declined or the code expired,
//! and tokens once approved. There is no browser: `POST /_sandbox/device/approve` (or `decline`,
//! `expire`) with the form field `user_code` stands for what the user does on the sign-in page.
//!
//! The static token `sandbox` stands for a user's delegated (App+User) token, so the samples and a
//! plain `PCBULK_ACCESS_TOKEN=sandbox` reach every operation; `sandbox-app-only` stands for an
//! application's own token.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::common::{error, header, reply, CallIds};
use super::state::{TokenBook, TokenKind};
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
    if form.get("grant_type").map(String::as_str) == Some(DEVICE_GRANT) {
        return device_grant(s, &form);
    }
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
    if presented != INITIAL_REFRESH_TOKEN {
        book.refresh.insert(presented.clone(), Some(Instant::now()));
    }
    let (access, refresh) = issue_app_user(s, &mut book);
    drop(book);
    granted(s, access, Some(refresh))
}

/// A new App+User access token and the refresh token that renews it, entered in the book.
fn issue_app_user(s: &Shared, book: &mut TokenBook) -> (String, String) {
    book.issued += 1;
    let n = book.issued;
    let access = format!("sbx-at-{n}-{}", uuid::Uuid::new_v4().simple());
    let refresh = format!("sbx-rt-{n}-{}", uuid::Uuid::new_v4().simple());
    book.access.insert(
        access.clone(),
        (Instant::now() + s.opts.token_lifetime, TokenKind::AppUser),
    );
    book.refresh.insert(refresh.clone(), None);
    (access, refresh)
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
            "AADSTS70003: The sandbox supports the refresh_token, client_credentials and device_code \
             grants.",
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

/// The grant type of a device code poll.
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// How long a device code lasts: the identity platform's default, fifteen minutes.
const DEVICE_LIFETIME: Duration = Duration::from_secs(900);
/// How often a client may poll. The identity platform asks for 5 s; the sandbox asks for one, so
/// that a sign-in in a test takes a second, not five.
const DEVICE_INTERVAL: Duration = Duration::from_secs(1);
/// Device codes kept at once: a client asking for codes in a loop cannot grow the book without end.
const DEVICE_MAX: usize = 10_000;

/// What the user has done with a device code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeviceState {
    Pending,
    Approved,
    Declined,
    Expired,
    /// Approved and exchanged for tokens: a code is good for one grant.
    Redeemed,
}

/// A device code handed out by the devicecode endpoint.
pub(in crate::sandbox) struct Device {
    user_code: String,
    client_id: String,
    expires: Instant,
    last_poll: Option<Instant>,
    state: DeviceState,
}

/// `POST /{tenant}/oauth2/v2.0/devicecode`: a device code, the user code to show, and where the
/// user goes with it.
pub(super) fn devicecode_endpoint(s: &Shared, h: &HeaderMap, body: &Bytes) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    let Some(client_id) = form.get("client_id").filter(|c| !c.trim().is_empty()) else {
        return token_refusal(
            "invalid_request",
            "AADSTS900144: The request body must contain the parameter: 'client_id'.",
        );
    };
    if !form.contains_key("scope") {
        return token_refusal(
            "invalid_request",
            "AADSTS900144: The request body must contain the parameter: 'scope'.",
        );
    }
    let mut book = s.tokens.lock().unwrap();
    let now = Instant::now();
    book.devices.retain(|_, d| d.expires > now);
    if book.devices.len() >= DEVICE_MAX {
        return token_refusal("temporarily_unavailable", "Too many pending device codes.");
    }
    let device_code = format!("sbx-dc-{}", uuid::Uuid::new_v4().simple());
    let user_code = user_code();
    book.devices.insert(
        device_code.clone(),
        Device {
            user_code: user_code.clone(),
            client_id: client_id.clone(),
            expires: now + DEVICE_LIFETIME,
            last_poll: None,
            state: DeviceState::Pending,
        },
    );
    drop(book);
    let host = header(h, "Host")
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".:[]-".contains(c))
        })
        .unwrap_or("127.0.0.1");
    let approve = format!("http://{host}/_sandbox/device/approve");
    axum::Json(json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": format!("http://{host}/_sandbox/device"),
        "expires_in": DEVICE_LIFETIME.as_secs(),
        "interval": DEVICE_INTERVAL.as_secs(),
        "message": format!(
            "To sign in to the sandbox, approve the code {user_code} as the user would in a \
             browser: curl -d user_code={user_code} {approve}"
        ),
    }))
    .into_response()
}

/// Eight letters in two groups, as the identity platform shows them (`ABCD-EFGH`).
fn user_code() -> String {
    const LETTERS: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let mut code: String = (0..8)
        .map(|_| LETTERS[rand::random_range(0..LETTERS.len())] as char)
        .collect();
    code.insert(4, '-');
    code
}

/// A poll of the token endpoint with a device code.
fn device_grant(s: &Shared, form: &HashMap<String, String>) -> Response {
    let code = form.get("device_code").map(String::as_str).unwrap_or("");
    let mut book = s.tokens.lock().unwrap();
    let now = Instant::now();
    let Some(device) = book.devices.get_mut(code) else {
        return token_refusal(
            "bad_verification_code",
            "AADSTS70019: The device_code was not recognized.",
        );
    };
    if form.get("client_id") != Some(&device.client_id) {
        return token_refusal(
            "invalid_grant",
            "AADSTS70000: The device code was issued to another client_id.",
        );
    }
    if device.expires <= now && device.state == DeviceState::Pending {
        device.state = DeviceState::Expired;
    }
    let too_soon = device
        .last_poll
        .is_some_and(|at| now.duration_since(at) < DEVICE_INTERVAL / 2);
    device.last_poll = Some(now);
    match device.state {
        DeviceState::Pending if too_soon => token_refusal(
            "slow_down",
            "AADSTS70000: Polled faster than the interval; wait longer between polls.",
        ),
        DeviceState::Pending => token_refusal(
            "authorization_pending",
            "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        ),
        DeviceState::Declined => token_refusal(
            "authorization_declined",
            "AADSTS70000: The user declined the sign-in request.",
        ),
        DeviceState::Expired => token_refusal(
            "expired_token",
            "AADSTS70020: The provided value for the input parameter 'device_code' is expired.",
        ),
        DeviceState::Redeemed => token_refusal(
            "invalid_grant",
            "AADSTS54005: The device code was already redeemed.",
        ),
        DeviceState::Approved => {
            device.state = DeviceState::Redeemed;
            let (access, refresh) = issue_app_user(s, &mut book);
            drop(book);
            granted(s, access, Some(refresh))
        }
    }
}

/// `POST /_sandbox/device/{approve,decline,expire}` with the form field `user_code`: what the user
/// does on the sign-in page (or the clock does), for a pending code.
pub(super) fn device_action(s: &Shared, action: &str, body: &Bytes) -> Response {
    let next = match action {
        "approve" => DeviceState::Approved,
        "decline" => DeviceState::Declined,
        "expire" => DeviceState::Expired,
        _ => return (StatusCode::NOT_FOUND, "").into_response(),
    };
    let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    let wanted = form.get("user_code").map(|c| c.trim()).unwrap_or("");
    let mut book = s.tokens.lock().unwrap();
    let Some(device) = book
        .devices
        .values_mut()
        .find(|d| d.user_code.eq_ignore_ascii_case(wanted) && d.state == DeviceState::Pending)
    else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "no pending device code has that user_code"})),
        )
            .into_response();
    };
    device.state = next;
    axum::Json(json!({"user_code": device.user_code, "state": action})).into_response()
}
