use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    eventyay_bbb::cli::run(eventyay_bbb::cli::Cli::parse()).await
}
