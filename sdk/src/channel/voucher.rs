//! The voucher a client signs after each receipt it checked: what it owes the channel's worker.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use super::error::{ChannelError, Result};
use super::refs::ChannelRef;
use crate::tlb::{
    CellBuilder, CellParser, TlbResult, TlbType, expect_tag, load_bits256, load_bits512,
    load_coins, load_ref, store_bits256, store_bits512, store_coins, store_ref, store_tag,
};

/// Domain tag of a voucher body ("vchr").
pub const VOUCHER_TAG: u32 = 0x7663_6872;

/// `voucher_body#76636872 channel:^ChannelRef cumulative:Coins last_seq:uint32 acc:bits256
///     final:Bool = VoucherBody;`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voucher {
    /// The channel.
    pub channel: ChannelRef,
    /// Everything the client owes the channel's worker so far (never decreases; at most the
    /// channel's amount).
    pub cumulative: u128,
    /// Seq of the last receipt it covers.
    pub last_seq: u32,
    /// The accumulator after that receipt.
    pub acc: [u8; 32],
    /// A final voucher lets the settlement that carries it close the channel at once (the rest
    /// of the amount returns to the client's free balance), with no close request and no grace.
    pub is_final: bool,
}

/// `signed_voucher$_ signature:bits512 body:^VoucherBody = SignedVoucher;`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedVoucher {
    /// ed25519 over the representation hash of the body cell.
    pub signature: [u8; 64],
    /// The signed body.
    pub body: Voucher,
}

impl Voucher {
    /// Representation hash of the body cell: what the signature covers.
    pub fn hash(&self) -> Result<[u8; 32]> {
        Ok(self.to_cell()?.cell_hash().into())
    }

    /// Signs with the client's voucher key (named at open; not its wallet key).
    pub fn sign(self, key: &SigningKey) -> Result<SignedVoucher> {
        let signature = key.sign(&self.hash()?).to_bytes();
        Ok(SignedVoucher {
            signature,
            body: self,
        })
    }
}

impl SignedVoucher {
    /// Checks the signature against the channel's voucher key.
    pub fn verify_signature(&self, voucher_key: &[u8; 32]) -> Result<()> {
        let key = VerifyingKey::from_bytes(voucher_key).map_err(|_| ChannelError::InvalidKey)?;
        key.verify_strict(&self.body.hash()?, &Signature::from_bytes(&self.signature))
            .map_err(|_| ChannelError::BadSignature { what: "voucher" })
    }
}

impl TlbType for Voucher {
    const NAME: &'static str = "Voucher";

    fn store(&self, b: &mut CellBuilder) -> TlbResult<()> {
        store_tag(b, 32, VOUCHER_TAG.into())?;
        store_ref(b, &self.channel)?;
        store_coins(b, self.cumulative, "Voucher.cumulative")?;
        b.store_u32(32, self.last_seq)?;
        store_bits256(b, &self.acc)?;
        b.store_bit(self.is_final)?;
        Ok(())
    }

    fn load(p: &mut CellParser<'_>) -> TlbResult<Self> {
        expect_tag(p, 32, VOUCHER_TAG.into(), Self::NAME)?;
        Ok(Self {
            channel: load_ref(p)?,
            cumulative: load_coins(p)?,
            last_seq: p.load_u32(32)?,
            acc: load_bits256(p)?,
            is_final: p.load_bit()?,
        })
    }
}

impl TlbType for SignedVoucher {
    const NAME: &'static str = "SignedVoucher";

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
