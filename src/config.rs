//! What a command runs with, checked: the library's own configuration types. The command line
//! (`cli`) only converts flags into these.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::api::auth::Credentials;
use crate::dispatch::Settings;
use crate::error::{usage, Error};
use crate::input::ReadOptions;
use crate::ops::OpSpec;

/// Where a file comes from and where its results go.
#[derive(Debug, Clone)]
pub struct InputConfig {
    pub input: PathBuf,
    pub out: PathBuf,
    pub operation: Option<&'static OpSpec>,
    pub read: ReadOptions,
    /// `--map`: which input header holds which of pcbulk's columns.
    pub mapping: Vec<crate::input::header::ColumnMap>,
}

/// Where calls go.
pub enum Target {
    Sandbox,
    Service {
        base_url: String,
        credentials: Credentials,
    },
}

pub struct ApplyConfig {
    pub input: InputConfig,
    /// Continue the run recorded in the journal beside the results file.
    pub resume: bool,
    /// With `resume`, also re-attempt rows that failed.
    pub retry_failed: bool,
    /// `None` for a dry run, which sends nothing.
    pub target: Option<Target>,
    pub settings: Settings,
    pub timeout: Duration,
    /// The China cloud (21Vianet) offers only some operations (`OpSpec::in_china`); a file that
    /// needs another is refused before anything is sent.
    pub china: bool,
    /// The cloud as the user named it, for the banner.
    pub cloud: &'static str,
    /// `--yes`: no confirmation asked before changing a production target.
    pub yes: bool,
    /// `--force`: apply a file again to a target a finished run already applied it to.
    pub force: bool,
    /// `--from-plan`: the plan file whose `planned` rows are the only ones applied.
    pub from_plan: Option<PathBuf>,
}

impl ApplyConfig {
    /// `plan` / `apply --dry-run`: reads only.
    pub fn is_plan(&self) -> bool {
        self.settings.reads_only
    }
}

/// A URL as it may be shown: whatever stands between `://` and the last `@` before the path (a
/// user name and password) becomes `***`.
fn without_userinfo(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &rest[at..]),
        None => url.to_owned(),
    }
}

