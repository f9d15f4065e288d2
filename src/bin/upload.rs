//! `hls-dvr-upload`: see `hls-dvr-upload --help` and `src/upload/`.
fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    hls_dvr::upload::main(&args)
}
