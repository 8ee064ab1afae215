//! Validation throughput: reads and plans a generated support-contact file of N rows (default
//! 200,000) in memory and prints rows per second. No network.
//!
//! Run: `cargo bench --bench validate [-- ROWS]`

use std::time::Instant;

use pcbulk::input::{read_bytes, ReadOptions};
use pcbulk::plan::plan;

fn main() {
    let rows: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    let mut csv = String::from("Customer ID,Subscription ID,Support Tenant ID,Partner ID,Name\n");
    for i in 0..rows {
        csv.push_str(&format!(
            "c0000001-0000-4000-8000-000000000001,d1000000-0000-4000-8000-{i:012x},\
             e0000001-0000-4000-8000-000000000001,4391507,Trey Research\n"
        ));
    }
    let bytes = csv.into_bytes();
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let table = read_bytes(&bytes, &ReadOptions::default()).expect("parses");
        let p = plan(&table, None).expect("plans");
        assert_eq!(p.rows.len(), rows);
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "validate: {rows} rows, {:.1} MB, best of 3: {:.3} s = {:.0} rows/s",
        bytes.len() as f64 / 1e6,
        best,
        rows as f64 / best
    );
}
