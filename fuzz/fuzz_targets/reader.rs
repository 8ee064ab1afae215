//! Any bytes through the input reader and the validator, for every operation: never a panic, and
//! one verdict per row.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pcbulk::input::{read_bytes, ReadOptions};
use pcbulk::planner::plan;

fuzz_target!(|data: &[u8]| {
    if let Ok(table) = read_bytes(data, &ReadOptions::default()) {
        if let Ok(p) = plan(&table, None) {
            assert_eq!(p.rows.len(), table.rows.len());
        }
        for op in pcbulk::ops::OPERATIONS {
            if let Ok(p) = plan(&table, Some(op)) {
                assert_eq!(p.rows.len(), table.rows.len());
            }
        }
    }
});
