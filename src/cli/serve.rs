//! `eventyay-bbb serve`: the service, until SIGINT or SIGTERM.

use crate::{
    app::{Service, shutdown_signal},
    config::{ServeArgs, Settings},
    telemetry::Telemetry,
};
use std::error::Error;

pub async fn run(args: ServeArgs, telemetry: &Telemetry) -> Result<(), Box<dyn Error>> {
    let settings = args.load()?;
    serve_metrics(telemetry).await?;
    run_until_signal(settings).await
}

/// The Prometheus endpoint, when `EVENTYAY_BBB_METRICS_LISTEN` names an address.
pub(super) async fn serve_metrics(telemetry: &Telemetry) -> Result<(), Box<dyn Error>> {
    if let Ok(listen) = std::env::var("EVENTYAY_BBB_METRICS_LISTEN") {
        let addr = listen
            .parse()
            .map_err(|_| format!("EVENTYAY_BBB_METRICS_LISTEN: {listen:?} is not an address"))?;
        telemetry.serve_metrics(addr).await?;
    }
    Ok(())
}

async fn run_until_signal(settings: Settings) -> Result<(), Box<dyn Error>> {
    let service = Service::start(settings).await?;
    shutdown_signal().await;
    tracing::info!("stopping: finishing running calls");
    service.stop().await;
    Ok(())
}
