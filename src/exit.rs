//! Exit codes, in one place (SPEC: Exit codes).

/// Every row succeeded or was unchanged (validate / dry run: every row is valid).
pub const OK: u8 = 0;
/// The run finished, but at least one row is invalid or failed.
pub const ROWS_FAILED: u8 = 1;
/// Usage or configuration error, or unreadable input: nothing was sent.
pub const USAGE: u8 = 2;
/// Aborted (max errors, credentials refused, interrupted): results so far are on disk.
pub const ABORTED: u8 = 3;
