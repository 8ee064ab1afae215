//! `pcbulk auth status`: do the configured credentials work, and for what? A token, one harmless
//! GET, and what the token says of itself — never the token.

use std::time::{Duration, SystemTime};

use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::api::auth::{TokenFacts, Tokens};
use crate::api::http::{CallIds, HttpTransport, Transport};
use crate::api::{Request, ServiceError};
use crate::config::Target;
use crate::error::{exit, Error};

/// The call that proves the token works and changes nothing: the partner's own support profile.
const PROBE: &str = "/profiles/support";

/// Prints what the credentials give; exit 0 when the service accepted them, 3 with the reason.
pub async fn status(target: Target, cloud: &str) -> Result<u8, Error> {
    let reached = super::reach(target).await?;
    println!("target:   {} ({cloud})", reached.base_url);
    let tokens = Tokens::new(reached.credentials);
    let token = match tokens.access_token().await {
        Ok(t) => t,
        Err(e) => {
            println!("token:    not obtained: {e}");
            return Ok(exit::ABORTED);
        }
    };
    let mut facts = tokens.facts().await;
    if reached.sandbox.is_some() {
        facts.source = "the embedded sandbox, which accepts its own token";
    }
    print_facts(&facts);
    let transport = HttpTransport::new(&reached.base_url, Duration::from_secs(30))
        .map_err(|e| Error::usage(format!("cannot set up HTTP: {e:#}")))?;
    let ids = CallIds {
        request_id: Uuid::new_v4(),
        correlation_id: Uuid::new_v4(),
    };
    let answer = transport
        .send(&Request::get(PROBE), ids, token.expose_secret())
        .await;
    let code = match answer {
        Ok(r) if r.is_success() => {
            println!(
                "check:    GET /v1{PROBE} answered {}: the credentials work",
                r.status
            );
            exit::OK
        }
        Ok(r) => {
            let e =
                ServiceError::from_response_masking(r.status, &r.body, &[token.expose_secret()]);
            let hint = match r.status {
                401 => ": the service refused the token; set fresh credentials",
                403 => {
                    ": the user or application lacks Partner Center rights (an admin or agent role)"
                }
                _ => "",
            };
            println!(
                "check:    GET /v1{PROBE} refused ({}): {}{hint}",
                r.status, e.message
            );
            exit::ABORTED
        }
        Err(e) => {
            println!("check:    GET /v1{PROBE} got no answer: {e}");
            exit::ABORTED
        }
    };
    if let Some(s) = reached.sandbox {
        s.shutdown().await;
    }
    Ok(code)
}

fn print_facts(f: &TokenFacts) {
    println!("token:    from {}", f.source);
    println!(
        "tenant:   {}",
        f.tenant
            .as_deref()
            .unwrap_or("unknown (the token does not say)")
    );
    let kind = match f.app_user {
        Some(true) => "App+User (a user's delegated token), as the updates need",
        Some(false) => {
            "app-only: Partner Center refuses these updates with an app-only token (900329); \
             use App+User credentials"
        }
        None => "unknown (the token does not say)",
    };
    println!("kind:     {kind}");
    match f.expires_at {
        Some(at) => {
            let left = at
                .duration_since(SystemTime::now())
                .map(|d| format!("in {} min", d.as_secs() / 60))
                .unwrap_or_else(|_| "already expired".into());
            println!("expires:  {} ({left})", httpdate::fmt_http_date(at));
        }
        None => println!("expires:  unknown (the token does not say)"),
    }
}
