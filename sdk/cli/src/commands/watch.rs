//! `cocoon watch`: reports equivocating workers (see [`crate::watch`]).
//!
//! ```text
//! cocoon --network localnet watch --root EQ… receipt-a.boc receipt-b.boc
//! some-tool | cocoon watch --root EQ… -      # one base64 or hex receipt per line
//! ```

use std::io::BufRead as _;
use std::path::PathBuf;

use anyhow::Context as _;
use cocoon_sdk::tlb::TonAddress;
use serde_json::json;

use super::{Ctx, addr};
use crate::watch::{Verdict, Watcher, parse_receipt};

/// `cocoon watch …`
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// The v2 Root the Workers belong to.
    #[arg(long, env = cocoon_sdk::args::ROOT_ENV)]
    pub root: TonAddress,
    /// Receipt files (binary BOC, base64 or hex); `-` reads one base64 or hex receipt per line
    /// from stdin until it closes.
    #[arg(required = true)]
    pub receipts: Vec<PathBuf>,
}

pub(super) async fn run(ctx: &Ctx, a: WatchArgs) -> anyhow::Result<()> {
    let mut watcher = Watcher::new(ctx.chain()?, a.root, ctx.open_wallet()?);
    let mut reports = Vec::new();
    for path in &a.receipts {
        let items: Vec<(String, Vec<u8>)> = if path.as_os_str() == "-" {
            std::io::stdin()
                .lock()
                .lines()
                .enumerate()
                .map(|(i, l)| Ok((format!("stdin line {}", i + 1), l?.into_bytes())))
                .filter(|r: &std::io::Result<(String, Vec<u8>)>| {
                    r.as_ref().map_or(true, |(_, l)| !l.trim_ascii().is_empty())
                })
                .collect::<std::io::Result<_>>()?
        } else {
            vec![(
                path.display().to_string(),
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
            )]
        };
        for (name, bytes) in items {
            let receipt = parse_receipt(&bytes).with_context(|| name.clone())?;
            match watcher
                .observe(receipt)
                .await
                .with_context(|| name.clone())?
            {
                Verdict::Kept | Verdict::Repeat => {}
                Verdict::Reported { worker, outcome } => {
                    let w = addr(&worker, ctx.net());
                    ctx.out.emit(
                        format!("{name}: equivocation by Worker {w}: reported (slashed)"),
                        json!({ "receipt": name, "worker": worker.to_hex(), "report": super::outcome_json(&outcome) }),
                    );
                    reports.push(w);
                }
            }
        }
    }
    if reports.is_empty() {
        ctx.out.emit(
            format!("{} receipts checked, no equivocation", watcher.held()),
            json!({ "held": watcher.held(), "reports": 0 }),
        );
    }
    Ok(())
}
