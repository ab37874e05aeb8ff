//! TL-B conventions shared by every wire type of the sdk.
//!
//! Every type that crosses the chain boundary (contract messages, records, receipts) follows one
//! pattern:
//!
//! - its TL-B line from `contracts/schema.tlb` sits in its doc comment;
//! - it implements [`TlbType`]: [`TlbType::store`] writes the constructor tag then the fields,
//!   [`TlbType::load`] checks the tag (a wrong one is [`TlbError::WrongTag`]) then reads the fields;
//! - [`TlbType::from_cell`] / [`TlbType::from_boc`] reject trailing bits or references
//!   ([`TlbError::TrailingData`]), also inside referenced cells read with [`load_ref`];
//! - a proptest round-trips it through a cell and through a BOC.
//!
//! The field helpers below (`Coins` as `u128` nanoTON, `addr_std`, `bits256`, ...) are the only
//! way fields are written, so every type encodes them identically.

use std::sync::Arc;

pub use tonlib_core::TonAddress;
use tonlib_core::TonHash;
pub use tonlib_core::cell::{ArcCell, BagOfCells, Cell, CellBuilder, CellParser, TonCellError};

/// Largest value a TL-B `Coins` (`VarUInteger 16`) field can hold: 15 bytes.
pub const MAX_COINS: u128 = (1u128 << 120) - 1;

