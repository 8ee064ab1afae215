//! The `pcbulk` binary: everything lives in the library.

// jemalloc: glibc's allocator spent a sixth of the wire benchmark's CPU in its slow paths (memory
// freed on another thread than the one that took it). One arena: the checking pass's batches are
// freed on other threads than the ones that filled them, and with two arenas the freed memory was
// reused less and peak memory grew with the file (60.7 MiB at 100,000 rows, 65.8 at 1,000,000; one
// arena: 47.2 and 47.2, at the same speed within the noise). Dirty pages go back to the system within
// 100 ms, so peak memory follows what a run holds rather than what it once held. Unix only: jemalloc
// does not build for Windows, where the system allocator serves.
#[cfg(unix)]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(unix)]
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &u8 = &b"narenas:1,dirty_decay_ms:100,muzzy_decay_ms:0\0"[0];

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(pcbulk::main_with_args())
}
