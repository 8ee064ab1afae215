//! Command-line arguments (clap) and their conversion into the library's configurations
//! (`config`): typed value parsers with bounds, `env =` for the variables that stand for flags.
//! Nothing past this module sees clap types.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use secrecy::SecretString;

use crate::api::auth::Credentials;
use crate::config::{ApplyConfig, InputConfig, Target};
use crate::dispatch::{MaxErrors, RetryPolicy, Settings};
use crate::error::{usage, Error};
use crate::fsafe::same_file;
use crate::input::header::ColumnMap;
use crate::input::ReadOptions;
use crate::ops::{self, OpSpec};
use crate::target::check_url;

#[derive(Parser, Debug)]
#[command(
    name = "pcbulk",
    version,
    about = "Apply bulk updates to Microsoft Partner Center from a CSV file or an Excel workbook",
    after_help = crate::help::MAIN
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The output flags of a command that runs rows (apply, plan, validate).
    pub fn output(&self) -> Option<&OutputArgs> {
        match &self.command {
            Command::Apply(a) => Some(&a.input.output),
            Command::Plan(a) => Some(&a.input.output),
            Command::Validate(a) => Some(&a.output),
            Command::Export(a) => Some(&a.output),
            _ => None,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate the file and apply every valid row to Partner Center (or to the sandbox).
    #[command(after_help = crate::help::APPLY)]
    Apply(ApplyArgs),
    /// Validate, then read each row's current values (GETs only, paced and retried like apply) and
    /// say per row what applying it would change: `planned` with its `change`, `unchanged`,
    /// `invalid` or `failed`. Never writes to the service. Results in <input stem>.plan.csv.
    #[command(
        after_help = crate::help::PLAN,
        mut_arg("out", |a| a.help("Where to write the plan (default: <input stem>.plan.csv beside the input)"))
    )]
    Plan(PlanArgs),
    /// Check a file without sending anything: every row comes out `valid` or `invalid`.
    #[command(
        after_help = crate::help::VALIDATE,
        mut_arg("out", |a| a.help("Where to write the results (default: <input stem>.validation.csv beside the input)"))
    )]
    Validate(InputArgs),
    /// Write every target's current values as a file of the operation's rows, which `apply`
    /// reads as it is: edit it, plan it, apply it. Reads only, paced and retried like apply.
    #[command(after_help = crate::help::EXPORT)]
    Export(ExportArgs),
    /// Print every column of an operation and an example row (one the sandbox applies), as CSV.
    #[command(after_help = crate::help::TEMPLATE)]
    Template {
        /// The operation whose columns to print.
        #[arg(value_parser = OperationParser, value_name = "OPERATION")]
        operation: &'static OpSpec,
    },
    /// Write a CSV that puts back what a run changed (from its results file and journal).
    ///
    /// Cells that a spreadsheet would run as a formula (and cells starting with ') get a leading '.
    /// The file's pcbulk_undo column marks it as pcbulk's own: when pcbulk reads it (apply,
    /// validate), it takes that one ' off again, so every value goes back exactly as it was.
    /// Beside each value put back, an expected_<column> column holds the value the run set: a row
    /// whose target holds something else by then is left as it is (failed, drifted) unless
    /// --force. The input's own columns that the operation does not read come along.
    #[command(after_help = crate::help::UNDO)]
    Undo {
        /// The results file of the run to undo.
        results: PathBuf,
        /// Where to write the undo file (default: <input stem>.undo.csv beside the results).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run the Partner Center simulator on loopback.
    #[command(after_help = crate::help::SANDBOX)]
    Sandbox(SandboxArgs),
    /// Check credentials without changing anything.
    #[command(after_help = crate::help::AUTH)]
    Auth {
        #[command(subcommand)]
        command: AuthCommand,
    },
    /// Print a shell completion script to standard output.
    #[command(after_help = crate::help::COMPLETIONS)]
    Completions {
        /// bash, zsh, fish, powershell or elvish
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
}

#[derive(Args, Debug)]
pub struct InputArgs {
    /// The file of changes: a CSV (or tab- ; or |-separated text), or an Excel workbook (.xlsx).
    pub input: PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
    /// The operation for every row (else from an `operation` column, else from the header).
    #[arg(long, value_parser = OperationParser, value_name = "OPERATION")]
    pub operation: Option<&'static OpSpec>,
    /// Where to write the results (default: <input stem>.results.csv beside the input; plan and
    /// validate say their own).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Read the file in this encoding instead of finding it: a label such as utf-8, windows-1252,
    /// iso-8859-1, iso-8859-15, utf-16le or utf-16be (WHATWG names). Without it, a file is UTF-8 or
    /// Windows-1252 as its bytes show, and one that mixes both is refused; a byte-order mark in
    /// the file wins over it.
    #[arg(long, value_parser = encoding, value_name = "LABEL")]
    pub encoding: Option<&'static encoding_rs::Encoding>,
    /// Use this delimiter (`,` `;` `tab` `|`) instead of detecting it from the header. For an
    /// Excel workbook, the delimiter of the results CSV (default `,`).
    #[arg(long, value_parser = delimiter)]
    pub delimiter: Option<u8>,
    /// The sheet of an Excel workbook (.xlsx) to read (default: its first sheet).
    #[arg(long, value_name = "NAME")]
    pub sheet: Option<String>,
    /// Read the input's column HEADER as pcbulk's COLUMN (repeatable), e.g. --map 'Tenant
    /// ID=customer_id'. A mapping wins over header matching; a header it displaces is carried.
    #[arg(long = "map", value_name = "HEADER=COLUMN", value_parser = column_map)]
    pub map: Vec<ColumnMap>,
}

/// `--map HEADER=COLUMN`, its column one pcbulk reads (any spelling, or an alias).
fn column_map(v: &str) -> Result<ColumnMap, String> {
    ColumnMap::parse(v, &ops::all_columns())
}

/// What a run shows and leaves besides its results: progress, logs, the summary and the report.
#[derive(Args, Debug, Default)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Write the summary as one JSON object to PATH when the run ends (also when it stops early);
    /// `-` writes it to stdout, and the text summary goes to stderr.
    #[arg(long, value_name = "PATH|-")]
    pub summary_json: Option<PathBuf>,
    /// Write a self-contained HTML page to attach to a ticket: the summary, calls and 429s over
    /// time, latency percentiles, failed rows by error code, and what changed.
    #[arg(long, value_name = "PATH.html")]
    pub report: Option<PathBuf>,
    /// No progress display.
    #[arg(long, short, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log what happens: -v one line per row, -vv one per call, retry and 429 too (on stderr).
    #[arg(long, short, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// How log lines look: text, or json (one object per line).
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl From<&OutputArgs> for crate::report::Output {
    fn from(a: &OutputArgs) -> Self {
        use crate::report::{progress::Mode, JsonTo};
        crate::report::Output {
            progress: match (a.quiet, a.verbose) {
                (true, _) => Mode::Quiet,
                (false, 0) => Mode::Auto,
                (false, _) => Mode::Lines,
            },
            summary_json: a.summary_json.as_ref().map(|p| match p.to_str() {
                Some("-") => JsonTo::Stdout,
                _ => JsonTo::File(p.clone()),
            }),
            report: a.report.clone(),
        }
    }
}

/// Where calls go.
#[derive(Args, Debug)]
pub struct TargetArgs {
    /// Partner Center API base URL; https, or http on loopback.
    #[arg(long, env = "PCBULK_BASE_URL", conflicts_with_all = ["cloud", "sandbox"])]
    pub base_url: Option<String>,
    /// Which Partner Center cloud to use.
    #[arg(long, value_enum)]
    pub cloud: Option<Cloud>,
    /// Run against the embedded simulator, seeded with the demo tenant; needs no credentials.
    #[arg(long)]
    pub sandbox: bool,
}

#[derive(Subcommand, Debug)]
pub enum AuthCommand {
    /// Get a token with the configured credentials and make one harmless GET: prints the tenant,
    /// cloud, base URL, token expiry and whether it is App+User. Exit 0; 3 with the reason when the
    /// token or the check is refused; 2 when no credentials are set.
    Status(TargetArgs),
    /// Sign in with a device code, as `az login --use-device-code` does: prints a URL and a code
    /// to enter there, waits for the sign-in, and keeps the refresh token in the operating system's
    /// credential store (or an owner-only file where there is none, or PCBULK_TOKEN_STORE=file) for
    /// apply, plan, export and auth status to use. Needs PCBULK_CLIENT_ID: the application (client)
    /// id of the partner's app registration, with public client flows allowed. Exit 0 once signed
    /// in; 2 when the code was declined or expired, or nothing could be kept; 3 when the authority
    /// could not be reached.
    #[command(after_help = crate::help::AUTH_LOGIN)]
    Login(LoginArgs),
    /// Forget the sign-in `pcbulk auth login` kept for this target (its tenant and client id from
    /// PCBULK_TENANT_ID and PCBULK_CLIENT_ID when several were kept). Variables in the environment
    /// are not touched.
    Logout(TargetArgs),
}

/// `pcbulk auth login`.
#[derive(Args, Debug)]
pub struct LoginArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The tenant to sign in to: `organizations` (any work account), a domain such as
    /// contoso.onmicrosoft.com, or a tenant id.
    #[arg(long, env = "PCBULK_TENANT_ID", default_value = "organizations")]
    pub tenant: String,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Cloud {
    Global,
    Usgov,
    China,
}

/// The most calls per second a flag may ask for: far above any service limit, and low enough that
/// every interval computed from it is a real duration.
const MAX_RATE: f64 = 1_000_000.0;
/// The longest time a flag may give, in seconds (a day).
const MAX_SECONDS: f64 = 86_400.0;

/// How a run's calls are paced, retried and given up on: the same for apply and plan.
#[derive(Args, Debug)]
pub struct PacingArgs {
    /// Calls per second over all calls (at most 1000000).
    #[arg(long, default_value = "10", value_parser = rate)]
    pub rate: f64,
    /// Calls in flight at once (1 to 256).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Stop (exit 3) once this many rows have failed: a count, or a share like 5%.
    #[arg(long, value_parser = max_errors)]
    pub max_errors: Option<MaxErrors>,
    /// Attempts per call, the first included (1 to 50).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub max_attempts: u32,
    /// Seconds to wait for one call before it counts as timed out (at most a day). A write whose
    /// answer was lost (or came as a 408 or 5xx) is looked for at 1x, 2x and 3x this (at least 1,
    /// 2 and 3 s) before it is sent again; one the service finishes later still may land twice.
    #[arg(long, default_value = "30", value_parser = seconds)]
    pub timeout: Duration,
}

/// `pcbulk export`: the operation, where to write, what to keep, the target and the pacing.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The operation whose rows to write.
    #[arg(value_parser = OperationParser, value_name = "OPERATION")]
    pub operation: &'static OpSpec,
    /// Where to write: FILE.csv, FILE.xlsx (an Excel workbook), or - for stdout (the default). A
    /// file appears under its name only once complete.
    #[arg(long, value_name = "FILE.csv|FILE.xlsx|-")]
    pub out: Option<PathBuf>,
    /// Keep only rows whose COLUMN holds VALUE (repeatable: all must hold). COLUMN is any of the
    /// export's columns, spelt as a header may be; GUIDs, statuses and country codes compare in any
    /// case, yes/no columns in any spelling.
    #[arg(long = "where", value_name = "COLUMN=VALUE")]
    pub filters: Vec<String>,
    /// Export only this customer (repeatable), read by id instead of listing every customer.
    #[arg(long = "customer", value_name = "ID")]
    pub customer: Vec<String>,
    /// Export only the customers of this file's customer_id column (CSV or .xlsx).
    #[arg(long, value_name = "FILE", conflicts_with = "customer")]
    pub customers: Option<PathBuf>,
    /// Customers asked for per page of the customer listing (the service may give fewer).
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub page_size: u32,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub pacing: PacingArgs,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `pcbulk plan`: the input, the target and the pacing, and nothing that writes.
#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub pacing: PacingArgs,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub pacing: PacingArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Continue a run from its results file and the journal beside it. The journal is checked
    /// against the input first; one that does not fit is refused (exit 2) and nothing is sent.
    #[arg(long)]
    pub resume: bool,
    /// Continue like --resume, and also re-attempt rows that failed.
    #[arg(long)]
    pub retry_failed: bool,
    /// The same as `pcbulk plan`: read each row's current values and say what applying it would
    /// change, writing nothing (results in <input stem>.plan.csv).
    #[arg(long)]
    pub dry_run: bool,
    /// Go ahead without asking: the answer to the confirmation a production target asks for (a
    /// run with no terminal to ask on needs it).
    #[arg(long)]
    pub yes: bool,
    /// Apply a file again to a target it was already applied to (the earlier run's records are
    /// still moved aside, never replaced), and apply rows whatever their expected_<column> cells
    /// say.
    #[arg(long)]
    pub force: bool,
    /// Apply only the rows this plan (from `pcbulk plan`) marks `planned`; a row whose current
    /// values are no longer what the plan read fails with error_code `drifted`.
    #[arg(long, value_name = "PLAN", conflicts_with = "dry_run")]
    pub from_plan: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SandboxArgs {
    /// Loopback address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8765")]
    pub listen: SocketAddr,
    /// Seed for everything random the sandbox does.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Lifetime in seconds of access tokens from the token endpoint (at most a year).
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub token_lifetime: u64,
    /// Extra subscriptions for Contoso (ids d1000000-0000-4000-8000-000000000000 upward), for load tests.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=10_000_000))]
    pub subscriptions: u32,
    /// Seconds a refresh token stays usable after a newer one was issued (at most a year).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=31_536_000))]
    pub refresh_grace: u64,
    /// Partner-wide limit in calls per second (a token bucket, or fixed windows with --window).
    #[arg(long, value_parser = rate)]
    pub rate: Option<f64>,
    /// Token bucket size: calls admitted at once after a pause (default: one second's worth).
    #[arg(long, requires = "rate", conflicts_with = "window", value_parser = rate)]
    pub burst: Option<f64>,
    /// Fixed windows of this many seconds, each admitting rate × window calls; a throttled call is
    /// told to come back when the window ends.
    #[arg(long, requires = "rate", value_parser = seconds)]
    pub window: Option<Duration>,
    /// A limit per customer tenant, in calls per second (token bucket).
    #[arg(long, value_parser = rate)]
    pub customer_rate: Option<f64>,
    /// Token bucket size of the per-customer limit (default: one second's worth).
    #[arg(long, requires = "customer_rate", value_parser = rate)]
    pub customer_burst: Option<f64>,
    /// Send Retry-After as an HTTP date instead of seconds.
    #[arg(long)]
    pub retry_after_date: bool,
    /// Latency of each call in milliseconds: `N` or `MIN-MAX` (uniform).
    #[arg(long, default_value = "0", value_parser = latency)]
    pub latency_ms: (Duration, Duration),
    /// A slow tail: `SHARE:MS`, e.g. 0.01:2000 makes 1% of calls take 2 s.
    #[arg(long, value_parser = tail)]
    pub tail: Option<(f64, Duration)>,
    /// Share of calls answered with a server error (see --fail-status), not applied.
    #[arg(long, default_value = "0", value_parser = share)]
    pub fail_share: f64,
    /// The server errors --fail-share answers with, comma-separated, chosen at random.
    #[arg(long, default_value = "500,503", value_parser = fail_statuses)]
    pub fail_status: Statuses,
    /// Extra customers with billing profiles (ids c1000000-0000-4000-8000-000000000000 upward).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=10_000_000))]
    pub customers: u32,
    /// Share of calls whose connection drops before the change is applied.
    #[arg(long, default_value = "0", value_parser = share)]
    pub drop_before: f64,
    /// Share of calls whose connection drops after the change is applied.
    #[arg(long, default_value = "0", value_parser = share)]
    pub drop_after: f64,
    /// Share of answers that start with a UTF-8 byte-order mark.
    #[arg(long, default_value = "0", value_parser = share)]
    pub bom_share: f64,
    /// Share of billing-profile PUTs that find the profile edited meanwhile (stale ETag).
    #[arg(long, default_value = "0", value_parser = share)]
    pub etag_churn: f64,
    /// How a stale ETag is refused: 412, 2055 (400 with code 2055) or mix.
    #[arg(long, default_value = "412", value_parser = ["412", "2055", "400", "mix"])]
    pub stale_etag: String,
    /// Do not recognise a repeated MS-RequestId: a write sent again is applied again (a note added
    /// twice), as by a service that does not replay retries.
    #[arg(long)]
    pub no_replay: bool,
    /// Apply each write this many milliseconds after it arrives, even if its client has gone
    /// (timed out or disconnected); the answer follows if the client is still there.
    #[arg(long, value_name = "MS", value_parser = millis)]
    pub late_writes: Option<Duration>,
    /// Share of writes applied and then answered with 502, 503 or 504, as by a gateway.
    #[arg(long, value_name = "SHARE", default_value = "0", value_parser = share)]
    pub applied_5xx: f64,
    /// Share of 429 answers without Retry-After.
    #[arg(long = "429-without-retry-after", value_name = "SHARE", default_value = "0", value_parser = share)]
    pub no_retry_after: f64,
    /// Calls refused with 429 cost nothing (by default they count against the limit, as the
    /// reference says every retry does).
    #[arg(long)]
    pub free_429s: bool,
    /// Serve one support-profile path per method: `pages` (GET /profiles/support, PUT
    /// /profiles/supportprofile, as the reference pages) or `sdk` (both on /profiles/support).
    /// By default both paths serve both methods.
    #[arg(long, value_name = "WHICH", num_args = 0..=1, default_missing_value = "pages", value_parser = ["pages", "sdk"])]
    pub strict_paths: Option<String>,
    /// Accept an If-Match without quotes (by default refused: 400, code 800002).
    #[arg(long)]
    pub unquoted_if_match: bool,
    /// Let any token call any operation for any customer (by default app-only tokens get 403/900329
    /// outside the billing profile, and customers without a delegated role 403/900308).
    #[arg(long)]
    pub any_token: bool,
    /// Accept billing and support-profile bodies without checks, wiping fields they leave out (by
    /// default such bodies are refused: 400, code 800002).
    #[arg(long)]
    pub partial_bodies: bool,
    /// Answer 502, 503 and 504 with a gateway's HTML page or an empty body.
    #[arg(long)]
    pub gateway_bodies: bool,

    // The tenant's shape and its listings.
    /// Subscriptions for each of the --customers load customers (ids d3<customer>-0000-4000-8000-<n>).
    #[arg(long, value_name = "M", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1_000))]
    pub subscriptions_per_customer: u32,
    /// The most items a page of the customer listing holds (a smaller `size` is honoured).
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub page_size: u32,
    /// Write links.next.uri with `/v1/` in it, alternately `/v1/customers?…` and `v1/customers?…`.
    #[arg(long)]
    pub next_with_v1: bool,
    /// Let a subscription PATCH change partnerId, the reseller of record (by default a changed
    /// partnerId is refused: the reference does not show it writable).
    #[arg(long)]
    pub writable_partner_id: bool,
    /// Serve HTTPS (HTTP/2 or HTTP/1.1, by ALPN) with a certificate made at start for 127.0.0.1,
    /// ::1 and localhost, signed by a CA made at start whose certificate goes to --tls-ca-out.
    #[arg(long, requires = "tls_ca_out")]
    pub tls: bool,
    /// Where --tls writes its CA's certificate (PEM), for SSL_CERT_FILE=PATH on the client.
    #[arg(long, value_name = "PATH", requires = "tls")]
    pub tls_ca_out: Option<std::path::PathBuf>,
    /// Another host name the --tls certificate holds (repeatable): for a client that reaches the
    /// sandbox by that name, through a proxy that maps it to loopback.
    #[arg(long, value_name = "NAME", requires = "tls")]
    pub tls_name: Vec<String>,
}

// Value parsers: each checks its bounds, so nothing downstream can overflow or panic.

/// An operation's name, spelled as header names are (case, spaces, `-` and `_` aside); a name
/// that is none gets the closest as a "did you mean". Its possible values feed the completions.
#[derive(Clone)]
struct OperationParser;

impl clap::builder::TypedValueParser for OperationParser {
    type Value = &'static OpSpec;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let v = value.to_string_lossy();
        ops::by_name(&v).ok_or_else(|| {
            let arg = arg.map_or_else(|| "OPERATION".to_owned(), ToString::to_string);
            clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                format!("invalid value '{v}' for '{arg}': {}\n", ops::unknown(&v)),
            )
            .with_cmd(cmd)
        })
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            ops::OPERATIONS
                .iter()
                .map(|o| clap::builder::PossibleValue::new(o.name)),
        ))
    }
}

