//! An emulated BigBlueButton server (placeholder until the emulator lands).
#[derive(Debug, clap::Args)]
pub struct SimArgs {}

pub async fn run(_args: SimArgs) -> Result<(), Box<dyn std::error::Error>> {
    Err("not yet".into())
}
