//! Command-line arguments (clap) and their conversion into checked configurations; nothing past
//! this module sees clap types.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};
use secrecy::SecretString;

use crate::api::auth::Credentials;
use crate::dispatch::{MaxErrors, RetryPolicy, Settings};
use crate::input::ReadOptions;
use crate::ops::{self, OpSpec};

#[derive(Parser, Debug)]
#[command(
    name = "pcbulk",
    version,
    about = "Apply bulk updates to Microsoft Partner Center from a CSV file"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate the file and apply every valid row to Partner Center (or to the sandbox).
    Apply(ApplyArgs),
    /// Check a file without sending anything: every row comes out `valid` or `invalid`.
    Validate(InputArgs),
    /// Print a header and an example row for an operation.
    Template {
        /// support-contact, service-request, support-profile or billing-profile
        operation: String,
    },
    /// Write a CSV that puts back what a run changed (from its results file and journal).
    Undo {
        /// The results file of the run to undo.
        results: PathBuf,
        /// Where to write the undo file (default: <input stem>.undo.csv beside the results).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run the Partner Center simulator on loopback.
    Sandbox(SandboxArgs),
}

#[derive(Args, Debug)]
pub struct InputArgs {
    /// The CSV file of changes.
    pub input: PathBuf,
    /// The operation for every row (else from an `operation` column, else from the header).
    #[arg(long)]
    pub operation: Option<String>,
    /// Where to write the results (default: <input stem>.results.csv beside the input).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Read the file in this encoding (utf-8, utf-16le, utf-16be, windows-1252) instead of detecting it.
    #[arg(long)]
    pub encoding: Option<String>,
    /// Use this delimiter (`,` `;` `tab` `|`) instead of detecting it from the header.
    #[arg(long)]
    pub delimiter: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Cloud {
    Global,
    Usgov,
    China,
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Calls per second over all calls.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Partner Center API base URL (also PCBULK_BASE_URL); https, or http on loopback.
    #[arg(long, conflicts_with_all = ["cloud", "sandbox"])]
    pub base_url: Option<String>,
    /// Which Partner Center cloud to use.
    #[arg(long, value_enum)]
    pub cloud: Option<Cloud>,
    /// Run against the embedded simulator, seeded with the demo tenant; needs no credentials.
    #[arg(long)]
    pub sandbox: bool,
    /// Continue a run from its results file.
    #[arg(long)]
    pub resume: bool,
    /// Continue like --resume, and also re-attempt rows that failed.
    #[arg(long)]
    pub retry_failed: bool,
    /// Validate and report what would be sent, without sending anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Stop (exit 3) once this many rows have failed: a count, or a share like 5%.
    #[arg(long)]
    pub max_errors: Option<String>,
    /// Attempts per call, the first included.
    #[arg(long, default_value_t = 6)]
    pub max_attempts: u32,
    /// Seconds to wait for one call before it counts as timed out.
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
}

#[derive(Args, Debug)]
pub struct SandboxArgs {
    /// Loopback address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8765")]
    pub listen: SocketAddr,
    /// Seed for everything random the sandbox does.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Lifetime in seconds of access tokens from the token endpoint.
    #[arg(long, default_value_t = 3600)]
    pub token_lifetime: u64,
    /// Extra subscriptions for Contoso (ids d1000000-0000-4000-8000-000000000000 upward), for load tests.
    #[arg(long, default_value_t = 0)]
    pub subscriptions: usize,
    /// Seconds a refresh token stays usable after a newer one was issued.
    #[arg(long, default_value_t = 60)]
    pub refresh_grace: u64,
    /// Partner-wide limit in calls per second (a token bucket, or fixed windows with --window).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Token bucket size: calls admitted at once after a pause (default: one second's worth).
    #[arg(long, requires = "rate", conflicts_with = "window")]
    pub burst: Option<f64>,
    /// Fixed windows of this many seconds, each admitting rate × window calls; a throttled call is
    /// told to come back when the window ends.
    #[arg(long, requires = "rate")]
    pub window: Option<f64>,
    /// A limit per customer tenant, in calls per second (token bucket).
    #[arg(long)]
    pub customer_rate: Option<f64>,
    /// Token bucket size of the per-customer limit (default: one second's worth).
    #[arg(long, requires = "customer_rate")]
    pub customer_burst: Option<f64>,
    /// Send Retry-After as an HTTP date instead of seconds.
    #[arg(long)]
    pub retry_after_date: bool,
    /// Latency of each call in milliseconds: `N` or `MIN-MAX` (uniform).
    #[arg(long, default_value = "0")]
    pub latency_ms: String,
    /// A slow tail: `SHARE:MS`, e.g. 0.01:2000 makes 1% of calls take 2 s.
    #[arg(long)]
    pub tail: Option<String>,
    /// Share of calls answered with a server error (see --fail-status), not applied.
    #[arg(long, default_value_t = 0.0)]
    pub fail_share: f64,
    /// The server errors --fail-share answers with, comma-separated, chosen at random.
    #[arg(long, default_value = "500,503")]
    pub fail_status: String,
    /// Extra customers with billing profiles (ids c1000000-0000-4000-8000-000000000000 upward).
    #[arg(long, default_value_t = 0)]
    pub customers: usize,
    /// Share of calls whose connection drops before the change is applied.
    #[arg(long, default_value_t = 0.0)]
    pub drop_before: f64,
    /// Share of calls whose connection drops after the change is applied.
    #[arg(long, default_value_t = 0.0)]
    pub drop_after: f64,
    /// Share of answers that start with a UTF-8 byte-order mark.
    #[arg(long, default_value_t = 0.0)]
    pub bom_share: f64,
    /// Share of billing-profile PUTs that find the profile edited meanwhile (stale ETag).
    #[arg(long, default_value_t = 0.0)]
    pub etag_churn: f64,
    /// How a stale ETag is refused: 412, 2055 (400 with code 2055) or mix.
    #[arg(long, default_value = "412")]
    pub stale_etag: String,
}

fn share(name: &str, v: f64) -> anyhow::Result<f64> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        bail!("--{name} is a share between 0 and 1, not {v}")
    }
}

