//! Sealed-input and response-chunk decoding: never panics, canonical when it succeeds.
#![no_main]

use cocoon_sdk::seal::{SealedChunk, SealedInput};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(input) = SealedInput::decode(data) {
        assert_eq!(input.encode(), data);
    }
    if let Ok(chunk) = SealedChunk::decode(data) {
        assert_eq!(chunk.encode(), data);
    }
});
