//! Where `pcbulk auth login` keeps a refresh token between runs, and how later runs find it.
//!
//! The token itself goes to the operating system's credential store (Windows Credential Manager,
//! the macOS Keychain, the Secret Service) through the `keyring` crate, or, where there is none (a
//! headless cron machine) or `PCBULK_TOKEN_STORE=file` says so, to an owner-only file: the one
//! `PCBULK_TOKEN_CACHE` names, else one per sign-in in pcbulk's state folder. A credential store
//! cannot be listed, so a list of sign-ins (`logins.json` in the state folder, owner-only) says
//! which exist and where each token is; it holds no secret.
//!
//! A sign-in is keyed by authority, tenant and client id: a sandbox's (a loopback authority) never
//! replaces a production one, nor one cloud's another's.

use std::io;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The credential store's service name for pcbulk's entries.
const SERVICE: &str = "pcbulk";
/// The list of sign-ins, in the state folder.
const LIST: &str = "logins.json";
/// The list is a few lines per sign-in; one far larger is not pcbulk's.
const LIST_MAX: u64 = 1024 * 1024;
/// What to do about a token file or list pcbulk refuses (see [`crate::fsafe`]).
const FIX: &str = "remove it, or set PCBULK_TOKEN_CACHE to another path";

/// Where a sign-in's refresh token is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "store", rename_all = "lowercase")]
pub enum Place {
    /// The operating system's credential store, under service `pcbulk` and the sign-in's key.
    Keyring,
    /// An owner-only file.
    File { path: PathBuf },
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Keyring => write!(
                f,
                "the operating system's credential store (service \"{SERVICE}\")"
            ),
            Place::File { path } => write!(f, "the file {} (owner-only)", path.display()),
        }
    }
}

/// One sign-in, as the list records it: no secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Login {
    pub authority: String,
    /// The tenant the sign-in asked for (`organizations`, a domain or an id).
    pub tenant: String,
    pub client_id: String,
    /// The tenant the tokens were issued in (the access token's `tid`), when it said: refreshes go
    /// there.
    #[serde(default)]
    pub token_tenant: Option<String>,
    #[serde(flatten)]
    pub place: Place,
}

impl Login {
    /// The key: the authority as [`crate::target::target_key`] compares services, the tenant and the
    /// client id in lower case.
    pub fn key(&self) -> String {
        key(&self.authority, &self.tenant, &self.client_id)
    }

    /// The URL its refresh grants go to.
    pub fn token_url(&self) -> String {
        let tenant = self.token_tenant.as_deref().unwrap_or(&self.tenant);
        format!("{}/{tenant}/oauth2/token", self.authority)
    }

    /// How the sign-in is named to the user.
    pub fn describe(&self) -> String {
        format!(
            "{} (tenant {}, client id {})",
            self.authority, self.tenant, self.client_id
        )
    }
}

fn key(authority: &str, tenant: &str, client_id: &str) -> String {
    format!(
        "{}|{}|{}",
        crate::target::target_key(authority),
        tenant.trim().to_lowercase(),
        client_id.trim().to_lowercase()
    )
}

/// Where a refresh token that a run renews is written back.
#[derive(Debug, Clone)]
pub enum Keeper {
    /// `PCBULK_TOKEN_CACHE`, beside the environment's refresh token.
    Cache(PathBuf),
    /// What `pcbulk auth login` kept.
    Login(Box<Login>),
}

/// The store `PCBULK_TOKEN_STORE` asks for: `Some(true)` the credential store only, `Some(false)`
/// a file, `None` the credential store where there is one, else a file.
fn asked_store() -> Result<Option<bool>, String> {
    match std::env::var("PCBULK_TOKEN_STORE")
        .ok()
        .as_deref()
        .map(str::trim)
    {
        None | Some("") => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("keyring") => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("file") => Ok(Some(false)),
        Some(v) => Err(format!(
            "PCBULK_TOKEN_STORE={:?} is neither `keyring` nor `file`",
            crate::api::error::clean(v, &[])
        )),
    }
}

fn state_dir() -> Result<PathBuf, String> {
    crate::fsafe::state_dir().ok_or_else(|| {
        "no state folder to keep the sign-in in (PCBULK_STATE_DIR, XDG_STATE_HOME and HOME are \
         all unset): set PCBULK_STATE_DIR to a folder"
            .to_owned()
    })
}

/// The file a sign-in's token goes to when it is kept in a file.
fn token_file(key: &str) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("PCBULK_TOKEN_CACHE").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let name: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    Ok(state_dir()?
        .join("tokens")
        .join(format!("login-{name}.token")))
}

