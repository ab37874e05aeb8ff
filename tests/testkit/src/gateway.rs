//! The OpenAI-compatible gateway on a loopback port, over the real sdk client.

use cocoon_cli::gateway::{self, ClientBackend, GatewayConfig};
use cocoon_sdk::client::{Client, ReclaimOptions};
use tokio::sync::oneshot;

use crate::Result;

/// Serves the gateway over `client` on a free loopback port, with the reclaimer on as
/// `cocoon gateway` runs it by default; returns its base URL and the sender that stops it
/// (dropping the sender stops it too).
pub async fn start_gateway(
    client: Client,
    config: GatewayConfig,
) -> Result<(String, oneshot::Sender<()>)> {
    start_gateway_over(
        ClientBackend::with_reclaimer(client, ReclaimOptions::default()),
        config,
    )
    .await
}

/// [`start_gateway`] over a backend built by the caller.
pub async fn start_gateway_over(
    backend: ClientBackend,
    config: GatewayConfig,
) -> Result<(String, oneshot::Sender<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(gateway::serve(listener, backend, config, async move {
        let _ = stopped.await;
    }));
    Ok((url, stop))
}
