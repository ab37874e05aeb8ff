//! TON 24-word mnemonics: generation and key derivation.
//!
//! tonlib-core derives keys but has no generator. A TON mnemonic (no password) is 24 words from
//! the English list whose HMAC-SHA512 entropy passes the "basic seed" check; we draw random words
//! from the OS RNG until tonlib-core accepts them (about 256 draws, a few milliseconds).

use rand::Rng;
use rand::rngs::OsRng;
use tonlib_core::wallet::mnemonic::{KeyPair, Mnemonic, WORDLIST_EN_SET};

use super::WalletError;

/// Words in a TON mnemonic.
pub const WORDS: usize = 24;

/// Generates a fresh 24-word mnemonic.
pub fn generate() -> String {
    let mut list: Vec<(&str, usize)> = WORDLIST_EN_SET.iter().map(|(w, i)| (*w, *i)).collect();
    list.sort_by_key(|(_, i)| *i);
    let words: Vec<&str> = list.into_iter().map(|(w, _)| w).collect();
    loop {
        let pick: Vec<&str> = (0..WORDS)
            .map(|_| words[OsRng.gen_range(0..words.len())])
            .collect();
        if Mnemonic::new(pick.clone(), &None).is_ok() {
            return pick.join(" ");
        }
    }
}

/// Derives the ed25519 key pair of a mnemonic (whitespace-separated words).
pub fn key_pair(phrase: &str) -> Result<KeyPair, WalletError> {
    let words: Vec<&str> = phrase.split_whitespace().collect();
    let m = Mnemonic::new(words, &None).map_err(|e| WalletError::Mnemonic(e.to_string()))?;
    m.to_key_pair()
        .map_err(|e| WalletError::Mnemonic(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_mnemonics_are_valid_and_distinct() {
        let a = generate();
        let b = generate();
        assert_eq!(a.split(' ').count(), WORDS);
        assert_ne!(a, b);
        assert_eq!(key_pair(&a).unwrap().public_key.len(), 32);
    }

    #[test]
    fn bad_mnemonics_are_typed_errors() {
        assert!(matches!(
            key_pair("abandon abandon"),
            Err(WalletError::Mnemonic(_))
        ));
        let not_words = ["zzzz"; 24].join(" ");
        assert!(matches!(
            key_pair(&not_words),
            Err(WalletError::Mnemonic(_))
        ));
    }
}
