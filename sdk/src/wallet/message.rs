//! Internal messages a wallet sends, and the TEP-467 normalised hash of an external.

use std::sync::Arc;

use tonlib_core::tlb_types::block::state_init::StateInit;
use tonlib_core::tlb_types::tlb::TLB;

use crate::tlb::{self, ArcCell, Cell, CellBuilder, TlbError, TlbResult, TonAddress};

/// An internal message carried by a wallet transfer.
#[derive(Debug, Clone, PartialEq)]
pub struct OutMessage {
    /// Receiver.
    pub dest: TonAddress,
    /// Value in nanoTON.
    pub value: u128,
    /// Bounce flag: `true` for calls to deployed contracts (failures return the value), `false`
    /// for plain transfers to possibly undeployed accounts.
    pub bounce: bool,
    /// Body (operation), if any.
    pub body: Option<ArcCell>,
    /// `(code, data)` to deploy the receiver.
    pub state_init: Option<(ArcCell, ArcCell)>,
}

impl OutMessage {
    /// A plain value transfer.
    pub fn transfer(dest: TonAddress, value: u128, bounce: bool) -> Self {
        Self {
            dest,
            value,
            bounce,
            body: None,
            state_init: None,
        }
    }

    /// A call with a body; bounceable.
    pub fn call(dest: TonAddress, value: u128, body: Cell) -> Self {
        Self {
            dest,
            value,
            bounce: true,
            body: Some(Arc::new(body)),
            state_init: None,
        }
    }

    /// Adds a state-init that deploys the receiver.
    pub fn with_state_init(mut self, code: ArcCell, data: ArcCell) -> Self {
        self.state_init = Some((code, data));
        self
    }

    /// Encodes as a `Message Any` cell:
    /// `int_msg_info$0 ihr_disabled:Bool bounce:Bool bounced:Bool src:addr_none dest value
    /// ihr_fee:0 fwd_fee:0 created_lt:0 created_at:0`, then the state-init and the body, each in
    /// a reference (the wallet fills src, fees and times).
    pub fn to_cell(&self) -> TlbResult<Cell> {
        let mut b = CellBuilder::new();
        b.store_bit(false)?; // int_msg_info$0
        b.store_bit(true)?; // ihr_disabled
        b.store_bit(self.bounce)?;
        b.store_bit(false)?; // bounced
        tlb::store_maybe_address(&mut b, None, "OutMessage.src")?;
        tlb::store_address(&mut b, &self.dest, "OutMessage.dest")?;
        tlb::store_coins(&mut b, self.value, "OutMessage.value")?;
        b.store_bit(false)?; // no extra currencies
        tlb::store_coins(&mut b, 0, "OutMessage.ihr_fee")?;
        tlb::store_coins(&mut b, 0, "OutMessage.fwd_fee")?;
        b.store_u64(64, 0)?;
        b.store_u32(32, 0)?;
        match &self.state_init {
            None => {
                b.store_bit(false)?;
            }
            Some((code, data)) => {
                let si = StateInit::new(code.clone(), data.clone()).to_cell()?;
                b.store_bit(true)?
                    .store_bit(true)?
                    .store_reference(&Arc::new(si))?;
            }
        }
        match &self.body {
            None => {
                b.store_bit(false)?;
            }
            Some(body) => {
                b.store_bit(true)?.store_reference(body)?;
            }
        }
        Ok(b.build()?)
    }
}

/// Address a contract with `code` and `data` is deployed at (basechain).
pub fn contract_address(code: &ArcCell, data: &ArcCell) -> TlbResult<TonAddress> {
    Ok(TonAddress::derive(0, code.clone(), data.clone())?)
}

/// TEP-467 normalised hash of an external-in message cell: the same message with `src`
/// addr_none, `import_fee` 0, no state-init and the body in a reference. Two broadcasts of one
/// signed transfer share it whether or not they carried the state-init.
pub fn normalized_hash(ext: &Cell) -> TlbResult<[u8; 32]> {
    let mut p = ext.parser();
    if p.load_u8(2)? != 0b10 {
        return Err(TlbError::InvalidValue {
            field: "external.info",
            reason: "not an external-in message".into(),
        });
    }
    if p.load_u8(2)? != 0 {
        return Err(TlbError::UnsupportedAddress {
            field: "external.src",
            form: "addr_extern",
        });
    }
    let dest = tlb::load_address(&mut p, "external.dest")?;
    tlb::load_coins(&mut p)?; // import_fee
    if p.load_bit()? {
        // state-init, inline or in a reference; dropped either way.
        if p.load_bit()? {
            p.next_reference()?;
        } else {
            if p.load_bit()? {
                p.skip_bits(5)?; // split_depth
            }
            if p.load_bit()? {
                p.skip_bits(2)?; // special
            }
            for _ in 0..3 {
                // code, data, library
                if p.load_bit()? {
                    p.next_reference()?;
                }
            }
        }
    }
    let body: ArcCell = if p.load_bit()? {
        p.next_reference()?
    } else {
        Arc::new(p.load_remaining()?)
    };
    let mut b = CellBuilder::new();
    b.store_u8(2, 0b10)?;
    tlb::store_maybe_address(&mut b, None, "external.src")?;
    tlb::store_address(&mut b, &dest, "external.dest")?;
    tlb::store_coins(&mut b, 0, "external.import_fee")?;
    b.store_bit(false)?; // no init
    b.store_bit(true)?.store_reference(&body)?;
    Ok(b.build()?.cell_hash().into())
}
