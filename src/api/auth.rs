//! Access tokens: a ready one from the environment, or App+User tokens obtained and renewed from a
//! refresh token. Tokens are `SecretString`s: they are never printed, logged or put in an error.

use std::time::{Duration, Instant, SystemTime};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::token_store::{self, Keeper};
use super::CallError;

/// The resource Partner Center tokens are issued for.
pub const RESOURCE: &str = "https://api.partnercenter.microsoft.com";

/// Where tokens come from.
pub enum Credentials {
    /// A bearer token used as is (`PCBULK_ACCESS_TOKEN`); a 401 cannot be cured by a refresh.
    Static(SecretString),
    /// App+User: a refresh token exchanged at `{authority}/{tenant}/oauth2/token`.
    Refresh {
        token_url: String,
        client_id: String,
        client_secret: Option<SecretString>,
        refresh_token: SecretString,
        /// Where the newest refresh token is kept between runs (each grant returns a new one; a
        /// monthly job that keeps using the first dies after 90 days): `PCBULK_TOKEN_CACHE`, or
        /// the sign-in `pcbulk auth login` kept.
        keep: Option<Keeper>,
    },
}

/// What to do about a token cache path pcbulk refuses (see [`crate::fsafe`]).
const CACHE_FIX: &str = "set PCBULK_TOKEN_CACHE to another path";

/// A refresh token is a few kilobytes; a cache file far larger is not one.
const CACHE_MAX: u64 = 64 * 1024;

/// The token cache to use this run, and the refresh token it holds, if any. A path pcbulk would not
/// write (a link, a device, a file with other names) is not read either: it is named in a warning
/// and not used this run.
fn open_cache(path: &std::path::Path) -> (Option<std::path::PathBuf>, Option<SecretString>) {
    use std::io::Read;
    let mut text = String::new();
    let read = crate::fsafe::open_read(path, CACHE_FIX)
        .and_then(|f| f.take(CACHE_MAX).read_to_string(&mut text));
    match read {
        Ok(_) => {
            let t = text.trim();
            let token = (!t.is_empty()).then(|| SecretString::from(t.to_owned()));
            (Some(path.to_owned()), token)
        }
        Err(e) if crate::fsafe::refusal(&e).is_some() => {
            tracing::warn!(
                "the token cache {} is not used this run: {e}",
                path.display()
            );
            (None, None)
        }
        // Not there yet (the first run), or unreadable: written when a grant brings a new token.
        Err(_) => (Some(path.to_owned()), None),
    }
}

/// Replaces the cache with a new refresh token: written to a fresh file readable by the owner only,
/// flushed to disk, then renamed over the old one, so the cache is never half written and never
/// written through a link.
fn write_cache(path: &std::path::Path, token: &SecretString) -> std::io::Result<()> {
    use crate::fsafe::{replace, Access};
    replace(
        path,
        token.expose_secret().as_bytes(),
        Access::Owner,
        CACHE_FIX,
    )
}

struct Cached {
    access: SecretString,
    /// When to stop using it: a little before the service would refuse it.
    renew_at: Instant,
    /// When the authority said it expires.
    expires_at: SystemTime,
}

