//! Escrow: create/deposit, open job, expire, withdraw, close, getters.

use serde::Serialize;

use super::root::RootClient;
use super::worker::hex32;
use super::{
    ContractError, ContractResult, MAX_COST_LIMIT, OP_GAS, Outcome, StackReader, TRACE_TIMEOUT,
    call, get_method, query_id,
};
use crate::chain::{AccountStatus, ChainApi, StackEntry};
use crate::messages::escrow::{Close, Deposit, ExpireJob, OpenJob, Withdraw};
use crate::messages::records::JobRoute;
use crate::messages::root::CreateEscrow;
use crate::tlb::{ArcCell, Cell, TlbType, TonAddress};
use crate::wallet::{MessageSender, OutMessage, SendOptions, Wallet};

/// `get_escrow_state` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EscrowState {
    /// Root.
    pub root: TonAddress,
    /// Owner.
    pub owner: TonAddress,
    /// Initialised by Root.
    pub initialized: bool,
    /// Highest job id opened.
    pub last_job_id: u64,
    /// Locked by open jobs.
    pub locked: u128,
    /// Fees owed to the treasury.
    pub fees_due: u128,
    /// Free balance (clamped at 0; it is negative only transiently).
    pub free: u128,
}

/// `get_job` result for a found job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobView {
    /// Model.
    pub model_id: u32,
    /// Locked funds.
    pub max_cost: u128,
    /// Deadline.
    pub deadline: u32,
    /// Relayer fee (bps).
    pub relayer_fee_bps: u16,
    /// Input commitment.
    #[serde(with = "hex32")]
    pub input_commitment: [u8; 32],
    /// Relayer.
    pub relayer: TonAddress,
    /// Named worker.
    pub worker: Option<TonAddress>,
}

/// `get_escrow_config` result.
#[derive(Debug, Clone, PartialEq)]
pub struct EscrowConfigView {
    /// Grace period (s).
    pub grace_period: u32,
    /// Relayer fee cap (bps).
    pub relayer_fee_cap_bps: u16,
    /// Protocol fee (bps).
    pub protocol_fee_bps: u16,
    /// Treasury.
    pub treasury: TonAddress,
    /// Worker code.
    pub worker_code: ArcCell,
}

/// Parameters of [`EscrowClient::open_job`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenJobArgs {
    /// Job id (above the last one).
    pub job_id: u64,
    /// Model.
    pub model_id: u32,
    /// Most the job may cost (nanoTON, < 2^64).
    pub max_cost: u128,
    /// Unix deadline.
    pub deadline: u32,
    /// Relayer fee (bps).
    pub relayer_fee_bps: u16,
    /// sha256 of the sealed input.
    pub input_commitment: [u8; 32],
    /// Relayer wallet.
    pub relayer: TonAddress,
    /// Only Worker allowed to settle, if any.
    pub worker: Option<TonAddress>,
}

