//! `pcbulk validate`: every row `valid` or `invalid`, streamed through the checking pass; no
//! network at all.

use crate::config::InputConfig;
use crate::error::Error;
use crate::report::summary::Summary;

pub fn validate(cfg: &InputConfig, output: &crate::report::Output) -> Result<Summary, Error> {
    let quiet = output.progress == crate::report::progress::Mode::Quiet;
    let started = std::time::SystemTime::now();
    let mut summary = crate::pipeline::check::validate(cfg, !quiet)?;
    summary.about.command = "validate";
    summary.about.input = Some(cfg.input.clone());
    summary.about.started = started;
    summary.about.finished = Some(std::time::SystemTime::now());
    Ok(summary)
}
