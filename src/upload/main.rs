//! `hls-dvr-upload`: see `hls-dvr-upload --help` and ARCHITECTURE.md ("Code map").
fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    hls_dvr_upload::main(&args)
}
