//! What a command runs with, checked: the library's own configuration types. The command line
//! (`cli`) only converts flags into these.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::api::auth::Credentials;
use crate::dispatch::Settings;
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

/// `pcbulk export`, checked.
pub struct ExportConfig {
    pub op: &'static OpSpec,
    /// `None`: stdout.
    pub out: Option<PathBuf>,
    pub target: Target,
    /// `reads_only` always: an export never writes to the service.
    pub settings: Settings,
    pub timeout: Duration,
    /// `--where`, as given (checked against the export's columns).
    pub filters: Vec<String>,
    /// `--customer`, as given.
    pub customers: Vec<String>,
    /// `--customers FILE`.
    pub customers_file: Option<PathBuf>,
    pub page_size: usize,
    /// `sandbox`, or the base URL: for the summary.
    pub target_name: String,
}

impl ApplyConfig {
    /// `plan` / `apply --dry-run`: reads only.
    pub fn is_plan(&self) -> bool {
        self.settings.reads_only
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
