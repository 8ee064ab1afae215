//! `pcbulk validate`: every row `valid` or `invalid`, streamed through the checking pass; no
//! network at all.

use crate::config::InputConfig;
use crate::error::Error;
use crate::report::summary::Summary;

pub fn validate(cfg: &InputConfig) -> Result<Summary, Error> {
    crate::pipeline::check::validate(cfg, true)
}
