//! The `pcbulk` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(pcbulk::main_with_args())
}
