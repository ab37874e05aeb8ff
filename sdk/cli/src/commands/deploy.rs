//! `cocoon deploy`: deploy a Root owned by the wallet.

use std::collections::{BTreeMap, BTreeSet};

use cocoon_sdk::chain::TonCenterClient;
use cocoon_sdk::contracts::RootClient;
use cocoon_sdk::messages::records::{RootParams, RootPolicy};
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::units::{Ton, format_ton};
use serde_json::json;

use super::{Ctx, addr, outcome_json};

/// Default value attached to the Root deployment.
pub const DEFAULT_DEPLOY_VALUE: Ton = Ton(100_000_000);
/// Default parameters of a new Root.
pub mod root_defaults {
    /// Minimum stake (nanoTON): 10 TON.
    pub const MIN_STAKE: u128 = 10_000_000_000;
    /// Unbonding delay: 7 days.
    pub const UNBONDING_DELAY: u32 = 7 * 24 * 3600;
    /// Grace period: 1 hour.
    pub const GRACE_PERIOD: u32 = 3600;
    /// Relayer fee cap: 10 %.
    pub const RELAYER_FEE_CAP_BPS: u16 = 1000;
    /// Protocol fee: 1 %.
    pub const PROTOCOL_FEE_BPS: u16 = 100;
    /// Reporter reward: 20 % of a slashed stake.
    pub const REPORTER_REWARD_BPS: u16 = 2000;
    /// Allowed kinds: SEV-SNP and TDX (bits 1 and 2); simulated (bit 0) is never on by default.
    pub const ALLOWED_KINDS: u8 = 0b110;
}

/// Parameters of a new Root.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// Minimum worker stake (TON; `123n` for nanoTON).
    #[arg(long, default_value_t = Ton(root_defaults::MIN_STAKE))]
    pub min_stake: Ton,
    /// Unbonding delay, seconds.
    #[arg(long, default_value_t = root_defaults::UNBONDING_DELAY)]
    pub unbonding_delay: u32,
    /// Grace period after a job deadline, seconds.
    #[arg(long, default_value_t = root_defaults::GRACE_PERIOD)]
    pub grace_period: u32,
    /// Relayer fee cap, bps.
    #[arg(long, default_value_t = root_defaults::RELAYER_FEE_CAP_BPS)]
    pub relayer_fee_cap_bps: u16,
    /// Protocol fee, bps.
    #[arg(long, default_value_t = root_defaults::PROTOCOL_FEE_BPS)]
    pub protocol_fee_bps: u16,
    /// Reporter reward, bps of a slashed stake.
    #[arg(long, default_value_t = root_defaults::REPORTER_REWARD_BPS)]
    pub reporter_reward_bps: u16,
    /// Treasury address (default: the wallet).
    #[arg(long)]
    pub treasury: Option<TonAddress>,
    /// Allowed TEE kinds mask (bit 0 simulated, 1 SEV-SNP, 2 TDX).
    #[arg(long, default_value_t = root_defaults::ALLOWED_KINDS)]
    pub allowed_kinds: u8,
    /// Value attached to the deployment.
    #[arg(long, default_value_t = DEFAULT_DEPLOY_VALUE)]
    pub value: Ton,
}

pub(super) async fn run(ctx: &Ctx, a: DeployArgs) -> anyhow::Result<()> {
    let chain = ctx.chain()?;
    let w = ctx.open_wallet()?;
    let params = RootParams {
        min_stake: a.min_stake.nano(),
        unbonding_delay: a.unbonding_delay,
        grace_period: a.grace_period,
        relayer_fee_cap_bps: a.relayer_fee_cap_bps,
        protocol_fee_bps: a.protocol_fee_bps,
        reporter_reward_bps: a.reporter_reward_bps,
        treasury: a.treasury.unwrap_or_else(|| w.address().clone()),
    };
    let policy = RootPolicy {
        allowed_kinds: a.allowed_kinds,
        measurements: BTreeSet::new(),
    };
    let data = RootClient::<TonCenterClient>::initial_data(
        w.address().clone(),
        params,
        policy,
        BTreeMap::new(),
    )?;
    let (root, o) = ctx
        .out
        .progress(
            "deploying Root",
            RootClient::deploy(
                &chain,
                &w,
                &data,
                a.value.nano(),
                &ctx.wallet.send_options(),
            ),
        )
        .await?;
    ctx.out.emit(
        format!(
            "Root deployed at {}\n  export COCOON_ROOT={}\n  fees: {} TON",
            addr(root.address(), ctx.net()),
            addr(root.address(), ctx.net()),
            format_ton(o.total_fees())
        ),
        json!({ "root": addr(root.address(), ctx.net()), "outcome": outcome_json(&o) }),
    );
    Ok(())
}
