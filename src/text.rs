//! Small text helpers every layer may use: they import nothing from the crate.

/// "1 row", "2 rows": a count with its noun.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
