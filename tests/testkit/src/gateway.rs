//! The OpenAI-compatible gateway on a loopback port, over the real sdk client.

use cocoon_cli::gateway::{self, ClientBackend, GatewayConfig};
use cocoon_sdk::client::Client;
use tokio::sync::oneshot;

use crate::Result;

/// Serves the gateway over `client` on a free loopback port; returns its base URL and the sender
/// that stops it (dropping the sender stops it too).
pub async fn start_gateway(
    client: Client,
    config: GatewayConfig,
) -> Result<(String, oneshot::Sender<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(gateway::serve(
        listener,
        ClientBackend::new(client),
        config,
        async move {
            let _ = stopped.await;
        },
    ));
    Ok((url, stop))
}
