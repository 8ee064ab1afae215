//! The one pipeline every command runs: `source` (bytes → rows, the encoding decided once),
//! `check` (rows → verdicts across cores, duplicates found by `crate::duplicates`), and for
//! `apply`, `engine` (rows → calls through the dispatcher → outcomes in input order, as events).

pub mod check;
pub mod engine;
pub mod source;
