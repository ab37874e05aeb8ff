//! Protocol v2 (payment channels): every message and record of `contracts/v2/schema.tlb`, field
//! by field, beside the v1 ones of the parent module (removed when the request path moves to
//! channels).
//!
//! [`root`], [`worker`] and [`escrow`] are the messages each contract accepts, [`notify`] what
//! they send to wallets and log, [`records`] the parameters, channels and contract data. The
//! signed cells (receipt, voucher, channel reference) are in [`crate::channel`].

pub mod escrow;
pub mod notify;
pub mod records;
pub mod root;
pub mod worker;

#[cfg(test)]
mod vectors;