/// Whether a base URL points at this machine (a simulator or a test), where no confirmation is
/// asked.
pub fn is_loopback(base_url: &str) -> bool {
    match url::Url::parse(base_url)
        .ok()
        .and_then(|u| u.host().map(|h| h.to_owned()))
    {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The service a target names, for telling whether two runs went to the same one (pcbulk's list of
/// runs, the journal beside a results file): scheme and host in lower case, the scheme's default
/// port left out, a host name's trailing dot and the path's trailing slashes dropped, and
/// `localhost`, `127.0.0.1` and `[::1]` taken as one host (`localhost` resolves to either, so a
/// service reached through one may be the one reached through another). A target that is not such
/// a URL (`sandbox`) is itself. Only ever compared: what a run records and shows is the target as
/// given.
pub fn target_key(target: &str) -> String {
    let Ok(u) = url::Url::parse(target.trim()) else {
        return target.to_owned();
    };
    let host = match u.host() {
        Some(url::Host::Ipv4(ip)) if ip == std::net::Ipv4Addr::LOCALHOST => "localhost".to_owned(),
        Some(url::Host::Ipv6(ip)) if ip == std::net::Ipv6Addr::LOCALHOST => "localhost".to_owned(),
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Domain(d)) => d.trim_end_matches('.').to_ascii_lowercase(),
        None => return target.to_owned(),
    };
    let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
    let query = u.query().map(|q| format!("?{q}")).unwrap_or_default();
    format!(
        "{}://{host}{port}{}{query}",
        u.scheme(),
        u.path().trim_end_matches('/')
    )
}

/// `<input stem>.results.csv` beside the input.
pub fn default_results_path(input: &Path) -> PathBuf {
    default_path(input, None, "results")
}

/// `<input stem>.<kind>.csv` beside the input: `results` for apply, `validation` for validate,
/// `plan` for a dry run, so neither writes over an apply's records. With `--sheet`,
/// `<input stem>.<sheet>.<kind>.csv`: each sheet of a workbook has records of its own. A character
/// of the sheet's name that cannot be in a file name (a path separator, a control character, `:`)
/// becomes `_`.
pub fn default_path(input: &Path, sheet: Option<&str>, kind: &str) -> PathBuf {
    // The stem as the file system has it (a name that is not UTF-8 keeps its bytes).
    let stem = input
        .file_stem()
        .map(std::ffi::OsStr::to_os_string)
        .unwrap_or_else(|| "input".into());
    let sheet = sheet.map(str::trim).filter(|s| !s.is_empty()).map(|s| {
        let s: String = s
            .chars()
            .map(|c| match c {
                '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
                c if c.is_control() => '_',
                c => c,
            })
            .collect();
        format!(".{s}")
    });
    let mut name = stem;
    name.push(format!("{}.{kind}.csv", sheet.unwrap_or_default()));
    input.with_file_name(name)
}

/// Whether two paths name the same file: one file under two names (a link, a hard link, a bind
/// mount), or, when either is not there yet, the same path.
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return (x.dev(), x.ino()) == (y.dev(), y.ino());
        }
    }
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// An address pcbulk may send to: https anywhere, http only on loopback.
pub fn check_url(what: &str, url: &str) -> Result<String, Error> {
    let shown = without_userinfo(url);
    // A URL parser drops a line end or a tab: the address used would not be the one recorded.
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        usage!(
            "{what} {shown:?} holds a space, a line end or another control character (read from a \
             file saved with Windows line ends?): give the address alone"
        );
    }
    let parsed = reqwest::Url::parse(url)
        .map_err(|_| Error::usage(format!("{what} {shown:?} is not a URL")))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        usage!(
            "{what} must not carry a user name or password ({shown}): credentials come from the \
             PCBULK_* variables"
        );
    }
    // Calls append `/v1/...` to the URL's path: a query or fragment would swallow it.
    if parsed.query().is_some() || parsed.fragment().is_some() {
        usage!(
            "{what} must not carry a query (`?...`) or fragment (`#...`): give the service's \
             address and path only, such as https://api.partnercenter.microsoft.com ({shown})"
        );
    }
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            usage!(
                "{what} must be https:// (http:// is allowed only on loopback addresses): {shown}"
            )
        }
    }
    Ok(url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_a_url_is_never_shown() {
        for url in [
            "https://user:pw-secret@10.0.0.1",
            "http://u:pw-secret@example.com/v1",
        ] {
            let e = check_url("the base URL", url).unwrap_err().to_string();
            assert!(!e.contains("pw-secret"), "{e}");
        }
    }

    #[test]
    fn a_base_url_with_a_query_or_fragment_is_refused_not_sent_without_its_v1() {
        for url in [
            "http://127.0.0.1:9/?x=1",
            "http://127.0.0.1:9?x=1",
            "http://127.0.0.1:9/#frag",
            "https://example.test/pc/?x=1",
            "https://example.test/pc?",
        ] {
            let e = check_url("the base URL", url).unwrap_err().to_string();
            assert!(e.contains("query"), "{url}: {e}");
        }
        assert!(check_url("the base URL", "https://example.test/pc/").is_ok());
    }

    #[test]
    fn urls_must_be_https_except_on_loopback() {
        assert!(check_url("u", "https://api.partnercenter.microsoft.com/").is_ok());
        assert!(check_url("u", "http://127.0.0.1:8765").is_ok());
        assert!(check_url("u", "http://[::1]:80").is_ok());
        assert!(check_url("u", "http://localhost:1").is_ok());
        assert!(check_url("u", "http://api.partnercenter.microsoft.com").is_err());
        assert!(check_url("u", "http://10.0.0.1").is_err());
        assert!(check_url("u", "ftp://127.0.0.1").is_err());
    }

    #[test]
    fn targets_that_name_one_service_have_one_key() {
        let key = target_key;
        let same = [
            "http://127.0.0.1:18801",
            "http://localhost:18801",
            "HTTP://127.0.0.1:18801/",
            "http://LocalHost.:18801//",
            "http://[::1]:18801",
            "http://[0:0:0:0:0:0:0:1]:18801",
        ];
        for t in same {
            assert_eq!(key(t), key(same[0]), "{t}");
        }
        assert_eq!(
            key("https://API.PartnerCenter.microsoft.com:443/"),
            key("https://api.partnercenter.microsoft.com")
        );
        assert_eq!(key("http://127.0.0.1:80"), key("http://localhost"));
        for other in [
            "http://127.0.0.1:18802",
            "https://127.0.0.1:18801",
            "http://127.0.0.2:18801",
            "http://127.0.0.1:18801/v2",
        ] {
            assert_ne!(key(other), key(same[0]), "{other}");
        }
        assert_eq!(key("sandbox"), "sandbox");
    }

    #[test]
    fn results_default_beside_the_input() {
        assert_eq!(
            default_results_path(Path::new("/data/june.csv")),
            PathBuf::from("/data/june.results.csv")
        );
    }

    #[test]
    fn with_a_sheet_default_paths_carry_it() {
        let path = |sheet, kind| default_path(Path::new("/data/w.xlsx"), sheet, kind);
        assert_eq!(
            path(Some("Q3"), "results"),
            PathBuf::from("/data/w.Q3.results.csv")
        );
        assert_eq!(
            path(Some("a/b\r"), "plan"),
            PathBuf::from("/data/w.a_b.plan.csv")
        );
        assert_eq!(
            path(None, "validation"),
            PathBuf::from("/data/w.validation.csv")
        );
    }

    #[test]
    fn a_base_url_with_whitespace_or_a_control_character_is_refused() {
        for url in [
            "http://127.0.0.1:1\r",
            "http://127.0.0.1:1\n",
            " http://127.0.0.1:1",
            "http://127.0.0.1:1/v\t1",
            "https://api.partnercenter.microsoft.com\u{85}",
        ] {
            let e = check_url("the base URL", url).unwrap_err().to_string();
            assert!(e.contains("control character"), "{url:?}: {e}");
            assert!(!e.contains('\r') && !e.contains('\n'), "{e}");
        }
    }
}
