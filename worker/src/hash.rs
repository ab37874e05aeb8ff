//! Weights hashing: the sha256 that goes into every receipt.

use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::fs::File;
use std::io::Read as _;
use std::path::Path;
use std::rc::Rc;

use crate::error::{Error, Result};

/// A sha256 digest of a weights file.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct WeightsHash(pub [u8; 32]);

impl WeightsHash {
    /// Hashes bytes.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(hex_str: &str) -> Result<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_str.trim(), &mut out)
            .map_err(|_| Error::InvalidExpectedHash(hex_str.to_string()))?;
        Ok(Self(out))
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Checks `self` (computed) against the configured hash, naming `path` in the error.
    pub fn verify(&self, expected: &WeightsHash, path: &Path) -> Result<()> {
        if self == expected {
            Ok(())
        } else {
            Err(Error::HashMismatch {
                path: path.to_path_buf(),
                expected: expected.to_hex(),
                actual: self.to_hex(),
            })
        }
    }
}

impl std::fmt::Debug for WeightsHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WeightsHash({})", self.to_hex())
    }
}

impl std::fmt::Display for WeightsHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Bytes read between two reports to the read observer (hashed as they come).
const READ_CHUNK: usize = 1 << 20;

/// Told `(read, total)` bytes as a weights file is read.
pub type ReadObserver = Rc<dyn Fn(u64, u64)>;

thread_local! {
    /// The observer [`read_verified`] reports to on this thread, set by [`reporting_reads`].
    static READ_OBSERVER: RefCell<Option<ReadObserver>> = const { RefCell::new(None) };
}

/// Runs `f` with every [`read_verified`] it makes on this thread reporting to `observer` as the
/// file is read: a model load's progress (the read is most of a load) without threading a
/// callback through every backend's loader.
pub fn reporting_reads<R>(observer: ReadObserver, f: impl FnOnce() -> R) -> R {
    /// Puts back the observer found on entry, also when `f` panics.
    struct Restore(Option<ReadObserver>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            READ_OBSERVER.with(|o| *o.borrow_mut() = previous);
        }
    }
    let _restore = Restore(READ_OBSERVER.with(|o| o.borrow_mut().replace(observer)));
    f()
}

/// Reads a whole file, hashes exactly the bytes read and, when `expected` is given, refuses a
/// mismatch. Returning the bytes means the parser sees what was hashed (no re-read in between).
/// Under [`reporting_reads`], says how far the read got after every chunk.
pub fn read_verified(
    path: &Path,
    expected: Option<&WeightsHash>,
) -> Result<(Vec<u8>, WeightsHash)> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let total = file.metadata().map_err(io)?.len();
    let observer = READ_OBSERVER.with(|o| o.borrow().clone());
    let mut bytes = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let mut hasher = Sha256::new();
    loop {
        let start = bytes.len();
        // Reads to the end, not to `total`: a file that grew since is hashed whole too.
        let n = (&mut file)
            .take(READ_CHUNK as u64)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        hasher.update(&bytes[start..]);
        if let Some(report) = &observer {
            report(bytes.len() as u64, total.max(bytes.len() as u64));
        }
        if n == 0 {
            break;
        }
    }
    let hash = WeightsHash(hasher.finalize().into());
    if let Some(expected) = expected {
        hash.verify(expected, path)?;
    }
    Ok((bytes, hash))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    #[test]
    fn a_reported_read_hashes_the_same_bytes_and_says_how_far_it_got() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weights.bin");
        // Two and a half chunks: the last report is a partial chunk.
        let data: Vec<u8> = (0..READ_CHUNK * 5 / 2).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let expected = WeightsHash::of(&data);

        let seen = Rc::new(RefCell::new(Vec::new()));
        let log = seen.clone();
        let (bytes, hash) = reporting_reads(
            Rc::new(move |read, total| log.borrow_mut().push((read, total))),
            || read_verified(&path, Some(&expected)),
        )
        .unwrap();
        assert_eq!(bytes, data);
        assert_eq!(hash, expected);
        let seen = seen.borrow();
        let total = data.len() as u64;
        assert!(seen.iter().all(|&(_, t)| t == total), "{seen:?}");
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");
        assert_eq!(seen.first().unwrap().0, READ_CHUNK as u64);
        assert_eq!(seen.last().unwrap().0, total);

        // Outside `reporting_reads` nothing is reported; a mismatch is still refused.
        let (again, _) = read_verified(&path, None).unwrap();
        assert_eq!(again, data);
        assert_eq!(seen.len(), 4, "{seen:?}");
        let wrong = WeightsHash([0; 32]);
        assert!(matches!(
            read_verified(&path, Some(&wrong)),
            Err(Error::HashMismatch { .. })
        ));
    }
}