fn encoding(v: &str) -> Result<&'static encoding_rs::Encoding, String> {
    // The labels every browser knows; "replacement" ones would read the file as one U+FFFD.
    encoding_rs::Encoding::for_label_no_replacement(v.trim().as_bytes()).ok_or_else(|| {
        format!(
            "{v:?} is not an encoding pcbulk knows; use a label such as utf-8, windows-1252, \
             iso-8859-1, iso-8859-15, utf-16le or utf-16be"
        )
    })
}

fn delimiter(v: &str) -> Result<u8, String> {
    match v {
        "," | "comma" => Ok(b','),
        ";" | "semicolon" => Ok(b';'),
        "\t" | "tab" | "\\t" => Ok(b'\t'),
        "|" | "pipe" => Ok(b'|'),
        other => Err(format!("{other:?} is not one of , ; tab |")),
    }
}

fn number(v: &str) -> Result<f64, String> {
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .ok_or_else(|| format!("{v:?} is not a number"))
}

fn rate(v: &str) -> Result<f64, String> {
    let r = number(v)?;
    if r > 0.0 && r <= MAX_RATE {
        Ok(r)
    } else {
        Err(format!(
            "{r} is not a number of calls per second above 0 and at most {MAX_RATE}"
        ))
    }
}

fn seconds(v: &str) -> Result<Duration, String> {
    let s = number(v)?;
    if s > 0.0 && s <= MAX_SECONDS {
        Ok(Duration::from_secs_f64(s))
    } else {
        Err(format!(
            "{s} is not a number of seconds above 0 and at most {MAX_SECONDS}"
        ))
    }
}

