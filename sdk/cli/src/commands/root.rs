//! `cocoon root …`: inspect and govern the Root.

use std::collections::BTreeMap;
use std::str::FromStr;

use anyhow::{Context, bail};
use clap::Subcommand;
use cocoon_sdk::contracts::RootClient;
use cocoon_sdk::job::ModelSpec;
use cocoon_sdk::messages::records::RootParams;
use cocoon_sdk::tlb::TonAddress;
use cocoon_sdk::units::{Ton, format_ton};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Ctx, RootArg, addr, hex32};

/// `cocoon root …`
#[derive(Debug, Subcommand)]
pub enum RootCmd {
    /// Show owner, parameters, policy and models.
    Show {
        /// Which Root.
        #[command(flatten)]
        root: RootArg,
    },
    /// Owner: set one parameter (min-stake, unbonding-delay, grace-period, relayer-fee-cap-bps,
    /// protocol-fee-bps, reporter-reward-bps, treasury, allowed-kinds).
    SetParam {
        /// Which Root.
        #[command(flatten)]
        root: RootArg,
        /// Parameter name.
        name: String,
        /// New value (TON for min-stake).
        value: String,
    },
    /// Owner: allow (or --remove) a measurement.
    AllowMeasurement {
        /// Which Root.
        #[command(flatten)]
        root: RootArg,
        /// Measurement (64 hex chars).
        measurement: String,
        /// Remove instead.
        #[arg(long)]
        remove: bool,
    },
    /// Owner: register a model: its hash is sha256("name@revision:weights-sha256").
    AddModel {
        /// Which Root.
        #[command(flatten)]
        root: RootArg,
        /// Model id (taken from --model when not given).
        #[arg(long)]
        id: Option<u32>,
        /// A model the sdk knows, by name (e.g. smollm2-135m-instruct): its id and hash.
        #[arg(long, conflicts_with_all = ["name", "hash"])]
        model: Option<String>,
        /// `name@revision:weights-sha256`.
        #[arg(long, conflicts_with = "hash")]
        name: Option<String>,
        /// The model hash directly (hex).
        #[arg(long)]
        hash: Option<String>,
    },
}

fn set_param(p: &mut RootParams, name: &str, value: &str) -> anyhow::Result<()> {
    let int = |v: &str| {
        v.parse::<u64>()
            .with_context(|| format!("{name}: not an integer: {v}"))
    };
    match name {
        "min-stake" => p.min_stake = Ton::from_str(value)?.nano(),
        "unbonding-delay" => p.unbonding_delay = u32::try_from(int(value)?)?,
        "grace-period" => p.grace_period = u32::try_from(int(value)?)?,
        "relayer-fee-cap-bps" => p.relayer_fee_cap_bps = u16::try_from(int(value)?)?,
        "protocol-fee-bps" => p.protocol_fee_bps = u16::try_from(int(value)?)?,
        "reporter-reward-bps" => p.reporter_reward_bps = u16::try_from(int(value)?)?,
        "treasury" => {
            p.treasury =
                TonAddress::from_str(value).map_err(|e| anyhow::anyhow!("treasury: {e}"))?
        }
        other => bail!("unknown parameter {other:?}"),
    }
    Ok(())
}

