//! Receipt decoding from a BOC: never panics; a decoded receipt re-encodes to a BOC that decodes
//! to the same receipt, and signature checks on garbage fail cleanly.
#![no_main]

use cocoon_sdk::receipt::SignedReceipt;
use cocoon_sdk::tlb::TlbType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(receipt) = SignedReceipt::from_boc(data) {
        let boc = receipt.to_boc().expect("a decoded receipt re-encodes");
        assert_eq!(
            SignedReceipt::from_boc(&boc).expect("re-encoded receipt decodes"),
            receipt
        );
        let _ = receipt.verify_signature(&[0x11; 32]);
    }
});