/// Keeps `token` for `login` (whose place is chosen here) and records it in the list. Returns the
/// sign-in as recorded, and a line to tell the user when the credential store was wanted but could
/// not be used.
pub fn keep(mut login: Login, token: &SecretString) -> Result<(Login, Option<String>), String> {
    let asked = asked_store()?;
    let key = login.key();
    let mut note = None;
    login.place = Place::Keyring;
    if asked != Some(false) {
        match keyring_set(&key, token) {
            Ok(()) => {}
            Err(e) if asked == Some(true) => {
                return Err(format!(
                    "the operating system's credential store cannot be used ({e}): unset \
                     PCBULK_TOKEN_STORE or set it to `file`"
                ))
            }
            Err(e) => {
                note = Some(format!(
                    "no usable credential store on this machine ({e}); keeping the refresh token \
                     in a file instead"
                ));
                login.place = file_place(&key)?;
            }
        }
    } else {
        login.place = file_place(&key)?;
    }
    let mut list = read_list()?;
    if let Place::File { path } = &login.place {
        if let Some(other) = list
            .iter()
            .find(|l| l.key() != key && l.place == login.place)
        {
            return Err(format!(
                "{} already keeps the sign-in to {}: set PCBULK_TOKEN_CACHE to another file for \
                 this one, or run `pcbulk auth logout` for that one first",
                path.display(),
                other.describe()
            ));
        }
        write_file(path, token)?;
    }
    // A sign-in that moved (file to credential store or back) leaves nothing behind.
    if let Some(old) = list
        .iter()
        .find(|l| l.key() == key && l.place != login.place)
    {
        let _ = erase(old);
    }
    list.retain(|l| l.key() != key);
    list.push(login.clone());
    write_list(&list)?;
    Ok((login, note))
}

fn file_place(key: &str) -> Result<Place, String> {
    Ok(Place::File {
        path: token_file(key)?,
    })
}

fn write_file(path: &Path, token: &SecretString) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir)
            .map_err(|e| format!("cannot create the folder {}: {e}", dir.display()))?;
    }
    crate::fsafe::replace(
        path,
        token.expose_secret().as_bytes(),
        crate::fsafe::Access::Owner,
        FIX,
    )
    .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A folder only its owner can enter (0700 where that means something), with its parents.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// The sign-in for `authority` that the environment's tenant and client id (when set) select.
/// `Ok(None)` when there is none; an error when several fit and nothing says which.
pub fn find(
    authority: &str,
    tenant: Option<&str>,
    client_id: Option<&str>,
) -> Result<Option<Login>, String> {
    let Ok(dir) = state_dir() else {
        return Ok(None);
    };
    let list = read_list_at(&dir.join(LIST))?;
    let same = |a: &str, b: &str| a.trim().eq_ignore_ascii_case(b.trim());
    let authority_key = crate::target::target_key(authority);
    let fits: Vec<Login> = list
        .into_iter()
        .filter(|l| crate::target::target_key(&l.authority) == authority_key)
        .filter(|l| {
            tenant.is_none_or(|t| {
                same(&l.tenant, t) || l.token_tenant.as_deref().is_some_and(|tt| same(tt, t))
            })
        })
        .filter(|l| client_id.is_none_or(|c| same(&l.client_id, c)))
        .collect();
    match fits.len() {
        0 => Ok(None),
        1 => Ok(fits.into_iter().next()),
        _ => Err(format!(
            "several sign-ins fit {authority}: {}; set PCBULK_TENANT_ID and PCBULK_CLIENT_ID to \
             choose one",
            fits.iter()
                .map(Login::describe)
                .collect::<Vec<_>>()
                .join("; ")
        )),
    }
}

/// The refresh token a sign-in kept.
pub fn load(login: &Login) -> Result<SecretString, String> {
    let token = match &login.place {
        Place::Keyring => keyring_entry(&login.key())
            .and_then(|e| e.get_password())
            .map_err(|e| {
                format!(
                    "the sign-in to {} is not in the credential store ({e}): run `pcbulk auth \
                     login` again",
                    login.describe()
                )
            })?,
        Place::File { path } => {
            use std::io::Read;
            let mut text = String::new();
            crate::fsafe::open_read(path, FIX)
                .and_then(|f| f.take(64 * 1024).read_to_string(&mut text))
                .map_err(|e| {
                    format!(
                        "cannot read the sign-in to {} from {}: {e}; run `pcbulk auth login` again",
                        login.describe(),
                        path.display()
                    )
                })?;
            text
        }
    };
    let token = token.trim();
    if token.is_empty() {
        return Err(format!(
            "the sign-in to {} holds no token: run `pcbulk auth login` again",
            login.describe()
        ));
    }
    Ok(SecretString::from(token.to_owned()))
}