fn millis(v: &str) -> Result<Duration, String> {
    let ms = number(v)?;
    if (0.0..=MAX_SECONDS * 1000.0).contains(&ms) {
        Ok(Duration::from_secs_f64(ms / 1000.0))
    } else {
        Err(format!(
            "{ms} is not a number of milliseconds from 0 to a day"
        ))
    }
}

fn share(v: &str) -> Result<f64, String> {
    let s = number(v)?;
    if (0.0..=1.0).contains(&s) {
        Ok(s)
    } else {
        Err(format!("{s} is not a share between 0 and 1"))
    }
}

fn latency(v: &str) -> Result<(Duration, Duration), String> {
    let (lo, hi) = match v.split_once('-') {
        Some((lo, hi)) => (millis(lo)?, millis(hi)?),
        None => (millis(v)?, millis(v)?),
    };
    if hi < lo {
        return Err(format!("{v}: the maximum is below the minimum"));
    }
    Ok((lo, hi))
}

fn tail(v: &str) -> Result<(f64, Duration), String> {
    let (sh, ms) = v
        .split_once(':')
        .ok_or_else(|| format!("{v:?} is not SHARE:MS, e.g. 0.01:2000"))?;
    Ok((share(sh)?, millis(ms)?))
}

/// HTTP statuses given as one comma-separated value.
#[derive(Debug, Clone)]
pub struct Statuses(pub Vec<u16>);