/// Hands out access tokens to the dispatcher and renews them when they near expiry or are refused.
pub struct Tokens {
    creds: Credentials,
    /// Where the newest refresh token is kept, unless the path was refused.
    keep: Option<Keeper>,
    cache: Mutex<Option<Cached>>,
    /// Refresh tokens to try, newest first (the cached one, then the environment's): each grant
    /// returns a new one, which goes first.
    refresh: Mutex<Vec<SecretString>>,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct TokenRefusal {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// The client for token requests: the one HTTP client (`api::http`), which never follows a
/// redirect (that would send the refresh token and the client secret to another address: a 3xx is
/// a refused token request) and reaches a loopback authority (the sandbox's) directly.
fn token_client(creds: &Credentials) -> reqwest::Client {
    let url = match creds {
        Credentials::Refresh { token_url, .. } => token_url.as_str(),
        Credentials::Static(_) => RESOURCE,
    };
    crate::api::http::token_client(url).expect("the HTTP client builds")
}

impl Tokens {
    pub fn new(creds: Credentials) -> Self {
        let (keep, refresh) = match &creds {
            Credentials::Refresh {
                refresh_token,
                keep,
                ..
            } => {
                // A sign-in's token was read from where it is kept; a cache beside the
                // environment's token may hold a newer one.
                let (keep, cached) = match keep {
                    Some(Keeper::Cache(path)) => {
                        let (path, cached) = open_cache(path);
                        (path.map(Keeper::Cache), cached)
                    }
                    other => (other.clone(), None),
                };
                let refresh = cached.into_iter().chain([refresh_token.clone()]);
                (keep, refresh.collect())
            }
            Credentials::Static(_) => (None, Vec::new()),
        };
        let http = token_client(&creds);
        Tokens {
            creds,
            keep,
            cache: Mutex::new(None),
            refresh: Mutex::new(refresh),
            http,
        }
    }

    /// A token good for the next call.
    pub async fn access_token(&self) -> Result<SecretString, CallError> {
        match &self.creds {
            Credentials::Static(t) => Ok(t.clone()),
            Credentials::Refresh { .. } => {
                let mut cache = self.cache.lock().await;
                if let Some(c) = cache.as_ref() {
                    if Instant::now() < c.renew_at {
                        return Ok(c.access.clone());
                    }
                }
                let fresh = self.grant().await?;
                let access = fresh.access.clone();
                *cache = Some(fresh);
                Ok(access)
            }
        }
    }

    /// Called after a 401 with the token that was refused. Returns whether a new token is now
    /// available (false for a static token, which cannot be renewed).
    pub async fn renew(&self, refused: &SecretString) -> Result<bool, CallError> {
        if matches!(self.creds, Credentials::Static(_)) {
            return Ok(false);
        }
        let mut cache = self.cache.lock().await;
        let already_renewed = cache
            .as_ref()
            .is_some_and(|c| c.access.expose_secret() != refused.expose_secret());
        if !already_renewed {
            *cache = Some(self.grant().await?);
        }
        Ok(true)
    }

    async fn grant(&self) -> Result<Cached, CallError> {
        let mut candidates = self.refresh.lock().await;
        loop {
            let refresh = candidates
                .first()
                .cloned()
                .ok_or_else(|| CallError::Unauthorized("no refresh token".into()))?;
            match self.exchange(&refresh).await {
                Ok((cached, new_refresh)) => {
                    if let Some(new) = new_refresh {
                        self.keep_newest(&new);
                        *candidates = vec![new];
                    }
                    return Ok(cached);
                }
                // The cached token may be older than one an admin has set since: try the next.
                Err(e) if candidates.len() > 1 => {
                    tracing::warn!("a refresh token was refused ({e}); trying the next one");
                    candidates.remove(0);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes a renewed refresh token back where it is kept. The run goes on with it whatever
    /// happens here; only the next run would miss it.
    fn keep_newest(&self, new: &SecretString) {
        let failed = match &self.keep {
            None => return,
            Some(Keeper::Cache(path)) => write_cache(path, new)
                .err()
                .map(|e| format!("the token cache {}: {e}", path.display())),
            Some(Keeper::Login(login)) => token_store::rotate(login, new)
                .err()
                .map(|e| format!("the sign-in to {}: {e}", login.describe())),
        };
        if let Some(e) = failed {
            tracing::warn!(
                "cannot write {e}; the newest refresh token is not kept for the next run"
            );
        }
    }

    /// One refresh grant: the access token, and the new refresh token if the authority sent one.
    async fn exchange(
        &self,
        refresh: &SecretString,
    ) -> Result<(Cached, Option<SecretString>), CallError> {
        let Credentials::Refresh {
            token_url,
            client_id,
            client_secret,
            ..
        } = &self.creds
        else {
            unreachable!("exchange is only called for refresh credentials")
        };
        let mut form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh.expose_secret().to_owned()),
            ("client_id", client_id.clone()),
            ("resource", RESOURCE.to_owned()),
        ];
        if let Some(s) = client_secret {
            form.push(("client_secret", s.expose_secret().to_owned()));
        }
        let resp = self
            .http
            .post(token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| crate::api::http::token_error(e, token_url))?;
        let status = resp.status();
        let body = crate::api::http::read_bounded_reqwest(resp).await?;
        if !status.is_success() {
            return Err(refused(status, &body, &form));
        }
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|_| {
            CallError::Unauthorized("the token authority's answer was not a token response".into())
        })?;
        Ok(granted(answer))
    }
}

/// A refused grant as the user reads it: the authority's words, with whatever secret of the
/// form it echoes masked, since its message goes to the terminal and the logs.
fn refused(status: reqwest::StatusCode, body: &[u8], form: &[(&str, String)]) -> CallError {
    let mut refusal: TokenRefusal = serde_json::from_slice(body).unwrap_or(TokenRefusal {
        error: format!("HTTP {}", status.as_u16()),
        error_description: String::new(),
    });
    let secrets: Vec<&str> = form
        .iter()
        .filter(|(k, _)| matches!(*k, "refresh_token" | "client_secret"))
        .map(|(_, v)| v.as_str())
        .collect();
    refusal.error = crate::api::error::clean(&refusal.error, &secrets);
    refusal.error_description = crate::api::error::clean(&refusal.error_description, &secrets);
    CallError::Unauthorized(explain_refusal(&refusal))
}

/// A granted access token with when to renew it: a little before it expires (a fifth of its
/// lifetime early, at most five minutes), so no call goes out with a token about to lapse; and
/// the new refresh token if the authority sent one. Takes the answer whole so no copy of either
/// token is left outside a secret.
fn granted(answer: TokenAnswer) -> (Cached, Option<SecretString>) {
    let lifetime = answer
        .expires_in
        .as_ref()
        .and_then(|v| v.as_u64().or_else(|| v.as_str()?.trim().parse().ok()))
        .unwrap_or(3600);
    let margin = (lifetime / 5).min(300);
    let cached = Cached {
        access: SecretString::from(answer.access_token),
        renew_at: Instant::now() + Duration::from_secs(lifetime.saturating_sub(margin)),
        expires_at: SystemTime::now() + Duration::from_secs(lifetime),
    };
    (cached, answer.refresh_token.map(SecretString::from))
}

/// What can be told of the credentials in use, for `pcbulk auth status`: never the token itself.
#[derive(Debug, Default)]
pub struct TokenFacts {
    /// The token's tenant (`tid`), or the tenant the refresh grant went to.
    pub tenant: Option<String>,
    pub expires_at: Option<SystemTime>,
    /// App+User (a user's delegated token), as Partner Center's updates need; `None` when the
    /// token does not say.
    pub app_user: Option<bool>,
    /// Where the token came from, in the user's words.
    pub source: &'static str,
}

impl Tokens {
    /// What the current access token says of itself (after [`Tokens::access_token`]).
    pub async fn facts(&self) -> TokenFacts {
        let (access, expires_at, source, tenant) = match &self.creds {
            Credentials::Static(t) => (t.clone(), None, "PCBULK_ACCESS_TOKEN (used as is)", None),
            Credentials::Refresh {
                token_url, keep, ..
            } => {
                let cache = self.cache.lock().await;
                let Some(c) = cache.as_ref() else {
                    return TokenFacts::default();
                };
                // `{authority}/{tenant}/oauth2/token`
                let tenant = token_url
                    .trim_end_matches("/oauth2/token")
                    .rsplit('/')
                    .next()
                    .map(str::to_owned);
                (
                    c.access.clone(),
                    Some(c.expires_at),
                    match keep {
                        Some(Keeper::Login(_)) => {
                            "the sign-in kept by `pcbulk auth login` (App+User, renewed as needed)"
                        }
                        _ => "PCBULK_REFRESH_TOKEN (App+User, renewed as needed)",
                    },
                    tenant,
                )
            }
        };
        let claims = jwt_claims(access.expose_secret());
        let claim = |k: &str| claims.as_ref().and_then(|c| c.get(k));
        TokenFacts {
            tenant: claim("tid")
                .and_then(|v| v.as_str())
                .map(|s| crate::api::error::clean(s, &[]))
                .or(tenant),
            expires_at: claim("exp")
                .and_then(serde_json::Value::as_u64)
                .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s.min(u32::MAX as u64)))
                .or(expires_at),
            // A user's token carries scopes (`scp`); an application's only roles.
            app_user: claims
                .as_ref()
                .map(|c| c.get("scp").is_some())
                .or(match self.creds {
                    Credentials::Refresh { .. } => Some(true),
                    Credentials::Static(_) => None,
                }),
            source,
        }
    }
}

/// The claims of a JWT access token, read without checking its signature (the service checks it;
/// this only describes it). `None` when the token is not a JWT.
fn jwt_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    if payload.len() > 64 * 1024 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Turns a token refusal into advice; the description is the authority's own and carries no secret.
fn explain_refusal(r: &TokenRefusal) -> String {
    let d = &r.error_description;
    let first_line = d.lines().next().unwrap_or("").trim();
    let advice = if d.contains("AADSTS50076") || d.contains("AADSTS50078") {
        "multi-factor authentication has expired: consent again interactively and set a new PCBULK_REFRESH_TOKEN"
    } else if d.contains("AADSTS700007") {
        "the refresh token was issued to another application: check PCBULK_CLIENT_ID"
    } else if r.error == "invalid_grant" {
        "the refresh token is expired or revoked: sign in again and set a new PCBULK_REFRESH_TOKEN"
    } else if r.error == "invalid_client" {
        "the application was refused: check PCBULK_CLIENT_ID and PCBULK_CLIENT_SECRET"
    } else {
        "check the PCBULK_* credentials"
    };
    if first_line.is_empty() {
        format!(
            "the token authority refused the refresh ({}): {advice}",
            r.error
        )
    } else {
        format!(
            "the token authority refused the refresh ({}: {first_line}): {advice}",
            r.error
        )
    }
}

/// What a sign-in asks for: Partner Center as the user, and a refresh token to keep.
pub const LOGIN_SCOPE: &str =
    "https://api.partnercenter.microsoft.com/user_impersonation offline_access";

/// The grant type of a device code poll (RFC 8628).
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A device code from the authority: what to show the user, and how to poll.
pub struct DeviceCode {
    /// Identifies the sign-in to the token endpoint: a secret, never shown.
    device_code: SecretString,
    /// What the user types on the sign-in page: shown (not a secret).
    pub user_code: String,
    pub verification_uri: String,
    /// The authority's own instructions, when it sent them.
    pub message: Option<String>,
    pub expires_in: Duration,
    pub interval: Duration,
}

/// One poll's answer.
pub enum Poll {
    /// The user has not finished: ask again after the interval.
    Pending,
    /// Polled too fast: wait longer from now on.
    SlowDown,
    Granted {
        access: SecretString,
        refresh: SecretString,
    },
    /// The sign-in ended without tokens (declined, expired, refused): why, and what to do.
    Ended(String),
}

/// The device authorization grant against `{authority}/{tenant}/oauth2/v2.0`, as the Microsoft
/// identity platform documents it (see docs/device-code-sign-in.md).
pub struct DeviceLogin {
    http: reqwest::Client,
    base: String,
    client_id: String,
}

#[derive(Deserialize)]
struct DeviceAnswer {
    device_code: String,
    user_code: String,
    verification_uri: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    interval: Option<serde_json::Value>,
}

/// Seconds as the authority sends them (a number or a string), within `min..=max`.
fn seconds(v: Option<&serde_json::Value>, default: u64, min: u64, max: u64) -> Duration {
    let n = v
        .and_then(|v| v.as_u64().or_else(|| v.as_str()?.trim().parse().ok()))
        .unwrap_or(default);
    Duration::from_secs(n.clamp(min, max))
}

impl DeviceLogin {
    pub fn new(authority: &str, tenant: &str, client_id: &str) -> Self {
        let base = format!("{authority}/{}/oauth2/v2.0", tenant.trim());
        let mut b = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none());
        if crate::target::is_loopback(&base) {
            b = b.no_proxy();
        }
        DeviceLogin {
            http: b.build().expect("a plain reqwest client builds"),
            base,
            client_id: client_id.trim().to_owned(),
        }
    }

