//! The worked examples, variables and exit codes that end each command's `--help`: kept here, out
//! of `cli`, so the flags stay readable there and the teaching text reads as one piece here.

/// `pcbulk --help`: where to start, the environment, the exit codes.
pub const MAIN: &str = "\
Start here (the sandbox is a built-in simulator with a demo tenant; it needs no credentials):
  pcbulk template support-contact > contacts.csv   the columns, and an example row to edit
  pcbulk validate contacts.csv                     check every row; sends nothing
  pcbulk plan contacts.csv --sandbox               what applying would change, row by row
  pcbulk apply contacts.csv --sandbox              apply it to the sandbox
  pcbulk apply contacts.csv                        apply it to Partner Center (variables below)
Input: a CSV (, ; tab or |; UTF-8, UTF-16 or Windows-1252; a PowerShell Export-Csv file as it is)
or an Excel workbook (.xlsx: its first sheet, or --sheet NAME). Results: a CSV beside the input
(<input stem>.results.csv, .plan.csv, .validation.csv) with one line per input row.
Each command has worked examples: pcbulk apply --help, pcbulk template --help, ...

Environment:
  PCBULK_ACCESS_TOKEN     a ready bearer token, used as is
  PCBULK_TENANT_ID, PCBULK_CLIENT_ID, PCBULK_REFRESH_TOKEN, PCBULK_CLIENT_SECRET (optional)
                          App+User: access tokens are obtained and renewed from the refresh token
  PCBULK_TOKEN_CACHE      a file to keep the renewed tokens in between runs
  PCBULK_TOKEN_STORE      where `pcbulk auth login` keeps its sign-in: keyring (the operating
                          system's credential store, the default where there is one) or file
  PCBULK_AUTHORITY        token authority (default: the one of --cloud)
  PCBULK_BASE_URL         API base URL (the same as --base-url)
  PCBULK_LOG              log detail on stderr: warn (default), info, debug
  PCBULK_STATE_DIR        where the list of finished applies is kept (default:
                          $XDG_STATE_HOME/pcbulk, else ~/.local/state/pcbulk)

Exit codes:
  0  every row succeeded or was unchanged (validate, plan: every row is valid)
  1  the run finished, but at least one row is invalid or failed: see the results file
  2  usage or configuration error, or unreadable input: nothing was sent
  3  stopped after sending began (max errors, credentials refused, service unreachable,
     interrupted): the results so far are on disk, and --resume finishes the run

PowerShell:
  $env:PCBULK_ACCESS_TOKEN = '...'
  pcbulk apply .\\contacts.xlsx; if ($LASTEXITCODE -ne 0) { Import-Csv .\\contacts.results.csv | Where-Object status -ne succeeded }";

pub const APPLY: &str = "\
Examples:
  pcbulk apply contacts.csv --sandbox
      try the file on the built-in simulator (no credentials, nothing real changes)
  pcbulk plan contacts.csv && pcbulk apply contacts.csv --from-plan contacts.plan.csv
      look at what would change first, then apply exactly the rows the plan marks planned
  pcbulk apply contacts.xlsx --sheet Feuil1
      an Excel workbook as it is: that sheet (default: the first); results in contacts.Feuil1.results.csv
  pcbulk apply contacts.csv --rate 5 --max-errors 5%
      slower, and stop (exit 3) once 5% of the rows have failed
  pcbulk apply contacts.csv --resume
      finish a run that stopped (exit 3) without applying any row twice
  pcbulk apply contacts.csv --resume --retry-failed
      ... and try the failed rows again
  pcbulk apply contacts.csv --yes      (cron, CI: no terminal to confirm on)
Each row gets one line in the results file: succeeded, unchanged, invalid, failed or skipped,
with the reason in error_message. Exit codes: pcbulk --help.";

pub const PLAN: &str = "\
Examples:
  pcbulk plan contacts.csv --sandbox
      what applying the file to the sandbox would change (contacts.plan.csv)
  pcbulk plan contacts.csv
      the same against Partner Center: GETs only, nothing is written
  pcbulk apply contacts.csv --from-plan contacts.plan.csv
      then apply only the rows marked planned; a row changed since the plan fails as drifted
Each row's change column reads field: \"before\" → \"after\".";

pub const VALIDATE: &str = "\
Examples:
  pcbulk validate contacts.csv
      every row valid or invalid, with the reason, in contacts.validation.csv; no network at all
  pcbulk validate export.csv --operation billing-profile
      say which operation when the header alone does not
  pcbulk validate Classeur1.xlsx --sheet Feuil1
      an Excel workbook, one of its sheets
  pcbulk validate data.txt --delimiter ';' --encoding windows-1252
      when the file's delimiter or encoding cannot be told from it
Exit 0 when every row is valid, 1 when one is not, 2 when the file cannot be read.";

pub const TEMPLATE: &str = "\
Examples:
  pcbulk template support-contact > contacts.csv
      every column of the operation, and an example row (the sandbox's demo tenant) to edit
  pcbulk template billing-profile
      an empty cell in an optional column leaves that field as it is
Then: pcbulk validate contacts.csv, pcbulk plan contacts.csv --sandbox, pcbulk apply contacts.csv
--sandbox. Column names match ignoring case, spaces, - and _ (Customer ID = customer_id).";

pub const EXPORT: &str = "\
Examples:
  pcbulk export support-contact --sandbox --out contacts.csv
      one row per subscription: its support contact, the customer's and subscription's names
  pcbulk export support-contact --where support_tenant_id=e0000001-0000-4000-8000-000000000001 --out a.csv
      only the subscriptions that reseller supports
  pcbulk export billing-profile --customers customers.csv --out billing.xlsx
      the billing profiles of the customers in customers.csv's customer_id column, as a workbook
Then edit the file, and: pcbulk plan FILE, pcbulk apply FILE. Applied unchanged, an export changes
nothing (every row unchanged). Keep its pcbulk_export column: it tells pcbulk the cells are its own.
Exit 0 every target read, 1 some could not be (listed in the summary), 2 usage, 3 stopped (no file
is left under the --out name).";

pub const UNDO: &str = "\
Examples:
  pcbulk undo contacts.results.csv
      writes contacts.undo.csv, which puts back the values the run changed
  pcbulk apply contacts.undo.csv --sandbox
      apply it like any other file (here, to the sandbox the run went to); a row whose
      target was changed since the run fails as drifted and is left as it is
  pcbulk apply contacts.undo.csv --force
      again, to put those back too, over the later change (rows already put back are unchanged)";

pub const AUTH: &str = "\
Examples:
  pcbulk auth status
      the tenant and cloud the PCBULK_* credentials reach (see pcbulk --help)
  pcbulk auth status --cloud usgov
  pcbulk auth status --sandbox
  pcbulk auth login
      sign in once with a device code; apply, plan and auth status then use the sign-in";

pub const AUTH_LOGIN: &str = "\
Examples:
  PCBULK_CLIENT_ID=<app registration id> pcbulk auth login
      prints a URL and a code: enter the code there, sign in; the refresh token is kept in the
      operating system's credential store, or an owner-only file where there is none
  PCBULK_TOKEN_STORE=file pcbulk auth login --tenant contoso.onmicrosoft.com
      keep it in a file in pcbulk's state folder (or the file PCBULK_TOKEN_CACHE names): a cron job
      then renews it on every run
  pcbulk auth login --sandbox
      see the sign-in work against the built-in simulator (nothing is kept)
  pcbulk auth logout
      forget the sign-in again
Variables in the environment (PCBULK_ACCESS_TOKEN, PCBULK_REFRESH_TOKEN) win over a sign-in.";

pub const SANDBOX: &str = "\
Examples:
  pcbulk sandbox --listen 127.0.0.1:8080
      then, in another terminal: PCBULK_ACCESS_TOKEN=sandbox pcbulk apply contacts.csv --base-url http://127.0.0.1:8080
  pcbulk apply contacts.csv --sandbox
      the same in one command: a sandbox is started for the run and stopped after it";

pub const COMPLETIONS: &str = "\
Examples:
  pcbulk completions bash > ~/.local/share/bash-completion/completions/pcbulk
  pcbulk completions zsh > \"${fpath[1]}/_pcbulk\"
  pcbulk completions fish > ~/.config/fish/completions/pcbulk.fish
  pcbulk completions powershell >> $PROFILE      (PowerShell: then open a new window)";