/// Errors of encoding or decoding a TL-B value.
#[derive(Debug, thiserror::Error)]
pub enum TlbError {
    /// The constructor tag (opcode or prefix) read is not the one of the expected type.
    #[error("{type_name}: wrong tag {found:#x}, expected {expected:#x}")]
    WrongTag {
        /// The type being decoded.
        type_name: &'static str,
        /// Its tag.
        expected: u64,
        /// The tag found in the cell.
        found: u64,
    },
    /// Bits or references were left over after the type was read.
    #[error("{type_name}: {bits} bits and {refs} references of trailing data")]
    TrailingData {
        /// The type being decoded.
        type_name: &'static str,
        /// Unread data bits.
        bits: usize,
        /// Unread references.
        refs: usize,
    },
    /// A field value cannot be represented (too large, wrong form).
    #[error("{field}: {reason}")]
    InvalidValue {
        /// The field, as `Type.field`.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// An address that is not `addr_std` without anycast (or `addr_none` where allowed).
    #[error("{field}: unsupported address form ({form})")]
    UnsupportedAddress {
        /// The field, as `Type.field`.
        field: &'static str,
        /// The form found.
        form: &'static str,
    },
    /// A bag of cells that does not hold exactly one root.
    #[error("bag of cells has {0} roots, expected 1")]
    RootCount(usize),
    /// Bytes that cannot be a well-formed bag of cells (checked before tonlib-core parses them).
    #[error("malformed bag of cells: {0}")]
    MalformedBoc(&'static str),
    /// Cell-level failure from tonlib-core: underflow, overflow, malformed BOC.
    #[error("cell: {0}")]
    Cell(#[from] TonCellError),
}

/// Result of TL-B operations.
pub type TlbResult<T> = Result<T, TlbError>;

/// A value with a TL-B representation (see the module doc for the conventions).
pub trait TlbType: Sized {
    /// Name used in errors.
    const NAME: &'static str;

    /// Writes the tag and fields into `b`.
    fn store(&self, b: &mut CellBuilder) -> TlbResult<()>;

    /// Reads the tag and fields from `p`, leaving what follows unread.
    fn load(p: &mut CellParser<'_>) -> TlbResult<Self>;

    /// Encodes into a fresh cell.
    fn to_cell(&self) -> TlbResult<Cell> {
        let mut b = CellBuilder::new();
        self.store(&mut b)?;
        Ok(b.build()?)
    }

    /// Decodes a whole cell; trailing bits or references are an error.
    fn from_cell(cell: &Cell) -> TlbResult<Self> {
        let mut p = cell.parser();
        let v = Self::load(&mut p)?;
        ensure_consumed(&mut p, Self::NAME)?;
        Ok(v)
    }

    /// Encodes as a bag of cells with a CRC32C, the layout `@ton/core`'s `toBoc()` produces.
    fn to_boc(&self) -> TlbResult<Vec<u8>> {
        boc::serialize(&self.to_cell()?)
    }

    /// Decodes a single-root bag of cells.
    fn from_boc(bytes: &[u8]) -> TlbResult<Self> {
        let root = boc_root(bytes)?;
        Self::from_cell(&root)
    }
}

/// Parses a bag of cells that must hold exactly one root.
///
/// The bytes may come from anyone (a worker, a relayer, a chain API), and tonlib-core 0.26.11's
/// parser panics on a reference past the last cell and trusts the header's cell count for its
/// allocation (inputs in `sdk/fuzz/regressions/`). So the header is checked against the length
/// first, and a panic left in the parser is turned into [`TlbError::MalformedBoc`].
pub fn boc_root(bytes: &[u8]) -> TlbResult<ArcCell> {
    check_boc_header(bytes)?;
    let parsed = std::panic::catch_unwind(|| BagOfCells::parse(bytes))
        .map_err(|_| TlbError::MalformedBoc("cell graph out of range"))?;
    let boc = parsed?;
    let n = boc.num_roots();
    if n != 1 {
        return Err(TlbError::RootCount(n));
    }
    Ok(boc.single_root()?)
}

/// Magic prefix of `serialized_boc#b5ee9c72`, the only form the sdk reads and writes.
const BOC_MAGIC: [u8; 4] = [0xb5, 0xee, 0x9c, 0x72];

/// Refuses a header whose counts the remaining bytes cannot possibly hold.
fn check_boc_header(bytes: &[u8]) -> TlbResult<()> {
    if bytes.len() < 6 || bytes[..4] != BOC_MAGIC {
        return Err(TlbError::MalformedBoc(
            "not a bag of cells (magic b5ee9c72)",
        ));
    }
    let size = usize::from(bytes[4] & 0x07);
    let off_bytes = usize::from(bytes[5]);
    if !(1..=4).contains(&size) || !(1..=8).contains(&off_bytes) || bytes.len() < 6 + 3 * size {
        return Err(TlbError::MalformedBoc("bad header sizes"));
    }
    let read = |at: usize| {
        bytes[at..at + size]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    let (cells, roots) = (read(6), read(6 + size));
    // Every cell takes at least its two descriptor bytes.
    if cells == 0 || cells > bytes.len() / 2 {
        return Err(TlbError::MalformedBoc("cell count exceeds the data"));
    }
    if roots == 0 || roots > cells {
        return Err(TlbError::MalformedBoc("root count out of range"));
    }
    Ok(())
}

/// Serialises one cell as a bag of cells with CRC32C.
pub fn cell_to_boc(cell: &Cell) -> TlbResult<Vec<u8>> {
    boc::serialize(cell)
}

/// Fails with [`TlbError::TrailingData`] unless `p` is fully read.
pub fn ensure_consumed(p: &mut CellParser<'_>, type_name: &'static str) -> TlbResult<()> {
    let bits = p.remaining_bits();
    let refs = p.remaining_refs();
    if bits != 0 || refs != 0 {
        return Err(TlbError::TrailingData {
            type_name,
            bits,
            refs,
        });
    }
    Ok(())
}

/// Writes a constructor tag of `bits` bits.
pub fn store_tag(b: &mut CellBuilder, bits: usize, tag: u64) -> TlbResult<()> {
    b.store_u64(bits, tag)?;
    Ok(())
}

/// Reads a constructor tag of `bits` bits and checks it.
pub fn expect_tag(
    p: &mut CellParser<'_>,
    bits: usize,
    expected: u64,
    type_name: &'static str,
) -> TlbResult<()> {
    let found = p.load_u64(bits)?;
    if found != expected {
        return Err(TlbError::WrongTag {
            type_name,
            expected,
            found,
        });
    }
    Ok(())
}

/// Writes `Coins` (`VarUInteger 16`): a 4-bit byte length then the big-endian value.
pub fn store_coins(b: &mut CellBuilder, v: u128, field: &'static str) -> TlbResult<()> {
    if v > MAX_COINS {
        return Err(TlbError::InvalidValue {
            field,
            reason: format!("{v} exceeds 2^120-1"),
        });
    }
    let len = (128 - v.leading_zeros() as usize).div_ceil(8);
    b.store_u8(4, len as u8)?;
    if len > 0 {
        let bytes = v.to_be_bytes();
        b.store_slice(&bytes[16 - len..])?;
    }
    Ok(())
}

/// Reads `Coins` (`VarUInteger 16`).
pub fn load_coins(p: &mut CellParser<'_>) -> TlbResult<u128> {
    let len = p.load_u8(4)? as usize;
    let mut v = 0u128;
    for byte in p.load_bytes(len)? {
        v = (v << 8) | u128::from(byte);
    }
    Ok(v)
}

/// Writes `addr_std$10 anycast:nothing workchain_id:int8 address:bits256`.
pub fn store_address(b: &mut CellBuilder, a: &TonAddress, field: &'static str) -> TlbResult<()> {
    let wc = i8::try_from(a.workchain).map_err(|_| TlbError::InvalidValue {
        field,
        reason: format!("workchain {} does not fit int8", a.workchain),
    })?;
    b.store_u8(2, 0b10)?;
    b.store_bit(false)?;
    b.store_i8(8, wc)?;
    b.store_slice(a.hash_part.as_slice())?;
    Ok(())
}

/// Reads an `addr_std` without anycast; any other form is [`TlbError::UnsupportedAddress`].
pub fn load_address(p: &mut CellParser<'_>, field: &'static str) -> TlbResult<TonAddress> {
    load_maybe_address(p, field)?.ok_or(TlbError::UnsupportedAddress {
        field,
        form: "addr_none",
    })
}

/// Writes `addr_none$00` for `None`, else an `addr_std`.
pub fn store_maybe_address(
    b: &mut CellBuilder,
    a: Option<&TonAddress>,
    field: &'static str,
) -> TlbResult<()> {
    match a {
        None => {
            b.store_u8(2, 0)?;
            Ok(())
        }
        Some(a) => store_address(b, a, field),
    }
}

/// Reads `addr_none` as `None` or an `addr_std` without anycast.
pub fn load_maybe_address(
    p: &mut CellParser<'_>,
    field: &'static str,
) -> TlbResult<Option<TonAddress>> {
    match p.load_u8(2)? {
        0b00 => Ok(None),
        0b10 => {
            if p.load_bit()? {
                return Err(TlbError::UnsupportedAddress {
                    field,
                    form: "anycast",
                });
            }
            let wc = p.load_i8(8)?;
            let hash = load_bits256(p)?;
            Ok(Some(TonAddress::new(i32::from(wc), TonHash::from(hash))))
        }
        0b01 => Err(TlbError::UnsupportedAddress {
            field,
            form: "addr_extern",
        }),
        _ => Err(TlbError::UnsupportedAddress {
            field,
            form: "addr_var",
        }),
    }
}

/// Writes 256 raw bits.
pub fn store_bits256(b: &mut CellBuilder, v: &[u8; 32]) -> TlbResult<()> {
    b.store_slice(v)?;
    Ok(())
}

/// Reads 256 raw bits.
pub fn load_bits256(p: &mut CellParser<'_>) -> TlbResult<[u8; 32]> {
    let mut out = [0u8; 32];
    p.load_slice(&mut out)?;
    Ok(out)
}

/// Writes 512 raw bits (an ed25519 signature).
pub fn store_bits512(b: &mut CellBuilder, v: &[u8; 64]) -> TlbResult<()> {
    b.store_slice(v)?;
    Ok(())
}

/// Reads 512 raw bits.
pub fn load_bits512(p: &mut CellParser<'_>) -> TlbResult<[u8; 64]> {
    let mut out = [0u8; 64];
    p.load_slice(&mut out)?;
    Ok(out)
}

/// Writes `^T`: `v` in a cell of its own, referenced.
pub fn store_ref<T: TlbType>(b: &mut CellBuilder, v: &T) -> TlbResult<()> {
    b.store_reference(&Arc::new(v.to_cell()?))?;
    Ok(())
}

/// Reads `^T`; the referenced cell must hold exactly one `T`.
pub fn load_ref<T: TlbType>(p: &mut CellParser<'_>) -> TlbResult<T> {
    let c = p.next_reference()?;
    T::from_cell(&c)
}

/// Writes `(Maybe ^Cell)`.
pub fn store_maybe_ref(b: &mut CellBuilder, c: Option<&ArcCell>) -> TlbResult<()> {
    match c {
        None => b.store_bit(false)?,
        Some(c) => b.store_bit(true)?.store_reference(c)?,
    };
    Ok(())
}

/// Reads `(Maybe ^Cell)`.
pub fn load_maybe_ref(p: &mut CellParser<'_>) -> TlbResult<Option<ArcCell>> {
    Ok(if p.load_bit()? {
        Some(p.next_reference()?)
    } else {
        None
    })
}

/// Field codecs: one marker type per TL-B field type, so message definitions can list their
/// fields declaratively (see [`crate::messages`]).
pub mod codec {
    use std::collections::{BTreeMap, BTreeSet, HashMap};

    use super::*;

    /// Encodes and decodes one field type.
    pub trait Codec {
        /// Rust type of the field.
        type Value;
        /// Writes `v`.
        fn store(b: &mut CellBuilder, v: &Self::Value, field: &'static str) -> TlbResult<()>;
        /// Reads a value.
        fn load(p: &mut CellParser<'_>, field: &'static str) -> TlbResult<Self::Value>;
    }

    macro_rules! uint_codec {
        ($name:ident, $t:ty, $bits:expr, $store:ident, $load:ident) => {
            #[doc = concat!("`uint", stringify!($bits), "`.")]
            pub struct $name;
            impl Codec for $name {
                type Value = $t;
                fn store(b: &mut CellBuilder, v: &$t, _: &'static str) -> TlbResult<()> {
                    b.$store($bits, *v)?;
                    Ok(())
                }
                fn load(p: &mut CellParser<'_>, _: &'static str) -> TlbResult<$t> {
                    Ok(p.$load($bits)?)
                }
            }
        };
    }
    uint_codec!(U8, u8, 8, store_u8, load_u8);
    uint_codec!(U16, u16, 16, store_u16, load_u16);
    uint_codec!(U32, u32, 32, store_u32, load_u32);
    uint_codec!(U64, u64, 64, store_u64, load_u64);

    /// `Coins` as `u128` nanoTON.
    pub struct Coins;
    impl Codec for Coins {
        type Value = u128;
        fn store(b: &mut CellBuilder, v: &u128, f: &'static str) -> TlbResult<()> {
            store_coins(b, *v, f)
        }
        fn load(p: &mut CellParser<'_>, _: &'static str) -> TlbResult<u128> {
            load_coins(p)
        }
    }

    /// `Bool` (1 bit).
    pub struct Bool;
    impl Codec for Bool {
        type Value = bool;
        fn store(b: &mut CellBuilder, v: &bool, _: &'static str) -> TlbResult<()> {
            b.store_bit(*v)?;
            Ok(())
        }
        fn load(p: &mut CellParser<'_>, _: &'static str) -> TlbResult<bool> {
            Ok(p.load_bit()?)
        }
    }

    /// `MsgAddressInt` restricted to `addr_std`.
    pub struct Addr;
    impl Codec for Addr {
        type Value = TonAddress;
        fn store(b: &mut CellBuilder, v: &TonAddress, f: &'static str) -> TlbResult<()> {
            store_address(b, v, f)
        }
        fn load(p: &mut CellParser<'_>, f: &'static str) -> TlbResult<TonAddress> {
            load_address(p, f)
        }
    }

    /// `MsgAddress` that is `addr_none` (`None`) or `addr_std`.
    pub struct MaybeAddr;
    impl Codec for MaybeAddr {
        type Value = Option<TonAddress>;
        fn store(b: &mut CellBuilder, v: &Option<TonAddress>, f: &'static str) -> TlbResult<()> {
            store_maybe_address(b, v.as_ref(), f)
        }
        fn load(p: &mut CellParser<'_>, f: &'static str) -> TlbResult<Option<TonAddress>> {
            load_maybe_address(p, f)
        }
    }

    /// `bits256`.
    pub struct Bits256;
    impl Codec for Bits256 {
        type Value = [u8; 32];
        fn store(b: &mut CellBuilder, v: &[u8; 32], _: &'static str) -> TlbResult<()> {
            store_bits256(b, v)
        }
        fn load(p: &mut CellParser<'_>, _: &'static str) -> TlbResult<[u8; 32]> {
            load_bits256(p)
        }
    }

    /// `bits512`.
    pub struct Bits512;
    impl Codec for Bits512 {
        type Value = [u8; 64];
        fn store(b: &mut CellBuilder, v: &[u8; 64], _: &'static str) -> TlbResult<()> {
            store_bits512(b, v)
        }
        fn load(p: &mut CellParser<'_>, _: &'static str) -> TlbResult<[u8; 64]> {
            load_bits512(p)
        }
    }

    /// `^T` for a TL-B type `T`.
    pub struct Ref<T>(std::marker::PhantomData<T>);
    impl<T: TlbType> Codec for Ref<T> {
        type Value = T;
        fn store(b: &mut CellBuilder, v: &T, _: &'static str) -> TlbResult<()> {
            store_ref(b, v)
        }
        fn load(p: &mut CellParser<'_>, _: &'static str) -> TlbResult<T> {
            load_ref(p)
        }
    }

    /// `(Maybe ^T)`.
    pub struct MaybeRef<T>(std::marker::PhantomData<T>);
    impl<T: TlbType> Codec for MaybeRef<T> {
        type Value = Option<T>;
        fn store(b: &mut CellBuilder, v: &Option<T>, _: &'static str) -> TlbResult<()> {
            match v {
                None => {
                    b.store_bit(false)?;
                }
                Some(v) => {
                    b.store_bit(true)?;
                    store_ref(b, v)?;
                }
            }
            Ok(())
        }
        fn load(p: &mut CellParser<'_>, _: &'static str) -> TlbResult<Option<T>> {
            if p.load_bit()? {
                Ok(Some(load_ref(p)?))
            } else {
                Ok(None)
            }
        }
    }

    /// A TL-B type `T` stored inline (its fields in the same cell).
    pub struct Inline<T>(std::marker::PhantomData<T>);
    impl<T: TlbType> Codec for Inline<T> {
        type Value = T;
        fn store(b: &mut CellBuilder, v: &T, _: &'static str) -> TlbResult<()> {
            v.store(b)
        }
        fn load(p: &mut CellParser<'_>, _: &'static str) -> TlbResult<T> {
            T::load(p)
        }
    }

    /// `(Maybe T)` with `T` stored inline (a presence bit, then its fields in the same cell).
    pub struct Maybe<T>(std::marker::PhantomData<T>);
    impl<T: TlbType> Codec for Maybe<T> {
        type Value = Option<T>;
        fn store(b: &mut CellBuilder, v: &Option<T>, _: &'static str) -> TlbResult<()> {
            match v {
                None => {
                    b.store_bit(false)?;
                }
                Some(v) => {
                    b.store_bit(true)?;
                    v.store(b)?;
                }
            }
            Ok(())
        }
        fn load(p: &mut CellParser<'_>, _: &'static str) -> TlbResult<Option<T>> {
            if p.load_bit()? {
                Ok(Some(T::load(p)?))
            } else {
                Ok(None)
            }
        }
    }

    /// `^Cell`, opaque (contract code, values of types owned elsewhere).
    pub struct AnyRef;
    impl Codec for AnyRef {
        type Value = ArcCell;
        fn store(b: &mut CellBuilder, v: &ArcCell, _: &'static str) -> TlbResult<()> {
            b.store_reference(v)?;
            Ok(())
        }
        fn load(p: &mut CellParser<'_>, _: &'static str) -> TlbResult<ArcCell> {
            Ok(p.next_reference()?)
        }
    }

    fn cell_err(e: TlbError) -> TonCellError {
        TonCellError::InvalidCellData(e.to_string())
    }

    /// `(HashmapE 32 Empty)`: a set of `uint32`.
    pub struct SetU32;
    impl Codec for SetU32 {
        type Value = BTreeSet<u32>;
        fn store(b: &mut CellBuilder, v: &BTreeSet<u32>, _: &'static str) -> TlbResult<()> {
            let m: HashMap<u32, ()> = v.iter().map(|k| (*k, ())).collect();
            b.store_dict(32, |_, _| Ok(()), m)?;
            Ok(())
        }
        fn load(p: &mut CellParser<'_>, _: &'static str) -> TlbResult<BTreeSet<u32>> {
            let m = p.load_dict(
                32,
                tonlib_core::cell::dict::predefined_readers::key_reader_u32,
                |_| Ok(()),
            )?;
            Ok(m.into_keys().collect())
        }
    }

    /// `(HashmapE 256 Empty)`: a set of 256-bit values.
    pub struct Set256;
    impl Codec for Set256 {
        type Value = BTreeSet<[u8; 32]>;
        fn store(b: &mut CellBuilder, v: &BTreeSet<[u8; 32]>, _: &'static str) -> TlbResult<()> {
            let m: HashMap<TonHash, ()> = v.iter().map(|k| (TonHash::from(*k), ())).collect();
            b.store_dict(256, |_, _| Ok(()), m)?;
            Ok(())
        }
        fn load(p: &mut CellParser<'_>, _: &'static str) -> TlbResult<BTreeSet<[u8; 32]>> {
            let m = p.load_dict(
                256,
                tonlib_core::cell::dict::predefined_readers::key_reader_256bit,
                |_| Ok(()),
            )?;
            Ok(m.into_keys().map(<[u8; 32]>::from).collect())
        }
    }

    /// `(HashmapE 384 Empty)`: a set of 384-bit values (TDX measurement registers).
    pub struct Set384;
    impl Codec for Set384 {
        type Value = BTreeSet<[u8; 48]>;
        fn store(b: &mut CellBuilder, v: &BTreeSet<[u8; 48]>, _: &'static str) -> TlbResult<()> {
            let m: HashMap<num_bigint::BigUint, ()> = v
                .iter()
                .map(|k| (num_bigint::BigUint::from_bytes_be(k), ()))
                .collect();
            b.store_dict(384, |_, _| Ok(()), m)?;
            Ok(())
        }
        fn load(p: &mut CellParser<'_>, f: &'static str) -> TlbResult<BTreeSet<[u8; 48]>> {
            let m = p.load_dict(
                384,
                tonlib_core::cell::dict::predefined_readers::key_reader_uint,
                |_| Ok(()),
            )?;
            m.into_keys()
                .map(|k| {
                    let bytes = k.to_bytes_be();
                    let mut out = [0u8; 48];
                    let at = out.len().checked_sub(bytes.len()).ok_or_else(|| {
                        TlbError::InvalidValue {
                            field: f,
                            reason: format!("key of {} bytes in a 384-bit set", bytes.len()),
                        }
                    })?;
                    out[at..].copy_from_slice(&bytes);
                    Ok(out)
                })
                .collect()
        }
    }

    /// `(HashmapE 32 bits256)`.
    pub struct MapU32Bits256;
    impl Codec for MapU32Bits256 {
        type Value = BTreeMap<u32, [u8; 32]>;
        fn store(
            b: &mut CellBuilder,
            v: &BTreeMap<u32, [u8; 32]>,
            _: &'static str,
        ) -> TlbResult<()> {
            let m: HashMap<u32, [u8; 32]> = v.iter().map(|(k, x)| (*k, *x)).collect();
            b.store_dict(32, |b, x: [u8; 32]| b.store_slice(&x).map(|_| ()), m)?;
            Ok(())
        }
        fn load(p: &mut CellParser<'_>, _: &'static str) -> TlbResult<BTreeMap<u32, [u8; 32]>> {
            let m = p.load_dict(
                32,
                tonlib_core::cell::dict::predefined_readers::key_reader_u32,
                |p| load_bits256(p).map_err(cell_err),
            )?;
            Ok(m.into_iter().collect())
        }
    }

    /// `(HashmapE 64 T)` with `T` stored inline.
    pub struct MapU64<T>(std::marker::PhantomData<T>);
    impl<T: TlbType + Clone> Codec for MapU64<T> {
        type Value = BTreeMap<u64, T>;
        fn store(b: &mut CellBuilder, v: &BTreeMap<u64, T>, _: &'static str) -> TlbResult<()> {
            let m: HashMap<u64, T> = v.iter().map(|(k, x)| (*k, x.clone())).collect();
            b.store_dict(64, |b, x: T| x.store(b).map_err(cell_err), m)?;
            Ok(())
        }
        fn load(p: &mut CellParser<'_>, _: &'static str) -> TlbResult<BTreeMap<u64, T>> {
            let m = p.load_dict(
                64,
                tonlib_core::cell::dict::predefined_readers::key_reader_u64,
                |p| T::load(p).map_err(cell_err),
            )?;
            Ok(m.into_iter().collect())
        }
    }

    /// `(HashmapE 32 T)` with `T` stored inline.
    pub struct MapU32<T>(std::marker::PhantomData<T>);
    impl<T: TlbType + Clone> Codec for MapU32<T> {
        type Value = BTreeMap<u32, T>;
        fn store(b: &mut CellBuilder, v: &BTreeMap<u32, T>, _: &'static str) -> TlbResult<()> {
            let m: HashMap<u32, T> = v.iter().map(|(k, x)| (*k, x.clone())).collect();
            b.store_dict(32, |b, x: T| x.store(b).map_err(cell_err), m)?;
            Ok(())
        }
        fn load(p: &mut CellParser<'_>, _: &'static str) -> TlbResult<BTreeMap<u32, T>> {
            let m = p.load_dict(
                32,
                tonlib_core::cell::dict::predefined_readers::key_reader_u32,
                |p| T::load(p).map_err(cell_err),
            )?;
            Ok(m.into_iter().collect())
        }
    }

    /// `(HashmapE 256 ^Cell)`: opaque cells keyed by a 256-bit value (a code hash).
    pub struct Map256Cell;
    impl Codec for Map256Cell {
        type Value = BTreeMap<[u8; 32], ArcCell>;
        fn store(
            b: &mut CellBuilder,
            v: &BTreeMap<[u8; 32], ArcCell>,
            _: &'static str,
        ) -> TlbResult<()> {
            let m: HashMap<TonHash, ArcCell> = v
                .iter()
                .map(|(k, c)| (TonHash::from(*k), c.clone()))
                .collect();
            b.store_dict(256, |b, c: ArcCell| b.store_reference(&c).map(|_| ()), m)?;
            Ok(())
        }
        fn load(p: &mut CellParser<'_>, _: &'static str) -> TlbResult<BTreeMap<[u8; 32], ArcCell>> {
            let m = p.load_dict(
                256,
                tonlib_core::cell::dict::predefined_readers::key_reader_256bit,
                |p| p.next_reference(),
            )?;
            Ok(m.into_iter()
                .map(|(k, c)| (<[u8; 32]>::from(k), c))
                .collect())
        }
    }
}

/// Bag-of-cells serialisation in the exact byte layout of `@ton/core`'s
/// `cell.toBoc({idx: false, crc32: true})`, so that re-encoding a BOC the contract suite
/// produced gives the same bytes. (tonlib-core orders cells differently; both are valid BOCs.)
pub mod boc {
    use std::collections::HashMap;

    use super::*;

    struct Node {
        cell: ArcCell,
        refs: Vec<[u8; 32]>,
    }

    fn key(c: &Cell) -> [u8; 32] {
        c.cell_hash().into()
    }

    /// Cells in `@ton/core` order: breadth-first discovery, then a depth-first post-order over
    /// the discovery order with children visited last-to-first, reversed.
    fn ordered(root: &ArcCell) -> (Vec<[u8; 32]>, HashMap<[u8; 32], Node>) {
        let mut all: HashMap<[u8; 32], Node> = HashMap::new();
        let mut discovery: Vec<[u8; 32]> = Vec::new();
        let mut pending = vec![root.clone()];
        while !pending.is_empty() {
            let layer = std::mem::take(&mut pending);
            for c in layer {
                let h = key(&c);
                if all.contains_key(&h) {
                    continue;
                }
                discovery.push(h);
                let refs = c.references().iter().map(|r| key(r)).collect();
                pending.extend(c.references().iter().cloned());
                all.insert(h, Node { cell: c, refs });
            }
        }
        let mut done: std::collections::HashSet<[u8; 32]> = std::collections::HashSet::new();
        let mut sorted: Vec<[u8; 32]> = Vec::new();
        // Iterative post-order (cell DAGs are at most 1024 deep, but recursion depth is not
        // worth risking in a library).
        for start in &discovery {
            if done.contains(start) {
                continue;
            }
            let mut stack: Vec<([u8; 32], usize)> = vec![(*start, 0)];
            while let Some((h, i)) = stack.pop() {
                let refs = &all[&h].refs;
                if i < refs.len() {
                    stack.push((h, i + 1));
                    let child = refs[refs.len() - 1 - i];
                    if !done.contains(&child) {
                        stack.push((child, 0));
                    }
                } else if done.insert(h) {
                    sorted.push(h);
                }
            }
        }
        sorted.reverse();
        (sorted, all)
    }

    fn bytes_for(n: usize) -> usize {
        let bits = usize::BITS - n.leading_zeros();
        (bits as usize).div_ceil(8).max(1)
    }

    fn padded_data(c: &Cell) -> Vec<u8> {
        let len = c.bit_len();
        let mut d: Vec<u8> = c.data().iter().copied().take(len.div_ceil(8)).collect();
        d.resize(len.div_ceil(8), 0);
        if !len.is_multiple_of(8) {
            let last = d.len() - 1;
            let used = len % 8;
            d[last] &= 0xffu8 << (8 - used);
            d[last] |= 0x80u8 >> used;
        }
        d
    }

    /// The reflected CRC-32C polynomial.
    const CRC32C_POLY: u32 = 0x82f6_3b78;

    /// The CRC of each byte value, so a byte costs one lookup instead of eight shifts (every
    /// receipt and voucher on the request path is encoded as a BOC).
    const CRC32C_TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut crc = i as u32;
            let mut bit = 0;
            while bit < 8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ CRC32C_POLY
                } else {
                    crc >> 1
                };
                bit += 1;
            }
            table[i] = crc;
            i += 1;
        }
        table
    };

    /// CRC-32C (Castagnoli), as BOCs use.
    pub fn crc32c(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc = (crc >> 8) ^ CRC32C_TABLE[((crc ^ u32::from(b)) & 0xff) as usize];
        }
        !crc
    }

    /// Serialises `root` like `@ton/core` (no index, CRC32C). Exotic cells fall back to
    /// tonlib-core's serialiser.
    pub fn serialize(root: &Cell) -> TlbResult<Vec<u8>> {
        let root = Arc::new(root.clone());
        let (order, all) = ordered(&root);
        if order.iter().any(|h| all[h].cell.is_exotic()) {
            return Ok(BagOfCells::from_root((*root).clone()).serialize(true)?);
        }
        let index: HashMap<[u8; 32], usize> =
            order.iter().enumerate().map(|(i, h)| (*h, i)).collect();
        let size = bytes_for(order.len());
        let total: usize = order
            .iter()
            .map(|h| 2 + all[h].cell.bit_len().div_ceil(8) + all[h].refs.len() * size)
            .sum();
        let off = bytes_for(total);
        let mut out = Vec::with_capacity(total + 32);
        let put = |out: &mut Vec<u8>, v: usize, n: usize| {
            out.extend_from_slice(&(v as u64).to_be_bytes()[8 - n..])
        };
        out.extend_from_slice(&0xb5ee_9c72u32.to_be_bytes());
        out.push(0b0100_0000 | size as u8); // no index, crc32c, no cache bits, flags 0
        out.push(off as u8);
        put(&mut out, order.len(), size);
        put(&mut out, 1, size);
        put(&mut out, 0, size);
        put(&mut out, total, off);
        put(&mut out, 0, size);
        for h in &order {
            let n = &all[h];
            let bits = n.cell.bit_len();
            out.push(n.refs.len() as u8);
            out.push((bits.div_ceil(8) + bits / 8) as u8);
            out.extend_from_slice(&padded_data(&n.cell));
            for r in &n.refs {
                put(&mut out, index[r], size);
            }
        }
        let crc = crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Proptest strategies for field types.
    use proptest::prelude::*;

    use super::*;

    /// Any basechain or masterchain std address.
    pub fn address() -> impl Strategy<Value = TonAddress> {
        (prop_oneof![Just(0i32), Just(-1i32)], any::<[u8; 32]>())
            .prop_map(|(wc, h)| TonAddress::new(wc, TonHash::from(h)))
    }

    /// Any representable `Coins` value, biased towards small and boundary values.
    pub fn coins() -> impl Strategy<Value = u128> {
        prop_oneof![
            Just(0u128),
            Just(MAX_COINS),
            0u128..=u64::MAX as u128,
            0u128..=MAX_COINS
        ]
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Test type covering every helper: `t#ab a:addr b:Maybe addr c:Coins h:bits256 = T`.
    #[derive(Debug, Clone, PartialEq)]
    struct Sample {
        a: TonAddress,
        b: Option<TonAddress>,
        c: u128,
        h: [u8; 32],
    }

    impl TlbType for Sample {
        const NAME: &'static str = "Sample";
        fn store(&self, b: &mut CellBuilder) -> TlbResult<()> {
            store_tag(b, 8, 0xab)?;
            store_address(b, &self.a, "Sample.a")?;
            store_maybe_address(b, self.b.as_ref(), "Sample.b")?;
            store_coins(b, self.c, "Sample.c")?;
            store_bits256(b, &self.h)
        }
        fn load(p: &mut CellParser<'_>) -> TlbResult<Self> {
            expect_tag(p, 8, 0xab, Self::NAME)?;
            Ok(Self {
                a: load_address(p, "Sample.a")?,
                b: load_maybe_address(p, "Sample.b")?,
                c: load_coins(p)?,
                h: load_bits256(p)?,
            })
        }
    }

    proptest! {
        #[test]
        fn sample_round_trips(
            a in testing::address(),
            b in proptest::option::of(testing::address()),
            c in testing::coins(),
            h in any::<[u8; 32]>(),
        ) {
            let v = Sample { a, b, c, h };
            prop_assert_eq!(Sample::from_cell(&v.to_cell().unwrap()).unwrap(), v.clone());
            prop_assert_eq!(Sample::from_boc(&v.to_boc().unwrap()).unwrap(), v);
        }
    }

    fn sample() -> Sample {
        Sample {
            a: TonAddress::NULL,
            b: None,
            c: 5,
            h: [7; 32],
        }
    }

    #[test]
    fn wrong_tag_is_rejected() {
        let mut b = CellBuilder::new();
        b.store_u8(8, 0xac).unwrap();
        let err = Sample::from_cell(&b.build().unwrap()).unwrap_err();
        assert!(
            matches!(
                err,
                TlbError::WrongTag {
                    expected: 0xab,
                    found: 0xac,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn trailing_bits_and_refs_are_rejected() {
        let mut b = CellBuilder::new();
        sample().store(&mut b).unwrap();
        b.store_bit(true).unwrap();
        let err = Sample::from_cell(&b.build().unwrap()).unwrap_err();
        assert!(
            matches!(
                err,
                TlbError::TrailingData {
                    bits: 1,
                    refs: 0,
                    ..
                }
            ),
            "{err}"
        );

        let mut b = CellBuilder::new();
        sample().store(&mut b).unwrap();
        b.store_reference(&Arc::new(Cell::default())).unwrap();
        let err = Sample::from_cell(&b.build().unwrap()).unwrap_err();
        assert!(
            matches!(
                err,
                TlbError::TrailingData {
                    bits: 0,
                    refs: 1,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn coins_above_120_bits_are_refused() {
        let mut b = CellBuilder::new();
        let err = store_coins(&mut b, MAX_COINS + 1, "x").unwrap_err();
        assert!(matches!(err, TlbError::InvalidValue { field: "x", .. }));
    }

    #[test]
    fn coins_encoding_matches_ton_layout() {
        // 0 is a bare 4-bit zero length; 1 TON = 0x3b9aca00 takes 4 bytes.
        let mut b = CellBuilder::new();
        store_coins(&mut b, 0, "x").unwrap();
        assert_eq!(b.build().unwrap().bit_len(), 4);
        let mut b = CellBuilder::new();
        store_coins(&mut b, 1_000_000_000, "x").unwrap();
        let c = b.build().unwrap();
        assert_eq!(c.bit_len(), 4 + 32);
        assert_eq!(load_coins(&mut c.parser()).unwrap(), 1_000_000_000);
    }

    #[test]
    fn non_std_addresses_are_typed_errors() {
        let mut b = CellBuilder::new();
        b.store_u8(2, 0b01).unwrap().store_u16(9, 0).unwrap();
        let c = b.build().unwrap();
        let err = load_maybe_address(&mut c.parser(), "f").unwrap_err();
        assert!(matches!(
            err,
            TlbError::UnsupportedAddress {
                form: "addr_extern",
                ..
            }
        ));

        let mut b = CellBuilder::new();
        b.store_u8(2, 0).unwrap();
        let c = b.build().unwrap();
        let err = load_address(&mut c.parser(), "f").unwrap_err();
        assert!(matches!(
            err,
            TlbError::UnsupportedAddress {
                form: "addr_none",
                ..
            }
        ));

        let mut b = CellBuilder::new();
        b.store_u8(2, 0b10).unwrap().store_bit(true).unwrap();
        let c = b.build().unwrap();
        let err = load_address(&mut c.parser(), "f").unwrap_err();
        assert!(matches!(
            err,
            TlbError::UnsupportedAddress {
                form: "anycast",
                ..
            }
        ));
    }

    const BOC_VECTOR: &str = "te6cckEBAgEABwABAgEBAAEowRKlig==";

    #[test]
    fn boc_layout_matches_ton_core() {
        // `beginCell().storeUint(1, 8).storeRef(beginCell().storeUint(2, 4)).endCell()
        //  .toBoc({idx: false, crc32: true})` from @ton/core 0.63.1.
        let mut child = CellBuilder::new();
        child.store_u8(4, 2).unwrap();
        let mut b = CellBuilder::new();
        b.store_u8(8, 1)
            .unwrap()
            .store_reference(&Arc::new(child.build().unwrap()))
            .unwrap();
        let bytes = boc::serialize(&b.build().unwrap()).unwrap();
        assert_eq!(
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bytes),
            BOC_VECTOR
        );
        assert_eq!(boc::crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn hostile_bocs_are_refused_without_panicking() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
        for name in [
            "tonlib_boc_huge_cell_count.boc",
            "tonlib_boc_ref_out_of_range.boc",
        ] {
            let bytes = std::fs::read(dir.join(name)).unwrap();
            let err = boc_root(&bytes).unwrap_err();
            assert!(matches!(err, TlbError::MalformedBoc(_)), "{name}: {err}");
        }
        assert!(matches!(
            boc_root(&[0xb5, 0xee]),
            Err(TlbError::MalformedBoc(_))
        ));
        // A well-formed BOC still parses.
        let v = sample();
        assert_eq!(Sample::from_boc(&v.to_boc().unwrap()).unwrap(), v);
    }

    #[test]
    fn multi_root_boc_is_rejected() {
        let boc = BagOfCells::new(&[
            Arc::new(Cell::default()),
            Arc::new(sample().to_cell().unwrap()),
        ])
        .serialize(true)
        .unwrap();
        assert!(matches!(
            Sample::from_boc(&boc),
            Err(TlbError::RootCount(2))
        ));
        assert!(matches!(
            Sample::from_boc(b"garbage"),
            Err(TlbError::MalformedBoc(_))
        ));
    }
}
