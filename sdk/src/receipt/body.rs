//! The receipt cells, per the fixed layout in `contracts/schema.tlb`.

use tonlib_core::TonAddress;

use crate::tlb::{
    CellBuilder, CellParser, TlbResult, TlbType, expect_tag, load_address, load_bits256,
    load_bits512, load_coins, load_ref, store_address, store_bits256, store_bits512, store_coins,
    store_ref, store_tag,
};

/// Domain tag of a receipt body ("rcpt").
pub const RECEIPT_TAG: u32 = 0x7263_7074;

/// `receipt_body#72637074 escrow:MsgAddressInt job_id:uint64 worker:MsgAddressInt
///     model_id:uint32 tokens_in:uint32 tokens_out:uint32 cost:Coins time:uint32
///     hashes:^ReceiptHashes commitments:^ReceiptCommitments = ReceiptBody;`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptBody {
    /// The Escrow that pays.
    pub escrow: TonAddress,
    /// The job id on that Escrow.
    pub job_id: u64,
    /// The Worker contract the receipt is submitted to.
    pub worker: TonAddress,
    /// Model id from Root's registry.
    pub model_id: u32,
    /// Input tokens processed.
    pub tokens_in: u32,
    /// Output tokens produced.
    pub tokens_out: u32,
    /// nanoTON charged: tokens_in × price_in + tokens_out × price_out.
    pub cost: u128,
    /// Unix time the worker signed.
    pub time: u32,
    /// Weights and evidence hashes.
    pub hashes: ReceiptHashes,
    /// Input and output commitments.
    pub commitments: ReceiptCommitments,
}

/// `receipt_hashes$_ weights_hash:bits256 evidence_hash:bits256 = ReceiptHashes;`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptHashes {
    /// sha256 of the model weights file served.
    pub weights_hash: [u8; 32],
    /// The worker's evidence hash as recorded in its Worker contract.
    pub evidence_hash: [u8; 32],
}

/// `receipt_commitments$_ input_commitment:bits256 output_commitment:bits256 = ReceiptCommitments;`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptCommitments {
    /// sha256 of the sealed input (the value in OpenJob).
    pub input_commitment: [u8; 32],
    /// Hiding commitment to the answer (HMAC keyed by an HPKE-exported secret).
    pub output_commitment: [u8; 32],
}

/// `signed_receipt$_ signature:bits512 body:^ReceiptBody = SignedReceipt;`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedReceipt {
    /// ed25519 over the representation hash of the body cell.
    pub signature: [u8; 64],
    /// The signed body.
    pub body: ReceiptBody,
}

impl TlbType for ReceiptBody {
    const NAME: &'static str = "ReceiptBody";

    fn store(&self, b: &mut CellBuilder) -> TlbResult<()> {
        store_tag(b, 32, RECEIPT_TAG.into())?;
        store_address(b, &self.escrow, "ReceiptBody.escrow")?;
        b.store_u64(64, self.job_id)?;
        store_address(b, &self.worker, "ReceiptBody.worker")?;
        b.store_u32(32, self.model_id)?;
        b.store_u32(32, self.tokens_in)?;
        b.store_u32(32, self.tokens_out)?;
        store_coins(b, self.cost, "ReceiptBody.cost")?;
        b.store_u32(32, self.time)?;
        store_ref(b, &self.hashes)?;
        store_ref(b, &self.commitments)?;
        Ok(())
    }

    fn load(p: &mut CellParser<'_>) -> TlbResult<Self> {
        expect_tag(p, 32, RECEIPT_TAG.into(), Self::NAME)?;
        Ok(Self {
            escrow: load_address(p, "ReceiptBody.escrow")?,
            job_id: p.load_u64(64)?,
            worker: load_address(p, "ReceiptBody.worker")?,
            model_id: p.load_u32(32)?,
            tokens_in: p.load_u32(32)?,
            tokens_out: p.load_u32(32)?,
            cost: load_coins(p)?,
            time: p.load_u32(32)?,
            hashes: load_ref(p)?,
            commitments: load_ref(p)?,
        })
    }
}

impl TlbType for ReceiptHashes {
    const NAME: &'static str = "ReceiptHashes";

    fn store(&self, b: &mut CellBuilder) -> TlbResult<()> {
        store_bits256(b, &self.weights_hash)?;
        store_bits256(b, &self.evidence_hash)
    }

    fn load(p: &mut CellParser<'_>) -> TlbResult<Self> {
        Ok(Self {
            weights_hash: load_bits256(p)?,
            evidence_hash: load_bits256(p)?,
        })
    }
}

impl TlbType for ReceiptCommitments {
    const NAME: &'static str = "ReceiptCommitments";

    fn store(&self, b: &mut CellBuilder) -> TlbResult<()> {
        store_bits256(b, &self.input_commitment)?;
        store_bits256(b, &self.output_commitment)
    }

    fn load(p: &mut CellParser<'_>) -> TlbResult<Self> {
        Ok(Self {
            input_commitment: load_bits256(p)?,
            output_commitment: load_bits256(p)?,
        })
    }
}

impl TlbType for SignedReceipt {
    const NAME: &'static str = "SignedReceipt";

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