fn fail_statuses(v: &str) -> Result<Statuses, String> {
    v.split(',')
        .map(|s| match s.trim().parse::<u16>() {
            Ok(code @ 500..=599) => Ok(code),
            _ => Err(format!("{s:?} is not a 5xx status")),
        })
        .collect::<Result<_, _>>()
        .map(Statuses)
}

fn max_errors(v: &str) -> Result<MaxErrors, String> {
    let v = v.trim();
    let bad = || format!("{v:?} is not a count (e.g. 10) or a share (e.g. 5%)");
    if let Some(p) = v.strip_suffix('%') {
        match p.trim().parse::<f64>() {
            Ok(p) if p > 0.0 && p <= 100.0 => Ok(MaxErrors::Percent(p)),
            _ => Err(bad()),
        }
    } else {
        match v.parse::<usize>() {
            Ok(n) if n > 0 => Ok(MaxErrors::Count(n)),
            _ => Err(bad()),
        }
    }
}

impl TryFrom<&SandboxArgs> for crate::sandbox::Options {
    type Error = Error;

    fn try_from(a: &SandboxArgs) -> Result<Self, Error> {
        Ok(crate::sandbox::Options {
            listen: a.listen,
            seed: a.seed,
            token_lifetime: Duration::from_secs(a.token_lifetime),
            refresh_grace: Duration::from_secs(a.refresh_grace),
            extra_subscriptions: a.subscriptions as usize,
            extra_customers: a.customers as usize,
            subscriptions_per_customer: a.subscriptions_per_customer as usize,
            page_size: a.page_size as usize,
            next_with_v1: a.next_with_v1,
            replay: !a.no_replay,
            tls: a
                .tls_ca_out
                .as_ref()
                .map(|ca_out| crate::sandbox::tls::Tls {
                    ca_out: ca_out.clone(),
                    names: a.tls_name.clone(),
                }),
            rules: sandbox_rules(a),
            knobs: sandbox_knobs(a)?,
        })
    }
}