/// Writes a renewed refresh token back where the sign-in keeps it.
pub fn rotate(login: &Login, token: &SecretString) -> Result<(), String> {
    match &login.place {
        Place::Keyring => keyring_set(&login.key(), token),
        Place::File { path } => write_file(path, token),
    }
}

/// Removes the sign-in for `authority` (selected as [`find`] does) and its token. Returns what was
/// removed, `None` when there was nothing.
pub fn forget(
    authority: &str,
    tenant: Option<&str>,
    client_id: Option<&str>,
) -> Result<Option<Login>, String> {
    let Some(login) = find(authority, tenant, client_id)? else {
        return Ok(None);
    };
    erase(&login)?;
    let mut list = read_list()?;
    list.retain(|l| l.key() != login.key());
    write_list(&list)?;
    Ok(Some(login))
}

/// Deletes a sign-in's token (a token already gone is no error).
fn erase(login: &Login) -> Result<(), String> {
    match &login.place {
        Place::Keyring => match keyring_entry(&login.key()).and_then(|e| e.delete_credential()) {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(format!("cannot remove it from the credential store: {e}")),
        },
        Place::File { path } => match crate::fsafe::look(path, FIX) {
            Ok(None) => Ok(()),
            Ok(Some(_)) => std::fs::remove_file(path)
                .map_err(|e| format!("cannot remove {}: {e}", path.display())),
            Err(e) => Err(format!("{}: {e}", path.display())),
        },
    }
}

fn keyring_entry(key: &str) -> keyring::Result<keyring::Entry> {
    keyring::Entry::new(SERVICE, key)
}

fn keyring_set(key: &str, token: &SecretString) -> Result<(), String> {
    keyring_entry(key)
        .and_then(|e| e.set_password(token.expose_secret()))
        .map_err(|e| first_line(&e.to_string()))
}

/// A platform error's first line, bounded, with no control characters.
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    crate::api::error::clean(line, &[])
}

fn read_list() -> Result<Vec<Login>, String> {
    read_list_at(&state_dir()?.join(LIST))
}

fn read_list_at(path: &Path) -> Result<Vec<Login>, String> {
    use std::io::Read;
    let mut text = String::new();
    match crate::fsafe::open_read(path, FIX)
        .and_then(|f| f.take(LIST_MAX).read_to_string(&mut text))
    {
        Ok(_) => serde_json::from_str(&text).map_err(|e| {
            format!(
                "the list of sign-ins {} cannot be read ({e}): remove it and sign in again",
                path.display()
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!(
            "cannot read the list of sign-ins {}: {e}",
            path.display()
        )),
    }
}

fn write_list(list: &[Login]) -> Result<(), String> {
    let dir = state_dir()?;
    create_private_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(LIST);
    let bytes = serde_json::to_vec_pretty(list).expect("the list serializes");
    crate::fsafe::replace(&path, &bytes, crate::fsafe::Access::Owner, FIX)
        .map_err(|e| format!("cannot write the list of sign-ins {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(authority: &str, tenant: &str, client: &str) -> Login {
        Login {
            authority: authority.into(),
            tenant: tenant.into(),
            client_id: client.into(),
            token_tenant: None,
            place: Place::Keyring,
        }
    }

    #[test]
    fn a_sign_in_is_keyed_by_authority_tenant_and_client() {
        let a = login("https://login.microsoftonline.com", "organizations", "C1");
        assert_eq!(
            a.key(),
            login("https://LOGIN.microsoftonline.com/", "Organizations", "c1").key()
        );
        for other in [
            login("https://login.microsoftonline.us", "organizations", "c1"),
            login("http://127.0.0.1:8765", "organizations", "c1"),
            login("https://login.microsoftonline.com", "contoso.com", "c1"),
            login("https://login.microsoftonline.com", "organizations", "c2"),
        ] {
            assert_ne!(a.key(), other.key(), "{}", other.describe());
        }
    }

    #[test]
    fn the_list_names_no_secret_and_reads_back() {
        let mut l = login("http://127.0.0.1:1", "organizations", "c");
        l.place = Place::File {
            path: "/x/t".into(),
        };
        let text = serde_json::to_string(&l).unwrap();
        assert!(text.contains("\"store\":\"file\""), "{text}");
        let back: Login = serde_json::from_str(&text).unwrap();
        assert_eq!(back.place, l.place);
    }
}
