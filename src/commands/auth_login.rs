//! `pcbulk auth login` and `pcbulk auth logout`: signing in with a device code (the OAuth device
//! authorization grant, as `az login --use-device-code` and `gh auth login` do) and keeping the
//! refresh token where later runs find it (`api::token_store`); forgetting it again.
//!
//! What the user sees (the URL and the user code) goes to stderr; the device code and the tokens
//! are never shown.

use std::time::{Duration, Instant};

use secrecy::SecretString;

use crate::api::auth::{token_tenant, DeviceCode, DeviceLogin, Poll};
use crate::api::token_store::{self, Login, Place};
use crate::api::CallError;
use crate::cli::{self, LoginArgs, TargetArgs};
use crate::error::{exit, usage, Error};

/// The client id a sign-in to the embedded sandbox uses when PCBULK_CLIENT_ID is unset: the
/// sandbox accepts any, and a demonstration should need no app registration.
const DEMO_CLIENT_ID: &str = "pcbulk-sandbox-demo";

/// Polls that may fail in a row (the authority unreachable for a moment) before the sign-in stops.
const POLL_FAILURES: u32 = 3;

/// The longest wait between polls, however often the authority says `slow_down`.
const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// Where to sign in.
pub struct SignIn {
    /// `--sandbox`: the embedded simulator, which approves the code itself; nothing is kept.
    pub sandbox: bool,
    pub authority: String,
    pub tenant: String,
    /// PCBULK_CLIENT_ID.
    pub client_id: Option<String>,
}

/// Which sign-in to forget.
pub struct SignOut {
    pub sandbox: bool,
    pub authority: String,
    /// PCBULK_TENANT_ID and PCBULK_CLIENT_ID, which choose when several sign-ins were kept.
    pub tenant: Option<String>,
    pub client_id: Option<String>,
}

/// Signs in and keeps the refresh token; exit 0 once kept.
pub async fn login(s: SignIn) -> Result<u8, Error> {
    let sandbox = match s.sandbox {
        true => Some(
            crate::sandbox::start(crate::sandbox::Options::default())
                .await
                .map_err(|e| Error::usage(format!("cannot start the sandbox: {e:#}")))?,
        ),
        false => None,
    };
    let authority = sandbox
        .as_ref()
        .map_or_else(|| s.authority.clone(), |sb| sb.base_url());
    let client_id = match (s.client_id, &sandbox) {
        (Some(c), _) => c,
        (None, Some(_)) => DEMO_CLIENT_ID.to_owned(),
        (None, None) => usage!(
            "no client id: set PCBULK_CLIENT_ID to the application (client) id of the partner's app \
             registration in Microsoft Entra ID, with \"Allow public client flows\" turned on and \
             the Partner Center API's user_impersonation permission (or try `pcbulk auth login \
             --sandbox`)"
        ),
    };
    let flow = DeviceLogin::new(&authority, &s.tenant, &client_id);
    let code = flow.start().await.map_err(call_error)?;
    show(&code);
    if let Some(sb) = &sandbox {
        approve_in_sandbox(&sb.base_url(), &code.user_code).await?;
    }
    let (access, refresh) = tokio::select! {
        r = wait(&flow, &code) => r?,
        _ = tokio::signal::ctrl_c() => {
            return Err(Error::Interrupted("sign-in stopped: nothing was kept".into()))
        }
    };
    if let Some(sb) = sandbox {
        println!(
            "signed in to the embedded sandbox. Nothing was kept: it ends with this command. To \
             try a sign-in that is kept, run `pcbulk sandbox` in another terminal, then \
             PCBULK_AUTHORITY=http://127.0.0.1:8765 PCBULK_CLIENT_ID=demo pcbulk auth login \
             --base-url http://127.0.0.1:8765"
        );
        sb.shutdown().await;
        return Ok(exit::OK);
    }
    let login = Login {
        token_tenant: token_tenant(&access),
        authority,
        tenant: s.tenant,
        client_id,
        place: Place::Keyring,
    };
    keep(login, &refresh)
}

/// Keeps the refresh token and says where.
fn keep(login: Login, refresh: &SecretString) -> Result<u8, Error> {
    let (login, note) = token_store::keep(login, refresh).map_err(|e| {
        Error::usage(format!(
            "signed in, but the refresh token could not be kept: {e}"
        ))
    })?;
    if let Some(note) = note {
        eprintln!("pcbulk: {note}");
    }
    println!("signed in to {}", login.describe());
    println!("the refresh token is kept in {}", login.place);
    println!(
        "apply, plan, export and auth status use it and keep it renewed; variables in the \
         environment (PCBULK_ACCESS_TOKEN, PCBULK_REFRESH_TOKEN) win over it; `pcbulk auth \
         logout` forgets it"
    );
    Ok(exit::OK)
}