/// The sandbox's strictness flags, apart from its faults: each flag relaxes one rule of the
/// reference, so the sandbox is as strict as the service unless told otherwise.
fn sandbox_rules(a: &SandboxArgs) -> crate::sandbox::Rules {
    use crate::sandbox::{ProfilePaths, Rules};
    Rules {
        profile_paths: match a.strict_paths.as_deref() {
            Some("sdk") => ProfilePaths::Sdk,
            Some(_) => ProfilePaths::Pages,
            None => ProfilePaths::Both,
        },
        quoted_if_match: !a.unquoted_if_match,
        token_kinds: !a.any_token,
        full_bodies: !a.partial_bodies,
        gateway_bodies: a.gateway_bodies,
        writable_partner_id: a.writable_partner_id,
    }
}

/// The sandbox's faults, checked as a whole: the shares of calls that fail in some way cannot
/// add up to more than every call.
fn sandbox_knobs(a: &SandboxArgs) -> Result<crate::sandbox::faults::Knobs, Error> {
    use crate::sandbox::faults::{Knobs, StaleEtag, Throttle};
    let throttle = match (a.rate, a.window) {
        (None, _) => None,
        (Some(r), Some(window)) => Some(Throttle::Window {
            limit: (r * window.as_secs_f64()).round().clamp(1.0, 1e12) as u64,
            window,
        }),
        (Some(r), None) => Some(sandbox_bucket(r, a.burst)?),
    };
    let customer_throttle = a
        .customer_rate
        .map(|r| sandbox_bucket(r, a.customer_burst))
        .transpose()?;
    let (latency_min, latency_max) = a.latency_ms;
    let (tail_share, tail) = a.tail.unwrap_or((0.0, Duration::ZERO));
    if a.fail_share + a.drop_before + a.drop_after + a.applied_5xx > 1.0 {
        usage!("--fail-share, --drop-before, --drop-after and --applied-5xx add up to more than 1");
    }
    let stale_etag = match a.stale_etag.as_str() {
        "2055" | "400" => StaleEtag::Code2055,
        "mix" => StaleEtag::Mix,
        _ => StaleEtag::Status412,
    };
    Ok(Knobs {
        throttle,
        customer_throttle,
        retry_after_date: a.retry_after_date,
        latency_min,
        latency_max,
        tail_share,
        tail,
        fail_share: a.fail_share,
        fail_statuses: a.fail_status.0.clone(),
        drop_before: a.drop_before,
        drop_after: a.drop_after,
        applied_5xx: a.applied_5xx,
        late_writes: a.late_writes,
        refused_count: !a.free_429s,
        no_retry_after: a.no_retry_after,
        bom_share: a.bom_share,
        etag_churn: a.etag_churn,
        stale_etag,
    })
}