fn positive(name: &str, v: f64) -> anyhow::Result<f64> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        bail!("--{name} must be above 0, not {v}")
    }
}

fn millis(name: &str, v: &str) -> anyhow::Result<Duration> {
    let ms: f64 = v
        .trim()
        .parse()
        .ok()
        .filter(|m: &f64| m.is_finite() && *m >= 0.0)
        .with_context(|| format!("--{name}: {v:?} is not a number of milliseconds"))?;
    Ok(Duration::from_secs_f64(ms / 1000.0))
}

impl TryFrom<&SandboxArgs> for crate::sandbox::Options {
    type Error = anyhow::Error;

    fn try_from(a: &SandboxArgs) -> anyhow::Result<Self> {
        use crate::sandbox::faults::{Knobs, StaleEtag, Throttle};
        let bucket = |rate: f64, burst: Option<f64>, name: &str| -> anyhow::Result<Throttle> {
            let rate = positive(name, rate)?;
            let burst = burst.unwrap_or(rate.max(1.0));
            if burst < 1.0 {
                bail!("a burst must be at least 1 call, not {burst}");
            }
            Ok(Throttle::Bucket { rate, burst })
        };
        let throttle = match (a.rate, a.window) {
            (None, _) => None,
            (Some(r), Some(w)) => {
                let (r, w) = (positive("rate", r)?, positive("window", w)?);
                let limit = (r * w).round().max(1.0) as u64;
                Some(Throttle::Window {
                    limit,
                    window: Duration::from_secs_f64(w),
                })
            }
            (Some(r), None) => Some(bucket(r, a.burst, "rate")?),
        };
        let customer_throttle = a
            .customer_rate
            .map(|r| bucket(r, a.customer_burst, "customer-rate"))
            .transpose()?;
        let (latency_min, latency_max) = match a.latency_ms.split_once('-') {
            Some((lo, hi)) => (millis("latency-ms", lo)?, millis("latency-ms", hi)?),
            None => {
                let v = millis("latency-ms", &a.latency_ms)?;
                (v, v)
            }
        };
        if latency_max < latency_min {
            bail!(
                "--latency-ms {}: the maximum is below the minimum",
                a.latency_ms
            );
        }
        let (tail_share, tail) = match &a.tail {
            None => (0.0, Duration::ZERO),
            Some(t) => {
                let (sh, ms) = t
                    .split_once(':')
                    .with_context(|| format!("--tail {t:?} is not SHARE:MS, e.g. 0.01:2000"))?;
                let sh: f64 = sh
                    .trim()
                    .parse()
                    .with_context(|| format!("--tail {t:?}: bad share"))?;
                (share("tail", sh)?, millis("tail", ms)?)
            }
        };
        let fail_share = share("fail-share", a.fail_share)?;
        let drop_before = share("drop-before", a.drop_before)?;
        let drop_after = share("drop-after", a.drop_after)?;
        if fail_share + drop_before + drop_after > 1.0 {
            bail!("--fail-share, --drop-before and --drop-after add up to more than 1");
        }
        let fail_statuses = a
            .fail_status
            .split(',')
            .map(|v| match v.trim().parse::<u16>() {
                Ok(code @ 500..=599) => Ok(code),
                _ => bail!("--fail-status {v:?} is not a 5xx status"),
            })
            .collect::<anyhow::Result<Vec<u16>>>()?;
        let stale_etag = match a.stale_etag.as_str() {
            "412" => StaleEtag::Status412,
            "2055" | "400" => StaleEtag::Code2055,
            "mix" => StaleEtag::Mix,
            other => bail!("--stale-etag {other:?} is not one of 412, 2055, mix"),
        };
        Ok(crate::sandbox::Options {
            listen: a.listen,
            seed: a.seed,
            token_lifetime: Duration::from_secs(a.token_lifetime),
            refresh_grace: Duration::from_secs(a.refresh_grace),
            extra_subscriptions: a.subscriptions,
            extra_customers: a.customers,
            knobs: Knobs {
                throttle,
                customer_throttle,
                retry_after_date: a.retry_after_date,
                latency_min,
                latency_max,
                tail_share,
                tail,
                fail_share,
                fail_statuses,
                drop_before,
                drop_after,
                bom_share: share("bom-share", a.bom_share)?,
                etag_churn: share("etag-churn", a.etag_churn)?,
                stale_etag,
            },
        })
    }
}