/// Client of one Escrow contract.
#[derive(Debug)]
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
        Ok(Self {
            chain,
            root: root.clone(),
            address,
        })
    }

    /// The Escrow's address.
    pub fn address(&self) -> &TonAddress {
        &self.address
    }

    async fn send(
        &self,
        wallet: &impl MessageSender,
        op: &'static str,
        dest: &TonAddress,
        value: u128,
        body: Cell,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        call(
            self.chain,
            wallet,
            op,
            OutMessage::call(dest.clone(), value, body),
            opts,
        )
        .await
    }

    /// Deposits `amount`: through Root's `CreateEscrow` while the Escrow is not deployed (which
    /// deploys it), directly with `Deposit` afterwards.
    pub async fn deposit(
        &self,
        wallet: &impl MessageSender,
        amount: u128,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        if amount == 0 {
            return Err(ContractError::Invalid {
                op: "deposit",
                reason: "amount must be positive".into(),
            });
        }
        let st = self.chain.account(&self.address).await?;
        if st.status == AccountStatus::Active {
            self.send(
                wallet,
                "deposit",
                &self.address,
                amount,
                Deposit {
                    query_id: query_id(),
                }
                .to_cell()?,
                opts,
            )
            .await
        } else {
            self.send(
                wallet,
                "create escrow",
                &self.root,
                amount,
                CreateEscrow {
                    query_id: query_id(),
                }
                .to_cell()?,
                opts,
            )
            .await
        }
    }

    /// Opens a job, locking `max_cost`.
    pub async fn open_job(
        &self,
        wallet: &impl MessageSender,
        a: OpenJobArgs,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        if a.max_cost >= MAX_COST_LIMIT {
            return Err(ContractError::Invalid {
                op: "open job",
                reason: format!("max_cost {} must be below 2^64", a.max_cost),
            });
        }
        let body = OpenJob {
            query_id: query_id(),
            job_id: a.job_id,
            model_id: a.model_id,
            max_cost: a.max_cost,
            deadline: a.deadline,
            relayer_fee_bps: a.relayer_fee_bps,
            input_commitment: a.input_commitment,
            route: JobRoute {
                relayer: a.relayer,
                worker: a.worker,
            },
        };
        self.send(
            wallet,
            "open job",
            &self.address,
            OP_GAS,
            body.to_cell()?,
            opts,
        )
        .await
    }

    /// Expires a job after deadline + grace (anyone may).
    pub async fn expire(
        &self,
        wallet: &impl MessageSender,
        job_id: u64,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        self.send(
            wallet,
            "expire job",
            &self.address,
            OP_GAS,
            ExpireJob {
                query_id: query_id(),
                job_id,
            }
            .to_cell()?,
            opts,
        )
        .await
    }

    /// Expires several jobs in one wallet transfer (one `expire_job` message each). A job
    /// settled or expired meanwhile is refused by the Escrow without affecting the others, so
    /// the outcome is not checked for success: read the jobs afterwards ([`Self::job`]).
    pub async fn expire_many(
        &self,
        wallet: &Wallet,
        job_ids: &[u64],
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        let msgs = job_ids
            .iter()
            .map(|&job_id| {
                let body = ExpireJob {
                    query_id: query_id(),
                    job_id,
                }
                .to_cell()?;
                Ok(OutMessage::call(self.address.clone(), OP_GAS, body))
            })
            .collect::<ContractResult<Vec<_>>>()?;
        let c = wallet.send_and_confirm(self.chain, &msgs, opts).await?;
        Ok(Outcome::of(self.chain, "expire jobs", c, TRACE_TIMEOUT).await?)
    }

    /// Withdraws `amount` of free balance to the owner.
    pub async fn withdraw(
        &self,
        wallet: &impl MessageSender,
        amount: u128,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        self.send(
            wallet,
            "withdraw",
            &self.address,
            OP_GAS,
            Withdraw {
                query_id: query_id(),
                amount,
            }
            .to_cell()?,
            opts,
        )
        .await
    }

    /// Closes the escrow (no open jobs), paying everything out.
    pub async fn close(
        &self,
        wallet: &impl MessageSender,
        opts: &SendOptions,
    ) -> ContractResult<Outcome> {
        self.send(
            wallet,
            "close",
            &self.address,
            OP_GAS,
            Close {
                query_id: query_id(),
            }
            .to_cell()?,
            opts,
        )
        .await
    }

    async fn get(&self, method: &'static str, args: &[StackEntry]) -> ContractResult<StackReader> {
        get_method(self.chain, &self.address, method, args).await
    }

    /// `get_escrow_state`.
    pub async fn state(&self) -> ContractResult<EscrowState> {
        let mut r = self.get("get_escrow_state", &[]).await?;
        Ok(EscrowState {
            root: r.address("root")?,
            owner: r.address("owner")?,
            initialized: r.bool("initialized")?,
            last_job_id: r.uint("last_job_id")?,
            locked: r.uint("locked")?,
            fees_due: r.uint("fees_due")?,
            free: r.int("free")?.max(0) as u128,
        })
    }

    /// `get_job`: the job, if open.
    pub async fn job(&self, job_id: u64) -> ContractResult<Option<JobView>> {
        let mut r = self
            .get("get_job", &[StackEntry::Int(i128::from(job_id))])
            .await?;
        let found = r.bool("found")?;
        let view = JobView {
            model_id: r.uint("model_id")?,
            max_cost: r.uint("max_cost")?,
            deadline: r.uint("deadline")?,
            relayer_fee_bps: r.uint("relayer_fee_bps")?,
            input_commitment: r.bits256("input_commitment")?,
            relayer: match r.maybe_address("relayer")? {
                Some(a) => a,
                None => return Ok(None),
            },
            worker: r.maybe_address("worker")?,
        };
        Ok(found.then_some(view))
    }

    /// `get_escrow_config`.
    pub async fn config(&self) -> ContractResult<EscrowConfigView> {
        let mut r = self.get("get_escrow_config", &[]).await?;
        Ok(EscrowConfigView {
            grace_period: r.uint("grace_period")?,
            relayer_fee_cap_bps: r.uint("relayer_fee_cap_bps")?,
            protocol_fee_bps: r.uint("protocol_fee_bps")?,
            treasury: r.address("treasury")?,
            worker_code: r.cell("worker_code")?,
        })
    }
}