/// A token bucket for `--rate`/`--customer-rate`; the burst defaults to one second's calls (at
/// least one), since a bucket that holds less than one call would refuse every call.
fn sandbox_bucket(
    rate: f64,
    burst: Option<f64>,
) -> Result<crate::sandbox::faults::Throttle, Error> {
    let burst = burst.unwrap_or(rate.max(1.0));
    if burst < 1.0 {
        usage!("a burst must be at least 1 call, not {burst}");
    }
    Ok(crate::sandbox::faults::Throttle::Bucket { rate, burst })
}

impl TryFrom<&InputArgs> for InputConfig {
    type Error = Error;

    fn try_from(a: &InputArgs) -> Result<Self, Error> {
        InputConfig::from_args(a, "results")
    }
}

impl InputConfig {
    /// The input flags, with `--out` defaulting to `<input stem>.<kind>.csv`.
    pub fn from_args(a: &InputArgs, kind: &str) -> Result<Self, Error> {
        let out = a
            .out
            .clone()
            .unwrap_or_else(|| crate::config::default_path(&a.input, a.sheet.as_deref(), kind));
        if same_file(&out, &a.input) {
            usage!(
                "--out {} is the input file (or another name of it); the results must go elsewhere",
                out.display()
            );
        }
        Ok(InputConfig {
            input: a.input.clone(),
            out,
            operation: a.operation,
            read: ReadOptions {
                encoding: a.encoding,
                delimiter: a.delimiter,
                sheet: a.sheet.clone(),
            },
            mapping: a.map.clone(),
        })
    }
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

pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Credentials from the environment (SPEC: Credentials).
fn credentials(cloud: Cloud, base_url: &str) -> Result<Credentials, Error> {
    if let Some(t) = env("PCBULK_ACCESS_TOKEN") {
        return Ok(Credentials::Static(SecretString::from(t.trim().to_owned())));
    }
    let refresh = env("PCBULK_REFRESH_TOKEN");
    let tenant = env("PCBULK_TENANT_ID");
    let client = env("PCBULK_CLIENT_ID");
    let authority = authority(cloud, base_url)?;
    match (refresh, tenant, client) {
        (Some(refresh), Some(tenant), Some(client_id)) => {
            Ok(Credentials::Refresh {
                token_url: format!("{authority}/{}/oauth2/token", tenant.trim()),
                client_id: client_id.trim().to_owned(),
                client_secret: env("PCBULK_CLIENT_SECRET").map(SecretString::from),
                refresh_token: SecretString::from(refresh.trim().to_owned()),
                keep: env("PCBULK_TOKEN_CACHE")
                    .map(|p| crate::api::token_store::Keeper::Cache(PathBuf::from(p))),
            })
        }
        (None, tenant, client) => {
            let found =
                crate::api::token_store::find(&authority, tenant.as_deref(), client.as_deref())
                    .map_err(Error::usage)?;
            match found {
                Some(login) => Ok(Credentials::Refresh {
                    token_url: login.token_url(),
                    client_id: login.client_id.clone(),
                    client_secret: None,
                    refresh_token: crate::api::token_store::load(&login).map_err(Error::usage)?,
                    keep: Some(crate::api::token_store::Keeper::Login(Box::new(login))),
                }),
                None => usage!(
                    "no credentials: sign in with `pcbulk auth login`, or set PCBULK_ACCESS_TOKEN, \
                     or PCBULK_REFRESH_TOKEN with PCBULK_TENANT_ID and PCBULK_CLIENT_ID (and \
                     PCBULK_CLIENT_SECRET for a web app); or try the tool with --sandbox"
                ),
            }
        }
        _ => usage!(
            "incomplete credentials: App+User needs all of PCBULK_REFRESH_TOKEN, PCBULK_TENANT_ID and \
             PCBULK_CLIENT_ID"
        ),
    }
}

/// The token authority: `PCBULK_AUTHORITY`; else a loopback base URL, a sandbox, which is its own
/// authority (so nothing meant for a simulator goes to a real one); else the cloud's.
fn authority(cloud: Cloud, base_url: &str) -> Result<String, Error> {
    match env("PCBULK_AUTHORITY") {
        Some(a) => check_url("PCBULK_AUTHORITY", &a),
        None if crate::target::is_loopback(base_url) => Ok(base_url.to_owned()),
        None => Ok(cloud.authority().to_owned()),
    }
}

impl TargetArgs {
    fn base_url(&self, cloud: Cloud) -> Result<String, Error> {
        match self.base_url.as_deref().filter(|u| !u.trim().is_empty()) {
            Some(u) => check_url("the base URL", u),
            None => Ok(cloud.base_url().to_owned()),
        }
    }

