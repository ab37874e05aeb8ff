//! The receipt a worker signs for each request of a channel.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use tonlib_core::TonAddress;

use super::error::{ChannelError, Result};
use super::refs::ChannelRef;
use crate::receipt::{ReceiptCommitments, ReceiptHashes};
use crate::tlb::{
    CellBuilder, CellParser, TlbResult, TlbType, expect_tag, load_address, load_bits256,
    load_bits512, load_coins, load_ref, store_address, store_bits256, store_bits512, store_coins,
    store_ref, store_tag,
};

/// Domain tag of a channel receipt body ("rcv2").
pub const CHANNEL_RECEIPT_TAG: u32 = 0x7263_7632;

/// `receipt_body#72637632 channel:^ChannelRef seq:uint32 worker:MsgAddressInt model_id:uint32
///     tokens_in:uint32 tokens_out:uint32 cost:Coins time:uint32 prev_acc:bits256
///     hashes:^ReceiptHashes commitments:^ReceiptCommitments = ReceiptBody;`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelReceipt {
    /// The channel.
    pub channel: ChannelRef,
    /// 1 for the channel's first request, +1 per request.
    pub seq: u32,
    /// The channel's Worker contract.
    pub worker: TonAddress,
    /// Model id from Root's registry.
    pub model_id: u32,
    /// Input tokens processed.
    pub tokens_in: u32,
    /// Output tokens produced.
    pub tokens_out: u32,
    /// nanoTON: tokens at the channel's prices (fixed at open).
    pub cost: u128,
    /// Unix time the worker signed.
    pub time: u32,
    /// The channel's accumulator before this receipt ([`super::ACC_ZERO`] for seq 1).
    pub prev_acc: [u8; 32],
    /// Weights and evidence hashes.
    pub hashes: ReceiptHashes,
    /// Input and output commitments.
    pub commitments: ReceiptCommitments,
}

/// `signed_receipt$_ signature:bits512 body:^ReceiptBody = SignedReceipt;`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedChannelReceipt {
    /// ed25519 over the representation hash of the body cell.
    pub signature: [u8; 64],
    /// The signed body.
    pub body: ChannelReceipt,
}

impl ChannelReceipt {
    /// Representation hash of the body cell: what the signature covers and what the
    /// accumulator chains.
    pub fn hash(&self) -> Result<[u8; 32]> {
        Ok(self.to_cell()?.cell_hash().into())
    }

    /// The cost the channel's prices give for this receipt's tokens (the same arithmetic as a
    /// v1 receipt's, [`crate::receipt::expected_cost`]).
    pub fn expected_cost(&self, price_in: u128, price_out: u128) -> Result<u128> {
        crate::receipt::expected_cost(self.tokens_in, self.tokens_out, price_in, price_out)
            .map_err(|_| ChannelError::Overflow)
    }

    /// Signs with the worker's receipt key.
    pub fn sign(self, key: &SigningKey) -> Result<SignedChannelReceipt> {
        let signature = key.sign(&self.hash()?).to_bytes();
        Ok(SignedChannelReceipt {
            signature,
            body: self,
        })
    }
}

impl SignedChannelReceipt {
    /// Checks the signature against a receipt key (strict: no small-order keys, no malleable
    /// signatures).
    pub fn verify_signature(&self, receipt_key: &[u8; 32]) -> Result<()> {
        let key = VerifyingKey::from_bytes(receipt_key).map_err(|_| ChannelError::InvalidKey)?;
        self.verify_signature_by(&key)
    }

    /// [`SignedChannelReceipt::verify_signature`] with the key already decoded: a verifier
    /// that checks many receipts of one worker decodes its key once (decoding is a
    /// square root in the field, paid again on every check otherwise).
    pub fn verify_signature_by(&self, receipt_key: &VerifyingKey) -> Result<()> {
        receipt_key
            .verify_strict(&self.body.hash()?, &Signature::from_bytes(&self.signature))
            .map_err(|_| ChannelError::BadSignature { what: "receipt" })
    }
}

impl TlbType for ChannelReceipt {
    const NAME: &'static str = "ChannelReceipt";

    fn store(&self, b: &mut CellBuilder) -> TlbResult<()> {
        store_tag(b, 32, CHANNEL_RECEIPT_TAG.into())?;
        store_ref(b, &self.channel)?;
        b.store_u32(32, self.seq)?;
        store_address(b, &self.worker, "ChannelReceipt.worker")?;
        b.store_u32(32, self.model_id)?;
        b.store_u32(32, self.tokens_in)?;
        b.store_u32(32, self.tokens_out)?;
        store_coins(b, self.cost, "ChannelReceipt.cost")?;
        b.store_u32(32, self.time)?;
        store_bits256(b, &self.prev_acc)?;
        store_ref(b, &self.hashes)?;
        store_ref(b, &self.commitments)?;
        Ok(())
    }

    fn load(p: &mut CellParser<'_>) -> TlbResult<Self> {
        expect_tag(p, 32, CHANNEL_RECEIPT_TAG.into(), Self::NAME)?;
        Ok(Self {
            channel: load_ref(p)?,
            seq: p.load_u32(32)?,
            worker: load_address(p, "ChannelReceipt.worker")?,
            model_id: p.load_u32(32)?,
            tokens_in: p.load_u32(32)?,
            tokens_out: p.load_u32(32)?,
            cost: load_coins(p)?,
            time: p.load_u32(32)?,
            prev_acc: load_bits256(p)?,
            hashes: load_ref(p)?,
            commitments: load_ref(p)?,
        })
    }
}

impl TlbType for SignedChannelReceipt {
    const NAME: &'static str = "SignedChannelReceipt";

    fn store(&self, b: &mut CellBuilder) -> TlbResult<()> {
        store_bits512(b, &self.signature)?;
        store_ref(b, &self.body)
    }

    fn load(p: &mut CellParser<'_>) -> TlbResult<Self> {
        Ok(Self {
            signature: load_bits512(p)?,
            body: load_ref(p)?,
        })
    }
}
