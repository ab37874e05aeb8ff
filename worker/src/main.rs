//! `cocoon-worker`: the worker node and its inference engine (logic in `cocoon_worker::cli`).

use clap::Parser;

fn main() -> anyhow::Result<()> {
    cocoon_worker::cli::run(cocoon_worker::cli::Cli::parse())
}
