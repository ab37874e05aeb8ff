//! The `cocoon` command line (logic in `cocoon_cli::commands`).

use cocoon_sdk::args::config_file;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("COCOON_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli: cocoon_cli::Cli = config_file::parse(cocoon_cli::commands::CONFIG_ENV);
    if let Err(e) = cocoon_cli::run(cli).await {
        // One line with the whole cause chain; backtraces are for COCOON_LOG=debug sessions.
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
