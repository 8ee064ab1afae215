//! The `pcbulk` binary: everything lives in the library.

// jemalloc: glibc's allocator spent a sixth of the wire benchmark's CPU in its slow paths (memory
// freed on another thread than the one that took it). Dirty pages go back to the system within a
// second, so peak memory follows what a run holds rather than what it once held.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &u8 = &b"narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0\0"[0];

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(pcbulk::main_with_args())
}
