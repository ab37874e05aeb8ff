//! Receipt decoding from a BOC: never panics; a decoded receipt re-encodes to a BOC that decodes
//! to the same receipt, and signature checks on garbage fail cleanly.
//!
//! Known upstream bugs, reported: tonlib-core 0.26.11 `BagOfCells::parse`
//! - panics (index out of bounds, `bag_of_cells.rs:70`) when a cell reference or root points past
//!   the last cell (`regressions/tonlib_boc_ref_out_of_range.boc`);
//! - allocates `cells × size_of::<RawCell>()` up front from the header's cell count, so a 150-byte
//!   BOC asks for 4 GiB (`regressions/tonlib_boc_huge_cell_count.boc`).
//!
//! Until `tlb::boc_root` guards both, this target refuses headers that claim more cells or roots
//! than there are bytes and contains the panic, so the fuzzer keeps exploring the receipt decoder.
#![no_main]

use cocoon_sdk::receipt::SignedReceipt;
use cocoon_sdk::tlb::{BagOfCells, TlbType};
use libfuzzer_sys::fuzz_target;

/// `serialized_boc#b5ee9c72 has_idx:(## 1) has_crc32c:(## 1) has_cache_bits:(## 1) flags:(## 2)
/// size:(## 3) off_bytes:(## 8) cells:(##(size * 8)) roots:(##(size * 8)) ...`: each cell and root
/// takes at least one byte, so larger counts are lies.
fn plausible_header(data: &[u8]) -> bool {
    let (Some(&flags), Some(&magic_end)) = (data.get(4), data.get(3)) else {
        return false;
    };
    let size = usize::from(flags & 0x07);
    if magic_end != 0x72 || size == 0 || size > 4 || data.len() < 6 + 2 * size {
        return false;
    }
    let read = |at: usize| {
        data[at..at + size]
            .iter()
            .fold(0usize, |n, b| n << 8 | usize::from(*b))
    };
    read(6) <= data.len() && read(6 + size) <= data.len()
}

fn parse_boc_contained(data: &[u8]) -> Option<BagOfCells> {
    if !plausible_header(data) {
        return None;
    }
    // libfuzzer-sys aborts on any panic through its hook; silence it for the upstream parser only.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let parsed = std::panic::catch_unwind(|| BagOfCells::parse(data));
    std::panic::set_hook(hook);
    parsed.ok()?.ok()
}

fuzz_target!(|data: &[u8]| {
    let Some(boc) = parse_boc_contained(data) else {
        return;
    };
    if boc.num_roots() != 1 {
        return;
    }
    let Ok(root) = boc.single_root() else {
        return;
    };
    if let Ok(receipt) = SignedReceipt::from_cell(&root) {
        let boc = receipt.to_boc().expect("a decoded receipt re-encodes");
        assert_eq!(
            SignedReceipt::from_boc(&boc).expect("re-encoded receipt decodes"),
            receipt
        );
        let _ = receipt.verify_signature(&[0x11; 32]);
    }
});