    /// Asks for a device code and the user code to show.
    pub async fn start(&self) -> Result<DeviceCode, CallError> {
        let form = [
            ("client_id", self.client_id.as_str()),
            ("scope", LOGIN_SCOPE),
        ];
        let (ok, body) = self.post("devicecode", &form).await?;
        if !ok {
            return Err(CallError::Unauthorized(refusal_words(&body, &[])));
        }
        let a: DeviceAnswer = serde_json::from_slice(&body).map_err(|_| {
            CallError::Decode("the authority's answer was not a device code response".into())
        })?;
        let shown = |s: &str, max: usize| {
            let s = crate::api::error::clean(s.trim(), &[&a.device_code]);
            s.chars().take(max).collect::<String>()
        };
        Ok(DeviceCode {
            user_code: shown(&a.user_code, 64),
            verification_uri: shown(&a.verification_uri, 512),
            message: a.message.as_deref().map(|m| shown(m, 1000)),
            expires_in: seconds(a.expires_in.as_ref(), 900, 1, 3600),
            interval: seconds(a.interval.as_ref(), 5, 1, 60),
            device_code: SecretString::from(a.device_code),
        })
    }

    /// Asks the token endpoint whether the user has signed in.
    pub async fn poll(&self, code: &DeviceCode) -> Result<Poll, CallError> {
        let secret = code.device_code.expose_secret();
        let form = [
            ("grant_type", DEVICE_GRANT),
            ("client_id", self.client_id.as_str()),
            ("device_code", secret),
        ];
        let (ok, body) = self.post("token", &form).await?;
        if ok {
            let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|_| {
                CallError::Decode("the authority's answer was not a token response".into())
            })?;
            let Some(refresh) = answer.refresh_token else {
                return Ok(Poll::Ended(
                    "the authority issued no refresh token (the offline_access scope was not \
                     granted), so there is nothing to keep"
                        .into(),
                ));
            };
            return Ok(Poll::Granted {
                access: SecretString::from(answer.access_token),
                refresh: SecretString::from(refresh),
            });
        }
        let error = serde_json::from_slice::<TokenRefusal>(&body)
            .map(|r| r.error)
            .unwrap_or_default();
        Ok(match error.as_str() {
            "authorization_pending" => Poll::Pending,
            "slow_down" => Poll::SlowDown,
            "authorization_declined" => {
                Poll::Ended("the sign-in was declined on the sign-in page".into())
            }
            "expired_token" => Poll::Ended(
                "the code expired before the sign-in was finished: run `pcbulk auth login` \
                 again"
                    .into(),
            ),
            _ => Poll::Ended(refusal_words(&body, &[secret])),
        })
    }

    /// A form POST to `{base}/{endpoint}`, sent as the refresh grant is: whether it succeeded,
    /// and the answer's bytes (bounded).
    async fn post(
        &self,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> Result<(bool, Vec<u8>), CallError> {
        let resp = self
            .http
            .post(format!("{}/{endpoint}", self.base))
            .form(form)
            .send()
            .await
            .map_err(|e| {
                CallError::Unreachable(format!(
                    "could not reach the token authority{}",
                    if e.is_timeout() { " (timed out)" } else { "" }
                ))
            })?;
        let ok = resp.status().is_success();
        let body = crate::api::http::read_bounded_reqwest(resp).await?;
        Ok((ok, body))
    }
}

