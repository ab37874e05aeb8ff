//! Escrow v2: creation and deposits, channels (open, top up, request close, close), withdrawal,
//! protocol fees, and every getter (`get_channel` read into a [`ChannelState`]).

use serde::Serialize;

use super::root::RootClient;
use super::{AMOUNT_LIMIT, call, get_method, invalid, query_id};
use crate::chain::{AccountStatus, ChainApi, StackEntry};
use crate::channel::{ChannelRef, ChannelState};
use crate::contracts::{ContractResult, Outcome, StackReader};
use crate::messages::v2::escrow::{
    CloseChannel, CollectFees, Deposit, OpenChannel, RequestClose, TopUp, Withdraw,
};
use crate::messages::v2::notify::ChannelOpened;
use crate::messages::v2::records::ChannelParties;
use crate::messages::v2::root::CreateEscrow;
use crate::tlb::{ArcCell, Cell, TlbType, TonAddress};
use crate::wallet::{MessageSender, SendOptions};

/// `get_escrow_state` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EscrowState {
    /// Root.
    pub root: TonAddress,
    /// Owner (the client).
    pub owner: TonAddress,
    /// Initialised by Root.
    pub initialized: bool,
    /// Id the next channel gets.
    pub next_channel_id: u64,
    /// Channels open.
    pub open_channels: u8,
    /// Locked by channels (amount - settled + relayer fees due, per channel).
    pub locked: u128,
    /// Protocol fees owed to the treasury.
    pub fees_due: u128,
    /// Free balance (clamped at 0; it is negative only transiently).
    pub free: u128,
}

/// `get_escrow_config` result.
#[derive(Debug, Clone, PartialEq)]
pub struct EscrowConfigView {
    /// Grace period (s).
    pub grace_period: u32,
    /// Longest channel lifetime (s).
    pub max_channel_lifetime: u32,
    /// Relayer fee cap (bps).
    pub relayer_fee_cap_bps: u16,
    /// Protocol fee (bps).
    pub protocol_fee_bps: u16,
    /// Treasury.
    pub treasury: TonAddress,
    /// Worker code (a channel's Worker is derived with it).
    pub worker_code: ArcCell,
}

/// `get_fees`: the least value each message to an Escrow must carry beyond what it moves, from
/// the current network config (nanoTON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EscrowFees {
    /// OpenChannel.
    pub open_channel: u128,
    /// TopUp.
    pub top_up: u128,
    /// RequestClose.
    pub request_close: u128,
    /// CloseChannel.
    pub close_channel: u128,
    /// Withdraw.
    pub withdraw: u128,
    /// CollectFees.
    pub collect_fees: u128,
    /// The Escrow's part of a settlement (included in the Worker's settle fee).
    pub settle: u128,
}

/// Parameters of [`EscrowClient::open_channel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenChannelArgs {
    /// Locked for the worker (nanoTON, < 2^64); sent with the OpenChannel.
    pub amount: u128,
    /// Owner of the only Worker the channel can pay.
    pub worker_owner: TonAddress,
    /// Unix expiry (within Root's maximum channel lifetime).
    pub expires_at: u32,
    /// Price per input token, fixed for the channel's life (the worker's published one).
    pub price_in: u128,
    /// Price per output token, fixed for the channel's life.
    pub price_out: u128,
    /// The client's ed25519 voucher key (not its wallet key).
    pub voucher_key: [u8; 32],
    /// Relayer wallet.
    pub relayer: TonAddress,
    /// Relayer fee (bps, at most Root's cap).
    pub relayer_fee_bps: u16,
    /// Whether the Escrow tells the relayer (a `channel_opened` message, its forward fee paid
    /// from the open's value); without it the client gives the relayer the channel id itself.
    pub notify_relayer: bool,
}

impl OpenChannelArgs {
    /// Whether `st` is the channel these arguments open (the parties and terms fixed at open).
    fn opened(&self, st: &ChannelState) -> bool {
        st.worker_owner == self.worker_owner
            && st.relayer == self.relayer
            && st.voucher_key == self.voucher_key
            && st.expires_at == self.expires_at
            && (st.price_in, st.price_out) == (self.price_in, self.price_out)
            && st.relayer_fee_bps == self.relayer_fee_bps
    }
}

