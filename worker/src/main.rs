//! `cocoon-worker`: the worker node and its inference engine (logic in `cocoon_worker::cli`).

use cocoon_worker::cli::{CONFIG_ENV, Cli};

fn main() -> anyhow::Result<()> {
    let cli: Cli = cocoon_sdk::args::config_file::parse(CONFIG_ENV);
    cocoon_worker::cli::run(cli)
}