/// Where a file comes from and where its results go.
#[derive(Debug)]
pub struct InputConfig {
    pub input: PathBuf,
    pub out: PathBuf,
    pub operation: Option<&'static OpSpec>,
    pub read: ReadOptions,
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
    /// Operations the chosen cloud does not offer (the China cloud has no support-contact or
    /// service-request updates); a file that needs one is refused before anything is sent.
    pub unavailable: &'static [&'static str],
}

impl TryFrom<&InputArgs> for InputConfig {
    type Error = anyhow::Error;

    fn try_from(a: &InputArgs) -> anyhow::Result<Self> {
        let operation = match &a.operation {
            Some(name) => Some(ops::by_name(name).with_context(|| {
                format!(
                    "--operation {name:?} is not an operation; use one of {}",
                    ops::names()
                )
            })?),
            None => None,
        };
        let out = a
            .out
            .clone()
            .unwrap_or_else(|| default_results_path(&a.input));
        if same_file(&out, &a.input) {
            bail!(
                "--out {} is the input file; the results must go elsewhere",
                out.display()
            );
        }
        let delimiter = match a.delimiter.as_deref() {
            None => None,
            Some("," | "comma") => Some(b','),
            Some(";" | "semicolon") => Some(b';'),
            Some("\t" | "tab" | "\\t") => Some(b'\t'),
            Some("|" | "pipe") => Some(b'|'),
            Some(other) => bail!("--delimiter {other:?} is not one of , ; tab |"),
        };
        Ok(InputConfig {
            input: a.input.clone(),
            out,
            operation,
            read: ReadOptions {
                encoding: a.encoding.clone(),
                delimiter,
            },
        })
    }
}

/// `<input stem>.results.csv` beside the input.
pub fn default_results_path(input: &Path) -> PathBuf {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "input".into());
    input.with_file_name(format!("{stem}.results.csv"))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

fn parse_max_errors(v: &str) -> anyhow::Result<MaxErrors> {
    let v = v.trim();
    let bad = || format!("--max-errors {v:?} is not a count (e.g. 10) or a share (e.g. 5%)");
    if let Some(p) = v.strip_suffix('%') {
        let p: f64 = p.trim().parse().with_context(bad)?;
        if !(p > 0.0 && p <= 100.0) {
            bail!(bad());
        }
        Ok(MaxErrors::Percent(p))
    } else {
        let n: usize = v.parse().with_context(bad)?;
        if n == 0 {
            bail!(bad());
        }
        Ok(MaxErrors::Count(n))
    }
}

/// An address pcbulk may send to: https anywhere, http only on loopback.
pub fn check_url(what: &str, url: &str) -> anyhow::Result<String> {
    let parsed =
        reqwest::Url::parse(url).with_context(|| format!("{what} {url:?} is not a URL"))?;
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
            bail!("{what} must be https:// (http:// is allowed only on loopback addresses): {url}")
        }
    }
    Ok(url.trim_end_matches('/').to_owned())
}

