//! Access tokens: a ready one from the environment, or App+User tokens obtained and renewed from a
//! refresh token. Tokens are `SecretString`s: they are never printed, logged or put in an error.

use std::time::{Duration, Instant, SystemTime};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;

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
        /// `PCBULK_TOKEN_CACHE`: where the newest refresh token is kept between runs (each grant
        /// returns a new one; a monthly job that keeps using the first dies after 90 days).
        token_cache: Option<std::path::PathBuf>,
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
    token_cache: Option<std::path::PathBuf>,
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
        let (token_cache, refresh) = match &creds {
            Credentials::Refresh {
                refresh_token,
                token_cache,
                ..
            } => {
                let (cache, cached) = match token_cache {
                    Some(path) => open_cache(path),
                    None => (None, None),
                };
                let refresh = cached.into_iter().chain([refresh_token.clone()]);
                (cache, refresh.collect())
            }
            Credentials::Static(_) => (None, Vec::new()),
        };
        let http = token_client(&creds);
        Tokens {
            creds,
            token_cache,
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
                        // The run goes on with the new token; only the next run would miss it.
                        if let Some(path) = &self.token_cache {
                            if let Err(e) = write_cache(path, &new) {
                                tracing::warn!(
                                    "cannot write the token cache {}: {e}; the newest refresh token \
                                     is not kept for the next run",
                                    path.display()
                                );
                            }
                        }
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
            .map_err(crate::api::http::token_error)?;
        let status = resp.status();
        let body = crate::api::http::read_bounded_reqwest(resp).await?;
        if !status.is_success() {
            let mut refusal: TokenRefusal = serde_json::from_slice(&body).unwrap_or(TokenRefusal {
                error: format!("HTTP {}", status.as_u16()),
                error_description: String::new(),
            });
            // The authority's words, with whatever secret it echoes masked.
            let secrets: Vec<&str> = form
                .iter()
                .filter(|(k, _)| matches!(*k, "refresh_token" | "client_secret"))
                .map(|(_, v)| v.as_str())
                .collect();
            refusal.error = crate::api::error::clean(&refusal.error, &secrets);
            refusal.error_description =
                crate::api::error::clean(&refusal.error_description, &secrets);
            return Err(CallError::Unauthorized(explain_refusal(&refusal)));
        }
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|_| {
            CallError::Unauthorized("the token authority's answer was not a token response".into())
        })?;
        let lifetime = answer
            .expires_in
            .as_ref()
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.trim().parse().ok()))
            .unwrap_or(3600);
        // Renew a little before expiry: a fifth of the lifetime early, at most five minutes.
        let margin = (lifetime / 5).min(300);
        let cached = Cached {
            access: SecretString::from(answer.access_token),
            renew_at: Instant::now() + Duration::from_secs(lifetime.saturating_sub(margin)),
            expires_at: SystemTime::now() + Duration::from_secs(lifetime),
        };
        Ok((cached, answer.refresh_token.map(SecretString::from)))
    }
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
            Credentials::Refresh { token_url, .. } => {
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
                    "PCBULK_REFRESH_TOKEN (App+User, renewed as needed)",
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
