//! `eventyay-bbb migrate`: applies pending migrations and exits (a deployment's migration job).

use crate::store::Store;
use std::error::Error;

pub async fn run(database_url: &str) -> Result<(), Box<dyn Error>> {
    Store::connect(database_url).await?.migrate().await?;
    tracing::info!("migrations applied");
    Ok(())
}