impl Cloud {
    fn base_url(self) -> &'static str {
        match self {
            Cloud::Global | Cloud::Usgov => "https://api.partnercenter.microsoft.com",
            Cloud::China => "https://partner.partnercenterapi.microsoftonline.cn",
        }
    }

    fn authority(self) -> &'static str {
        match self {
            Cloud::Global => "https://login.microsoftonline.com",
            Cloud::Usgov => "https://login.microsoftonline.us",
            Cloud::China => "https://login.chinacloudapi.cn",
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Credentials from the environment (SPEC: Credentials).
fn credentials(cloud: Cloud) -> anyhow::Result<Credentials> {
    if let Some(t) = env("PCBULK_ACCESS_TOKEN") {
        return Ok(Credentials::Static(SecretString::from(t.trim().to_owned())));
    }
    let refresh = env("PCBULK_REFRESH_TOKEN");
    let tenant = env("PCBULK_TENANT_ID");
    let client = env("PCBULK_CLIENT_ID");
    match (refresh, tenant, client) {
        (Some(refresh), Some(tenant), Some(client_id)) => {
            let authority = match env("PCBULK_AUTHORITY") {
                Some(a) => check_url("PCBULK_AUTHORITY", &a)?,
                None => cloud.authority().to_owned(),
            };
            Ok(Credentials::Refresh {
                token_url: format!("{authority}/{}/oauth2/token", tenant.trim()),
                client_id: client_id.trim().to_owned(),
                client_secret: env("PCBULK_CLIENT_SECRET").map(SecretString::from),
                refresh_token: SecretString::from(refresh.trim().to_owned()),
                token_cache: env("PCBULK_TOKEN_CACHE").map(PathBuf::from),
            })
        }
        (None, None, None) => bail!(
            "no credentials: set PCBULK_ACCESS_TOKEN, or PCBULK_REFRESH_TOKEN with PCBULK_TENANT_ID and \
             PCBULK_CLIENT_ID (and PCBULK_CLIENT_SECRET for a web app); or try the tool with --sandbox"
        ),
        _ => bail!(
            "incomplete credentials: App+User needs all of PCBULK_REFRESH_TOKEN, PCBULK_TENANT_ID and \
             PCBULK_CLIENT_ID"
        ),
    }
}

impl TryFrom<&ApplyArgs> for ApplyConfig {
    type Error = anyhow::Error;

    fn try_from(a: &ApplyArgs) -> anyhow::Result<Self> {
        if (a.resume || a.retry_failed) && a.sandbox {
            bail!(
                "--resume needs the service the run was sent to, and the embedded sandbox ends with \
                 the run: start `pcbulk sandbox` in another terminal and use --base-url to try --resume"
            );
        }
        if (a.resume || a.retry_failed) && a.dry_run {
            bail!("--resume and --dry-run do not go together: a dry run sends nothing to resume");
        }
        if !(a.rate.is_finite() && a.rate > 0.0) {
            bail!(
                "--rate must be a number of calls per second above 0, not {}",
                a.rate
            );
        }
        if a.concurrency == 0 || a.concurrency > 256 {
            bail!(
                "--concurrency must be between 1 and 256, not {}",
                a.concurrency
            );
        }
        if a.max_attempts == 0 || a.max_attempts > 50 {
            bail!(
                "--max-attempts must be between 1 and 50, not {}",
                a.max_attempts
            );
        }
        if !(a.timeout.is_finite() && a.timeout > 0.0) {
            bail!(
                "--timeout must be a number of seconds above 0, not {}",
                a.timeout
            );
        }
        let input = InputConfig::try_from(&a.input)?;
        let cloud = a.cloud.unwrap_or(Cloud::Global);
        if matches!(cloud, Cloud::China) {
            if let Some(op) = input
                .operation
                .filter(|o| matches!(o.name, "support-contact" | "service-request"))
            {
                bail!("{} is not offered in the China cloud", op.name);
            }
        }
        let target = if a.dry_run {
            None
        } else if a.sandbox {
            Some(Target::Sandbox)
        } else {
            let base_url = match a.base_url.clone().or_else(|| env("PCBULK_BASE_URL")) {
                Some(u) => check_url("the base URL", &u)?,
                None => cloud.base_url().to_owned(),
            };
            Some(Target::Service {
                base_url,
                credentials: credentials(cloud)?,
            })
        };
        let max_errors = a.max_errors.as_deref().map(parse_max_errors).transpose()?;
        Ok(ApplyConfig {
            input,
            resume: a.resume || a.retry_failed,
            retry_failed: a.retry_failed,
            target,
            settings: Settings {
                rate: a.rate,
                concurrency: a.concurrency,
                retry: RetryPolicy {
                    max_attempts: a.max_attempts,
                    ..RetryPolicy::default()
                },
                max_errors,
            },
            timeout: Duration::from_secs_f64(a.timeout),
            unavailable: match cloud {
                Cloud::China => &["support-contact", "service-request"],
                Cloud::Global | Cloud::Usgov => &[],
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn max_errors_count_or_share() {
        assert_eq!(parse_max_errors("10").unwrap(), MaxErrors::Count(10));
        assert_eq!(parse_max_errors("5%").unwrap(), MaxErrors::Percent(5.0));
        for bad in ["0", "0%", "150%", "ten", "-1"] {
            assert!(parse_max_errors(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn results_default_beside_the_input() {
        assert_eq!(
            default_results_path(Path::new("/data/june.csv")),
            PathBuf::from("/data/june.results.csv")
        );
    }
}