pub(super) async fn run(ctx: &Ctx, c: RootCmd) -> anyhow::Result<()> {
    let chain = ctx.chain()?;
    let opts = ctx.wallet.send_options();
    match c {
        RootCmd::Show { root } => {
            let r = RootClient::at(&chain, root.root);
            let owner = r.owner().await?;
            let params = r.params().await?;
            let policy = r.policy().await?;
            let models = r.models().await?;
            let human = format!(
                "root {}\n  owner: {}\n  min stake: {} TON\n  unbonding delay: {} s\n  grace period: {} s\n  relayer fee cap: {} bps\n  protocol fee: {} bps\n  reporter reward: {} bps\n  treasury: {}\n  allowed kinds: {:#05b}\n  measurements: {}\n  models: {}",
                addr(r.address(), ctx.net()),
                addr(&owner.owner, ctx.net()),
                format_ton(params.min_stake),
                params.unbonding_delay,
                params.grace_period,
                params.relayer_fee_cap_bps,
                params.protocol_fee_bps,
                params.reporter_reward_bps,
                addr(&params.treasury, ctx.net()),
                policy.allowed_kinds,
                policy.measurements.len(),
                models.len()
            );
            ctx.out.emit(
                human,
                json!({
                    "address": addr(r.address(), ctx.net()),
                    "owner": { "owner": addr(&owner.owner, ctx.net()), "pending_owner": owner.pending_owner.as_ref().map(|a| addr(a, ctx.net())) },
                    "params": {
                        "min_stake_nano": params.min_stake.to_string(), "unbonding_delay": params.unbonding_delay,
                        "grace_period": params.grace_period, "relayer_fee_cap_bps": params.relayer_fee_cap_bps,
                        "protocol_fee_bps": params.protocol_fee_bps, "reporter_reward_bps": params.reporter_reward_bps,
                        "treasury": addr(&params.treasury, ctx.net()),
                    },
                    "policy": policy,
                    "models": models.iter().map(|(k, v)| (k.to_string(), hex::encode(v))).collect::<BTreeMap<_, _>>(),
                }),
            );
        }
        RootCmd::SetParam { root, name, value } => {
            let w = ctx.open_wallet()?;
            let r = RootClient::at(&chain, root.root);
            let o = if name == "allowed-kinds" {
                let mask: u8 = value.parse().context("allowed-kinds: expected 0..255")?;
                ctx.out
                    .progress(
                        "setting allowed kinds",
                        r.set_allowed_kinds(&w, mask, &opts),
                    )
                    .await?
            } else {
                let mut p = r.params().await?;
                set_param(&mut p, &name, &value)?;
                ctx.out
                    .progress("setting parameters", r.set_params(&w, p, &opts))
                    .await?
            };
            ctx.done(&o, format!("{name} = {value}"));
        }
        RootCmd::AllowMeasurement {
            root,
            measurement,
            remove,
        } => {
            let w = ctx.open_wallet()?;
            let r = RootClient::at(&chain, root.root);
            let m = hex32(&measurement, "measurement")?;
            let o = if remove {
                ctx.out
                    .progress("removing measurement", r.remove_measurement(&w, m, &opts))
                    .await?
            } else {
                ctx.out
                    .progress("allowing measurement", r.add_measurement(&w, m, &opts))
                    .await?
            };
            ctx.done(
                &o,
                format!(
                    "measurement {} {}",
                    hex::encode(m),
                    if remove { "removed" } else { "allowed" }
                ),
            );
        }
        RootCmd::AddModel {
            root,
            id,
            model,
            name,
            hash,
        } => {
            let w = ctx.open_wallet()?;
            let r = RootClient::at(&chain, root.root);
            let (id, h) = match (model, name, hash) {
                (Some(m), None, None) => {
                    let spec = ModelSpec::by_name(&m)?;
                    (id.unwrap_or(spec.id), spec.registry_hash())
                }
                (None, Some(n), None) => (
                    id.context("--name needs --id")?,
                    Sha256::digest(n.as_bytes()).into(),
                ),
                (None, None, Some(h)) => {
                    (id.context("--hash needs --id")?, hex32(&h, "model hash")?)
                }
                _ => bail!("give --model, --name or --hash"),
            };
            let o = ctx
                .out
                .progress("registering model", r.set_model(&w, id, h, &opts))
                .await?;
            ctx.done(&o, format!("model {id} = {}", hex::encode(h)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_param_validates() {
        let mut p = RootParams {
            min_stake: 1,
            unbonding_delay: 1,
            grace_period: 1,
            relayer_fee_cap_bps: 1,
            protocol_fee_bps: 1,
            reporter_reward_bps: 1,
            treasury: TonAddress::NULL,
        };
        set_param(&mut p, "min-stake", "2.5").unwrap();
        assert_eq!(p.min_stake, 2_500_000_000);
        set_param(&mut p, "grace-period", "60").unwrap();
        assert_eq!(p.grace_period, 60);
        assert!(set_param(&mut p, "protocol-fee-bps", "70000").is_err());
        assert!(set_param(&mut p, "nope", "1").is_err());
        assert!(hex32("zz", "x").is_err());
        assert!(hex32(&"00".repeat(31), "x").is_err());
    }
}