/// Tells the user where to go and what to type (stderr: the result lines are stdout's).
fn show(code: &DeviceCode) {
    let message = code.message.clone().unwrap_or_else(|| {
        format!(
            "To sign in, open {} in a browser and enter the code {}.",
            code.verification_uri, code.user_code
        )
    });
    eprintln!("{message}");
    eprintln!(
        "Waiting for the sign-in (the code expires in {} min; Ctrl-C stops)...",
        code.expires_in.as_secs().div_ceil(60)
    );
}

/// Polls until the user has signed in, declined, or the code expired: the access and refresh
/// tokens.
async fn wait(
    flow: &DeviceLogin,
    code: &DeviceCode,
) -> Result<(SecretString, SecretString), Error> {
    let deadline = Instant::now() + code.expires_in;
    let mut interval = code.interval;
    let mut failures = 0;
    loop {
        tokio::time::sleep(interval).await;
        if Instant::now() >= deadline {
            usage!(
                "the code expired before the sign-in was finished: run `pcbulk auth login` again"
            );
        }
        match flow.poll(code).await {
            Ok(Poll::Pending) => failures = 0,
            // RFC 8628 §3.5: five seconds more from now on.
            Ok(Poll::SlowDown) => interval = (interval + Duration::from_secs(5)).min(MAX_INTERVAL),
            Ok(Poll::Granted { access, refresh }) => return Ok((access, refresh)),
            Ok(Poll::Ended(why)) => usage!("sign-in ended: {why}"),
            Err(e @ (CallError::Unreachable(_) | CallError::Transport { .. }))
                if failures + 1 < POLL_FAILURES =>
            {
                failures += 1;
                tracing::warn!("a poll of the token authority failed ({e}); trying again");
            }
            Err(e) => return Err(call_error(e)),
        }
    }
}

/// A failed call to the authority: unreachable is exit 3 (as for a run), a refusal exit 2.
fn call_error(e: CallError) -> Error {
    match e {
        CallError::Unreachable(m) | CallError::Transport { message: m, .. } => {
            Error::Aborted(format!("sign-in failed: {m}"))
        }
        other => Error::usage(format!("sign-in failed: {other}")),
    }
}

/// The embedded sandbox has no sign-in page: it is told to approve the code, as the user would.
async fn approve_in_sandbox(base_url: &str, user_code: &str) -> Result<(), Error> {
    let sent = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a plain reqwest client builds")
        .post(format!("{base_url}/_sandbox/device/approve"))
        .form(&[("user_code", user_code)])
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => {
            eprintln!("(the embedded sandbox approves the code itself)");
            Ok(())
        }
        _ => Err(Error::usage(
            "the embedded sandbox did not approve the code",
        )),
    }
}

/// Forgets a sign-in; exit 0 whether or not there was one.
pub fn logout(s: SignOut) -> Result<u8, Error> {
    if s.sandbox {
        println!("the embedded sandbox keeps no sign-in: nothing to remove");
        return Ok(exit::OK);
    }
    let removed = token_store::forget(&s.authority, s.tenant.as_deref(), s.client_id.as_deref())
        .map_err(Error::usage)?;
    match removed {
        Some(login) => println!(
            "signed out of {}: its refresh token was removed from {}",
            login.describe(),
            login.place
        ),
        None => println!("no sign-in is kept for {}: nothing removed", s.authority),
    }
    Ok(exit::OK)
}

// The command line's arguments as this command takes them (the conversion lives beside the
// command, so the command line imports no command).
impl TryFrom<&LoginArgs> for SignIn {
    type Error = Error;

    fn try_from(a: &LoginArgs) -> Result<Self, Error> {
        Ok(SignIn {
            sandbox: a.target.sandbox,
            authority: match a.target.sandbox {
                true => String::new(),
                false => a.target.authority()?,
            },
            tenant: cli::tenant(&a.tenant)?,
            client_id: cli::env("PCBULK_CLIENT_ID").map(|c| c.trim().to_owned()),
        })
    }
}

impl TryFrom<&TargetArgs> for SignOut {
    type Error = Error;

    fn try_from(a: &TargetArgs) -> Result<Self, Error> {
        Ok(SignOut {
            sandbox: a.sandbox,
            authority: match a.sandbox {
                true => String::new(),
                false => a.authority()?,
            },
            tenant: cli::env("PCBULK_TENANT_ID").map(|t| t.trim().to_owned()),
            client_id: cli::env("PCBULK_CLIENT_ID").map(|c| c.trim().to_owned()),
        })
    }
}