/// An opened channel: the id the Escrow assigned and the reference vouchers and receipts carry.
#[derive(Debug, Clone)]
pub struct ChannelOpen {
    /// Network, Root, Escrow and the assigned id.
    pub channel: ChannelRef,
    /// The channel's Worker contract, as the Escrow computed it.
    pub worker: TonAddress,
    /// The channel as the Escrow holds it right after the open.
    pub state: ChannelState,
    /// The transactions of the open.
    pub outcome: Outcome,
}

/// Client of one Escrow v2 contract.
#[derive(Debug, Clone)]
pub struct EscrowClient<'a, C> {
    chain: &'a C,
    root: TonAddress,
    address: TonAddress,
}

impl<'a, C: ChainApi> EscrowClient<'a, C> {
    /// Client of the Escrow of `owner` under `root` (address from Root's getter).
    pub async fn for_owner(
        chain: &'a C,
        root: &TonAddress,
        owner: &TonAddress,
    ) -> ContractResult<Self> {
        let address = RootClient::at(chain, root.clone())
            .escrow_address(owner)
            .await?;
        Ok(Self::at(chain, root.clone(), address))
    }

    /// Client of the Escrow at `address` under `root`.
    pub fn at(chain: &'a C, root: TonAddress, address: TonAddress) -> Self {
        Self {
            chain,
            root,
            address,
        }
    }

    /// The Escrow's address.
    pub fn address(&self) -> &TonAddress {
        &self.address
    }

    /// The Escrow's Root.
    pub fn root(&self) -> &TonAddress {
        &self.root
    }

    async fn send(
        &self,
        wallet: &impl MessageSender,
        op: &'static str,
        value: u128,
        body: Cell,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        call(self.chain, wallet, op, &self.address, value, body, opts).await
    }

    /// Deposits `amount` into the free balance: through Root's CreateEscrow while the Escrow is
    /// not deployed (value = amount + Root's `get_fees().create_escrow`; this deploys it), with
    /// Deposit afterwards (value = amount).
    pub async fn deposit(
        &self,
        wallet: &impl MessageSender,
        amount: u128,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        if amount == 0 {
            return Err(invalid("deposit", "amount must be positive"));
        }
        let st = self.chain.account(&self.address).await?;
        if st.status == AccountStatus::Active {
            let body = Deposit {
                query_id: query_id(),
            }
            .to_cell()?;
            self.send(wallet, "deposit", amount, body, opts).await
        } else {
            let fee = RootClient::at(self.chain, self.root.clone())
                .fees()
                .await?
                .create_escrow;
            let body = CreateEscrow {
                query_id: query_id(),
            }
            .to_cell()?;
            call(
                self.chain,
                wallet,
                "create escrow",
                &self.root,
                amount + fee,
                body,
                opts,
            )
            .await
        }
    }

    /// Opens a channel in one transaction: the OpenChannel carries `amount` plus the Escrow's
    /// `get_fees().open_channel`, and the Escrow locks `amount`. The id the Escrow assigned is
    /// read from its ChannelOpened notice when the relayer is notified, otherwise from the
    /// Escrow's channel counter around the open (only the owner opens channels); either way the
    /// channel is then read back with `get_channel` and checked against `a`.
    pub async fn open_channel(
        &self,
        wallet: &impl MessageSender,
        a: OpenChannelArgs,
        opts: &SendOptions,
    ) -> ContractResult<ChannelOpen> {
        const OP: &str = "open channel";
        if a.amount == 0 || a.amount >= AMOUNT_LIMIT {
            return Err(invalid(
                OP,
                format!("amount {} must be in 1..2^64", a.amount),
            ));
        }
        if a.price_in >= AMOUNT_LIMIT || a.price_out >= AMOUNT_LIMIT {
            return Err(invalid(OP, "prices must be below 2^64"));
        }
        let fee = self.fees().await?.open_channel;
        let global_id = self.global_id().await?;
        // Without the notice, the id is the counter's value before the open (read only then: each
        // read is a request against a rate-limited API).
        let first_id = if a.notify_relayer {
            None
        } else {
            Some(self.state().await?.next_channel_id)
        };
        let body = OpenChannel {
            query_id: query_id(),
            amount: a.amount,
            expires_at: a.expires_at,
            price_in: a.price_in,
            price_out: a.price_out,
            relayer_fee_bps: a.relayer_fee_bps,
            notify_relayer: a.notify_relayer,
            parties: ChannelParties {
                worker_owner: a.worker_owner.clone(),
                relayer: a.relayer.clone(),
                voucher_key: a.voucher_key,
            },
        }
        .to_cell()?;
        let outcome = self.send(wallet, OP, a.amount + fee, body, opts).await?;
        let (channel_id, state) = if let Some(first_id) = first_id {
            self.find_opened(global_id, first_id, &a).await?
        } else {
            let opened = channel_opened(&outcome, &self.address).ok_or_else(|| {
                invalid(OP, "the Escrow accepted the open but sent no ChannelOpened")
            })?;
            let st = self
                .channel_with(global_id, opened.channel_id)
                .await?
                .filter(|st| a.opened(st))
                .ok_or_else(|| {
                    invalid(
                        OP,
                        format!(
                            "channel {} the Escrow announced is not the one opened",
                            opened.channel_id
                        ),
                    )
                })?;
            (opened.channel_id, st)
        };
        tracing::info!(target: "sdk::contracts::v2", escrow = %self.address, channel_id, amount = %a.amount, notify = a.notify_relayer, "channel opened");
        Ok(ChannelOpen {
            channel: state.channel.clone(),
            worker: state.worker.clone(),
            state,
            outcome,
        })
    }