/// A sign-in refusal in words, with the authority's description (secrets masked) and advice.
fn refusal_words(body: &[u8], secrets: &[&str]) -> String {
    let r: TokenRefusal = serde_json::from_slice(body).unwrap_or(TokenRefusal {
        error: "an answer that is not a token response".into(),
        error_description: String::new(),
    });
    let error = crate::api::error::clean(&r.error, secrets);
    let d = crate::api::error::clean(&r.error_description, secrets);
    let first = d.lines().next().unwrap_or("").trim();
    let advice = if d.contains("AADSTS7000218") {
        "the app registration does not allow public client flows: turn on \"Allow public client \
         flows\" in its Authentication settings"
    } else if d.contains("AADSTS700016") || error == "unauthorized_client" {
        "the application was not found in that tenant: check PCBULK_CLIENT_ID and --tenant"
    } else if d.contains("AADSTS65001") {
        "the application has no consent for Partner Center: grant it the Partner Center API's \
         user_impersonation permission"
    } else {
        "check PCBULK_CLIENT_ID, --tenant and PCBULK_AUTHORITY"
    };
    match first.is_empty() {
        true => format!("the authority refused the sign-in ({error}): {advice}"),
        false => format!("the authority refused the sign-in ({error}: {first}): {advice}"),
    }
}

/// The tenant an access token was issued in (`tid`), when it is a JWT that says.
pub fn token_tenant(access: &SecretString) -> Option<String> {
    let claims = jwt_claims(access.expose_secret())?;
    let tid = claims.get("tid")?.as_str()?;
    let ok = !tid.is_empty()
        && tid.len() <= 64
        && tid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    ok.then(|| tid.to_owned())
}
