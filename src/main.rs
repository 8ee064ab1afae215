//! The `pcbulk` binary: everything lives in the library.

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(pcbulk::main_with_args())
}
