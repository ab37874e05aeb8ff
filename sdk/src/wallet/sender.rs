//! [`MessageSender`]: what the contract clients need from a wallet — send one message and get
//! back the transaction that sent it — so an operation goes out through a person's V5R1
//! [`Wallet`] or a service's [`HighloadSender`] alike.

use std::future::Future;
use std::sync::Arc;

use super::highload::{HighloadError, HighloadSender};
use super::{OutMessage, SendOptions, Wallet, WalletError, WalletResult};
use crate::chain::{ChainApi, Message, Transaction};
use crate::tlb::TonAddress;

/// Sends one message at a time and waits until the chain shows it sent.
pub trait MessageSender: Send + Sync {
    /// The address the message comes from (what the receiving contract sees as its sender).
    fn address(&self) -> &TonAddress;

    /// Sends `msg` and waits until the chain shows it sent. Returns the transaction that sent
    /// it with `out_msgs` holding exactly that message (a batch's other messages left out), so
    /// tracing it follows this operation only.
    ///
    /// A V5R1 wallet sends through `chain` under `opts`; a [`HighloadSender`] sends through the
    /// chain client and settings its queue was started with, and ignores both.
    fn send_message<'a, C: ChainApi>(
        &'a self,
        chain: &'a C,
        msg: OutMessage,
        opts: &'a SendOptions,
    ) -> impl Future<Output = WalletResult<Transaction>> + Send + 'a;
}

impl MessageSender for Wallet {
    fn address(&self) -> &TonAddress {
        Wallet::address(self)
    }

    async fn send_message<'a, C: ChainApi>(
        &'a self,
        chain: &'a C,
        msg: OutMessage,
        opts: &'a SendOptions,
    ) -> WalletResult<Transaction> {
        let c = self.send_and_confirm(chain, &[msg], opts).await?;
        Ok(c.tx)
    }
}

impl MessageSender for HighloadSender {
    fn address(&self) -> &TonAddress {
        HighloadSender::address(self)
    }

    async fn send_message<'a, C: ChainApi>(
        &'a self,
        _chain: &'a C,
        msg: OutMessage,
        _opts: &'a SendOptions,
    ) -> WalletResult<Transaction> {
        let wanted = msg.clone();
        let sent = self.send(msg).await.map_err(into_wallet_error)?;
        let mut tx = sent.tx;
        let own = own_message(&tx.out_msgs, &wanted, sent.index).cloned();
        tx.out_msgs = own.into_iter().collect();
        Ok(tx)
    }
}

impl<T: MessageSender + ?Sized> MessageSender for &T {
    fn address(&self) -> &TonAddress {
        (**self).address()
    }

    fn send_message<'a, C: ChainApi>(
        &'a self,
        chain: &'a C,
        msg: OutMessage,
        opts: &'a SendOptions,
    ) -> impl Future<Output = WalletResult<Transaction>> + Send + 'a {
        (**self).send_message(chain, msg, opts)
    }
}

impl<T: MessageSender + ?Sized> MessageSender for Arc<T> {
    fn address(&self) -> &TonAddress {
        (**self).address()
    }

    fn send_message<'a, C: ChainApi>(
        &'a self,
        chain: &'a C,
        msg: OutMessage,
        opts: &'a SendOptions,
    ) -> impl Future<Output = WalletResult<Transaction>> + Send + 'a {
        (**self).send_message(chain, msg, opts)
    }
}

/// The sender of a service that may run either wallet: a V5R1 [`Wallet`] (one message per
/// seqno) or a [`HighloadSender`] (`--wallet.highload`: many messages in flight, no seqno race
/// with another process on the same key).
#[derive(Clone)]
pub enum ServiceSender {
    /// Sends from the V5R1 (or V4R2) wallet itself.
    Wallet(Wallet),
    /// Sends through the queue of a Highload Wallet v3.
    Highload(HighloadSender),
}

impl ServiceSender {
    /// `wallet` itself, or, when `highload`, the queue of the Highload Wallet v3 of its key
    /// ([`super::highload::HighloadWallet::of_wallet`]) started on `chain`.
    pub fn start<C: ChainApi + 'static>(
        wallet: &Wallet,
        highload: bool,
        chain: Arc<C>,
    ) -> WalletResult<Self> {
        if !highload {
            return Ok(Self::Wallet(wallet.clone()));
        }
        let h = super::highload::HighloadWallet::of_wallet(wallet)?;
        Ok(Self::Highload(HighloadSender::spawn(
            chain,
            h,
            super::highload::HighloadConfig::default(),
        )))
    }

    /// The address messages come from for `wallet` with or without `highload` (no queue is
    /// started): what a contract sees as the sender, e.g. a Worker's owner.
    pub fn address_of(wallet: &Wallet, highload: bool) -> WalletResult<TonAddress> {
        if highload {
            Ok(super::highload::HighloadWallet::of_wallet(wallet)?
                .address()
                .clone())
        } else {
            Ok(wallet.address().clone())
        }
    }
}

impl std::fmt::Debug for ServiceSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Self::Wallet(_) => "wallet",
            Self::Highload(_) => "highload",
        };
        f.debug_struct("ServiceSender")
            .field("kind", &kind)
            .field("address", &MessageSender::address(self).to_hex())
            .finish()
    }
}

impl MessageSender for ServiceSender {
    fn address(&self) -> &TonAddress {
        match self {
            Self::Wallet(w) => w.address(),
            Self::Highload(h) => h.address(),
        }
    }

    async fn send_message<'a, C: ChainApi>(
        &'a self,
        chain: &'a C,
        msg: OutMessage,
        opts: &'a SendOptions,
    ) -> WalletResult<Transaction> {
        match self {
            Self::Wallet(w) => w.send_message(chain, msg, opts).await,
            Self::Highload(h) => h.send_message(chain, msg, opts).await,
        }
    }
}

/// This send's message among a batch's: the one at its position when it is that message
/// (receiver, value, body), else the first that is — the order a node lists out messages in is
/// not something to bet another operation's outcome on.
fn own_message<'m>(out: &'m [Message], msg: &OutMessage, index: usize) -> Option<&'m Message> {
    let body = msg.body.as_ref().map(|b| b.cell_hash());
    let is_it = |m: &&Message| {
        m.destination.as_ref() == Some(&msg.dest)
            && m.value == Some(msg.value)
            && (body.is_none() || m.body.as_ref().map(|b| b.cell_hash()) == body)
    };
    let internal: Vec<&Message> = out.iter().filter(|m| m.destination.is_some()).collect();
    internal
        .get(index)
        .copied()
        .filter(is_it)
        .or_else(|| internal.iter().copied().find(is_it))
}

fn into_wallet_error(e: HighloadError) -> WalletError {
    match e {
        HighloadError::Wallet(w) => w,
        other => WalletError::Highload(Box::new(other)),
    }
}