    /// The channel `a` opened among the ids assigned from `first_id` on.
    async fn find_opened(
        &self,
        global_id: i32,
        first_id: u64,
        a: &OpenChannelArgs,
    ) -> ContractResult<(u64, ChannelState)> {
        let next = self.state().await?.next_channel_id;
        for id in first_id..next {
            if let Some(st) = self.channel_with(global_id, id).await?
                && a.opened(&st)
            {
                return Ok((id, st));
            }
        }
        Err(invalid(
            "open channel",
            format!("no channel with these terms among ids {first_id}..{next}"),
        ))
    }

    /// Adds `amount` to channel `channel_id` (value = amount + `get_fees().top_up`).
    pub async fn top_up(
        &self,
        wallet: &impl MessageSender,
        channel_id: u64,
        amount: u128,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        if amount == 0 || amount >= AMOUNT_LIMIT {
            return Err(invalid(
                "top up",
                format!("amount {amount} must be in 1..2^64"),
            ));
        }
        let fee = self.fees().await?.top_up;
        let body = TopUp {
            query_id: query_id(),
            channel_id,
            amount,
        }
        .to_cell()?;
        self.send(wallet, "top up", amount + fee, body, opts).await
    }

    /// Asks to close channel `channel_id` early: the worker keeps the grace period to settle.
    pub async fn request_close(
        &self,
        wallet: &impl MessageSender,
        channel_id: u64,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        let fee = self.fees().await?.request_close;
        let body = RequestClose {
            query_id: query_id(),
            channel_id,
        }
        .to_cell()?;
        self.send(wallet, "request close", fee, body, opts).await
    }

    /// Closes channel `channel_id` once its settlement window ended (anyone may): the rest
    /// returns to the free balance, the relayer gets its accrued fees.
    pub async fn close_channel(
        &self,
        wallet: &impl MessageSender,
        channel_id: u64,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        let fee = self.fees().await?.close_channel;
        let body = CloseChannel {
            query_id: query_id(),
            channel_id,
        }
        .to_cell()?;
        self.send(wallet, "close channel", fee, body, opts).await
    }

    /// Withdraws `amount` of the free balance to the owner.
    pub async fn withdraw(
        &self,
        wallet: &impl MessageSender,
        amount: u128,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        let fee = self.fees().await?.withdraw;
        let body = Withdraw {
            query_id: query_id(),
            amount,
        }
        .to_cell()?;
        self.send(wallet, "withdraw", fee, body, opts).await
    }

    /// Pays the protocol fees due to the treasury (anyone may).
    pub async fn collect_fees(
        &self,
        wallet: &impl MessageSender,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        let fee = self.fees().await?.collect_fees;
        let body = CollectFees {
            query_id: query_id(),
        }
        .to_cell()?;
        self.send(wallet, "collect fees", fee, body, opts).await
    }

    async fn get(&self, method: &'static str, args: &[StackEntry]) -> ContractResult<StackReader> {
        get_method(self.chain, &self.address, method, args).await
    }

    /// `get_escrow_state`.
    pub async fn state(&self) -> ContractResult<EscrowState> {
        let mut r = self.get("get_escrow_state", &[]).await?;
        let v = EscrowState {
            root: r.address("root")?,
            owner: r.address("owner")?,
            initialized: r.bool("initialized")?,
            next_channel_id: r.uint("next_channel_id")?,
            open_channels: r.uint("open_channels")?,
            locked: r.uint("locked")?,
            fees_due: r.uint("fees_due")?,
            free: r.int("free")?.max(0) as u128,
        };
        r.finish()?;
        Ok(v)
    }