    /// The token authority for these flags (`auth login`, `auth logout`).
    pub(crate) fn authority(&self) -> Result<String, Error> {
        let cloud = self.cloud.unwrap_or(Cloud::Global);
        authority(cloud, &self.base_url(cloud)?)
    }
}

/// A tenant as it may stand in the authority's URL: a domain, an id, or `organizations`.
pub(crate) fn tenant(t: &str) -> Result<String, Error> {
    let t = t.trim();
    let ok = !t.is_empty()
        && t.len() <= 256
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !ok {
        usage!(
            "--tenant {:?} is not a tenant: give a domain (contoso.onmicrosoft.com), a tenant id, \
             or organizations",
            crate::api::error::clean(t, &[])
        );
    }
    Ok(t.to_owned())
}

impl TryFrom<&TargetArgs> for Target {
    type Error = Error;

    fn try_from(a: &TargetArgs) -> Result<Self, Error> {
        if a.sandbox {
            return Ok(Target::Sandbox);
        }
        let cloud = a.cloud.unwrap_or(Cloud::Global);
        let base_url = a.base_url(cloud)?;
        Ok(Target::Service {
            credentials: credentials(cloud, &base_url)?,
            base_url,
        })
    }
}

impl TargetArgs {
    /// The cloud as the user named it (or the custom base URL / sandbox), for messages.
    pub fn cloud_name(&self) -> &'static str {
        if self.sandbox {
            return "sandbox (embedded simulator)";
        }
        if self
            .base_url
            .as_deref()
            .is_some_and(|u| !u.trim().is_empty())
        {
            return "custom base URL";
        }
        match self.cloud.unwrap_or(Cloud::Global) {
            Cloud::Global => "global cloud",
            Cloud::Usgov => "usgov cloud",
            Cloud::China => "china cloud (21Vianet)",
        }
    }
}

impl TryFrom<&ApplyArgs> for ApplyConfig {
    type Error = Error;

    fn try_from(a: &ApplyArgs) -> Result<Self, Error> {
        if (a.resume || a.retry_failed) && a.target.sandbox {
            usage!(
                "--resume needs the service the run was sent to, and the embedded sandbox ends with \
                 the run: start `pcbulk sandbox` in another terminal and use --base-url to try --resume"
            );
        }
        if (a.resume || a.retry_failed) && a.dry_run {
            usage!("--resume and --dry-run do not go together: a dry run sends nothing to resume");
        }
        let mut cfg = run_config(&a.input, &a.pacing, &a.target, a.dry_run)?;
        cfg.resume = a.resume || a.retry_failed;
        cfg.retry_failed = a.retry_failed;
        cfg.yes = a.yes;
        cfg.force = a.force;
        cfg.from_plan = a.from_plan.clone();
        Ok(cfg)
    }
}

impl TryFrom<&PlanArgs> for ApplyConfig {
    type Error = Error;

    /// A plan is an apply that only reads (`apply --dry-run`).
    fn try_from(a: &PlanArgs) -> Result<Self, Error> {
        run_config(&a.input, &a.pacing, &a.target, true)
    }
}

impl TryFrom<&ExportArgs> for crate::config::ExportConfig {
    type Error = Error;

    fn try_from(a: &ExportArgs) -> Result<Self, Error> {
        let out = export_out(a)?;
        if a.output.report.is_some() {
            usage!(
                "export writes no --report; its summary is the text on stderr and --summary-json"
            );
        }
        let cloud = a.target.cloud.unwrap_or(Cloud::Global);
        if matches!(cloud, Cloud::China) && !a.operation.in_china {
            usage!(
                "{} is not offered in the China cloud (21Vianet)",
                a.operation.name
            );
        }
        Ok(crate::config::ExportConfig {
            op: a.operation,
            out,
            target: Target::try_from(&a.target)?,
            settings: Settings {
                rate: a.pacing.rate,
                concurrency: a.pacing.concurrency.into(),
                retry: RetryPolicy {
                    max_attempts: a.pacing.max_attempts,
                    ..RetryPolicy::default()
                },
                max_errors: a.pacing.max_errors,
                reads_only: true,
            },
            timeout: a.pacing.timeout,
            filters: a.filters.clone(),
            customers: a.customer.clone(),
            customers_file: a.customers.clone(),
            page_size: a.page_size as usize,
            target_name: match a.target.sandbox {
                true => "sandbox".to_owned(),
                false => a.target.base_url(cloud)?,
            },
        })
    }
}

/// The export's `--out` (`None` for stdout), refused before anything is sent when it would clash
/// with another file of the same run: the export must not overwrite what it reads or reports to.
fn export_out(a: &ExportArgs) -> Result<Option<PathBuf>, Error> {
    let out = a.out.clone().filter(|p| p.as_os_str() != "-");
    let json_to_stdout = a
        .output
        .summary_json
        .as_ref()
        .is_some_and(|p| p.as_os_str() == "-");
    if out.is_none() && json_to_stdout {
        usage!(
            "--summary-json - and the export both go to stdout; give --out FILE.csv, or \
             --summary-json PATH"
        );
    }
    let json_to = a.output.summary_json.as_deref();
    if let (Some(out), Some(json)) = (&out, json_to) {
        if crate::fsafe::same_file(out, json) {
            usage!(
                "--summary-json {} is the export's own --out: give the summary another path",
                json.display()
            );
        }
    }
    if let Some(file) = &a.customers {
        if out
            .as_deref()
            .is_some_and(|o| crate::fsafe::same_file(o, file))
        {
            usage!(
                "--customers {} is the export's own --out: the export would replace the list \
                 it reads; give --out another path",
                file.display()
            );
        }
    }
    if out
        .as_ref()
        .is_some_and(|p| p.as_os_str().to_string_lossy().ends_with(['/', '\\']))
    {
        usage!("--out names a folder: give a file name (FILE.csv or FILE.xlsx)");
    }
    Ok(out)
}

