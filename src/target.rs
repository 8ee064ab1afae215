//! Service addresses: which ones pcbulk may send to, which are this machine, and when two name
//! one service. Plain functions of a string, below everything that sends or records.

use crate::error::{usage, Error};

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