    /// `get_network_global_id`: the network's global id, as the Escrow checks vouchers with it.
    pub async fn global_id(&self) -> ContractResult<i32> {
        let mut r = self.get("get_network_global_id", &[]).await?;
        let v = r.int("global_id")?;
        i32::try_from(v).map_err(|_| invalid("get_network_global_id", format!("{v} is no int32")))
    }

    /// `get_channel`: channel `channel_id` as the Escrow holds it, or `None` when it holds none
    /// (never opened, or closed). `global_id` names the network in the returned reference.
    pub async fn channel_with(
        &self,
        global_id: i32,
        channel_id: u64,
    ) -> ContractResult<Option<ChannelState>> {
        let mut r = self
            .get("get_channel", &[StackEntry::Int(i128::from(channel_id))])
            .await?;
        if !r.bool("found")? {
            return Ok(None);
        }
        let amount = r.uint("amount")?;
        let settled = r.uint("settled")?;
        let last_seq = r.uint("last_seq")?;
        let expires_at = r.uint("expires_at")?;
        let close_requested_at = r.uint("close_requested_at")?;
        let settle_until = r.uint("settle_until")?;
        let price_in = r.uint("price_in")?;
        let price_out = r.uint("price_out")?;
        let worker = r.address("worker")?;
        let relayer = r.address("relayer")?;
        let relayer_fee_bps = r.uint("relayer_fee_bps")?;
        let protocol_fee_bps = r.uint("protocol_fee_bps")?;
        let voucher_key = r.bits256("voucher_key")?;
        let worker_owner = r.address("worker_owner")?;
        let relayer_due = r.uint("relayer_due")?;
        r.finish()?;
        Ok(Some(ChannelState {
            channel: ChannelRef {
                global_id,
                root: self.root.clone(),
                escrow: self.address.clone(),
                channel_id,
            },
            amount,
            settled,
            last_seq,
            expires_at,
            close_requested_at,
            settle_until,
            price_in,
            price_out,
            worker,
            worker_owner,
            relayer,
            relayer_fee_bps,
            protocol_fee_bps,
            voucher_key,
            relayer_due,
        }))
    }

    /// `get_channel`, naming the network the Escrow reports.
    pub async fn channel(&self, channel_id: u64) -> ContractResult<Option<ChannelState>> {
        let g = self.global_id().await?;
        self.channel_with(g, channel_id).await
    }

    /// `get_escrow_config` (fails with `EscrowNotInitialized` before Root initialised it).
    pub async fn config(&self) -> ContractResult<EscrowConfigView> {
        let mut r = self.get("get_escrow_config", &[]).await?;
        let v = EscrowConfigView {
            grace_period: r.uint("grace_period")?,
            max_channel_lifetime: r.uint("max_channel_lifetime")?,
            relayer_fee_cap_bps: r.uint("relayer_fee_cap_bps")?,
            protocol_fee_bps: r.uint("protocol_fee_bps")?,
            treasury: r.address("treasury")?,
            worker_code: r.cell("worker_code")?,
        };
        r.finish()?;
        Ok(v)
    }

    /// `get_fees`.
    pub async fn fees(&self) -> ContractResult<EscrowFees> {
        let mut r = self.get("get_fees", &[]).await?;
        let v = EscrowFees {
            open_channel: r.uint("open_channel")?,
            top_up: r.uint("top_up")?,
            request_close: r.uint("request_close")?,
            close_channel: r.uint("close_channel")?,
            withdraw: r.uint("withdraw")?,
            collect_fees: r.uint("collect_fees")?,
            settle: r.uint("settle")?,
        };
        r.finish()?;
        Ok(v)
    }
}

/// The ChannelOpened the Escrow at `escrow` sent in `outcome`, if any.
fn channel_opened(outcome: &Outcome, escrow: &TonAddress) -> Option<ChannelOpened> {
    outcome
        .txs
        .iter()
        .filter(|t| &t.account == escrow && t.succeeded())
        .flat_map(|t| t.out_msgs.iter())
        .filter(|m| m.opcode == Some(ChannelOpened::OP))
        .find_map(|m| {
            m.body
                .as_ref()
                .and_then(|b| ChannelOpened::from_cell(b).ok())
        })
}

impl From<ChannelOpen> for ChannelRef {
    fn from(o: ChannelOpen) -> Self {
        o.channel
    }
}