/// What apply and plan share: the input, the pacing and the target; a plan only reads.
fn run_config(
    input: &InputArgs,
    pacing: &PacingArgs,
    target: &TargetArgs,
    plan: bool,
) -> Result<ApplyConfig, Error> {
    let cloud = target.cloud.unwrap_or(Cloud::Global);
    Ok(ApplyConfig {
        input: InputConfig::from_args(input, if plan { "plan" } else { "results" })?,
        resume: false,
        retry_failed: false,
        target: Some(Target::try_from(target)?),
        settings: Settings {
            rate: pacing.rate,
            concurrency: pacing.concurrency.into(),
            retry: RetryPolicy {
                max_attempts: pacing.max_attempts,
                ..RetryPolicy::default()
            },
            max_errors: pacing.max_errors,
            reads_only: plan,
        },
        timeout: pacing.timeout,
        china: matches!(cloud, Cloud::China),
        cloud: target.cloud_name(),
        yes: false,
        force: false,
        from_plan: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// Found by an outside test: with -v on a terminal, log lines were printed over the bar.
    #[test]
    fn verbose_runs_show_progress_as_lines_never_as_a_bar_the_logs_would_tear() {
        use crate::report::progress::Mode;
        let mode = |args: &[&str]| {
            let cli = Cli::try_parse_from(args).unwrap();
            crate::report::Output::from(cli.output().unwrap()).progress
        };
        assert_eq!(mode(&["pcbulk", "apply", "x.csv", "--sandbox"]), Mode::Auto);
        assert_eq!(
            mode(&["pcbulk", "apply", "x.csv", "--sandbox", "-v"]),
            Mode::Lines
        );
        assert_eq!(
            mode(&["pcbulk", "plan", "x.csv", "--sandbox", "-vv"]),
            Mode::Lines
        );
        assert_eq!(
            mode(&["pcbulk", "apply", "x.csv", "--sandbox", "-q"]),
            Mode::Quiet
        );
    }

    #[test]
    fn every_command_parses_with_its_defaults() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        for args in [
            &["pcbulk", "sandbox"][..],
            &["pcbulk", "apply", "x.csv", "--sandbox"],
            &["pcbulk", "validate", "x.csv", "--delimiter", ";"],
            &["pcbulk", "template", "support-contact"],
        ] {
            let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            if let Command::Sandbox(a) = &cli.command {
                assert!(crate::sandbox::Options::try_from(a).is_ok());
            }
        }
    }

    #[test]
    fn plan_takes_target_and_pacing_flags_and_refuses_apply_s_others() {
        let plan = Cli::try_parse_from([
            "pcbulk",
            "plan",
            "x.csv",
            "--operation",
            "support-contact",
            "--out",
            "p.csv",
            "--rate",
            "50",
            "--concurrency",
            "4",
            "--max-attempts",
            "2",
            "--timeout",
            "5",
            "--max-errors",
            "3",
            "--sandbox",
        ]);
        assert!(
            matches!(&plan, Ok(Cli { command: Command::Plan(a) }) if a.pacing.rate == 50.0
                && a.pacing.concurrency == 4 && a.target.sandbox),
            "{plan:?}"
        );
        for flag in [
            &["--yes"][..],
            &["--force"],
            &["--resume"],
            &["--retry-failed"],
            &["--dry-run"],
            &["--from-plan", "p.csv"],
        ] {
            let args = [&["pcbulk", "plan", "x.csv", "--sandbox"][..], flag].concat();
            let e = Cli::try_parse_from(args.clone())
                .err()
                .unwrap_or_else(|| panic!("{args:?} was taken"));
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::UnknownArgument,
                "{args:?}"
            );
        }
    }

    #[test]
    fn max_errors_count_or_share() {
        assert_eq!(max_errors("10").unwrap(), MaxErrors::Count(10));
        assert_eq!(max_errors("5%").unwrap(), MaxErrors::Percent(5.0));
        for bad in ["0", "0%", "150%", "ten", "-1"] {
            assert!(max_errors(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn absurd_numbers_are_refused_by_the_parser_not_a_panic() {
        for args in [
            &["pcbulk", "apply", "x.csv", "--timeout", "1e300"][..],
            &["pcbulk", "apply", "x.csv", "--rate", "1e10"],
            &["pcbulk", "apply", "x.csv", "--rate", "NaN"],
            &["pcbulk", "apply", "x.csv", "--rate", "0"],
            &["pcbulk", "apply", "x.csv", "--concurrency", "100000"],
            &["pcbulk", "sandbox", "--latency-ms", "1e300"],
            &["pcbulk", "sandbox", "--latency-ms", "5-1"],
            &["pcbulk", "sandbox", "--rate", "5", "--window", "1e300"],
            &[
                "pcbulk",
                "sandbox",
                "--token-lifetime",
                "18446744073709551615",
            ],
            &["pcbulk", "sandbox", "--tail", "0.5:inf"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
        let ok = Cli::try_parse_from([
            "pcbulk",
            "apply",
            "x.csv",
            "--rate",
            "1e6",
            "--timeout",
            "86400",
        ]);
        assert!(ok.is_ok(), "{ok:?}");
    }
}
