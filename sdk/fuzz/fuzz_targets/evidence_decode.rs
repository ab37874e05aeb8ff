//! Evidence decoding: never panics, and whatever decodes re-encodes to the same bytes.
#![no_main]

use cocoon_sdk::attest::Evidence;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(evidence) = Evidence::decode(data) {
        assert_eq!(evidence.encode(), data);
        let _ = evidence.hash();
    }
});
