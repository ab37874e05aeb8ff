//! The ledger of receipts this worker signed, one per job. Two different receipts for one
//! (escrow, job id) are an equivocation that costs the stake, so the node records every receipt
//! durably *before* it leaves the process and never signs for a job the ledger already holds —
//! also across restarts and when the relayer dispatches the same job again.
//!
//! File format: one line per receipt, `escrow job_id receipt-boc-base64`, appended and fsynced.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cocoon_sdk::relay::JobRef;
use tracing::warn;

use super::error::{NodeError, Result};

/// Signed receipts by job.
#[derive(Debug)]
pub struct ReceiptLedger {
    path: Option<PathBuf>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    signed: HashMap<(String, u64), Vec<u8>>,
    file: Option<File>,
}

impl ReceiptLedger {
    /// Opens (or creates) the ledger file and reads every receipt recorded so far.
    pub fn open(path: PathBuf) -> Result<Self> {
        let err = |reason: String| NodeError::File {
            path: path.clone(),
            reason,
        };
        let mut signed = HashMap::new();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for (n, line) in text.lines().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let mut parts = line.split(' ');
                    let (Some(escrow), Some(id), Some(boc), None) =
                        (parts.next(), parts.next(), parts.next(), parts.next())
                    else {
                        return Err(err(format!("line {}: malformed", n + 1)));
                    };
                    let id: u64 = id
                        .parse()
                        .map_err(|e| err(format!("line {}: job id: {e}", n + 1)))?;
                    let boc = STANDARD
                        .decode(boc)
                        .map_err(|e| err(format!("line {}: receipt: {e}", n + 1)))?;
                    signed.insert((escrow.to_owned(), id), boc);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e.to_string())),
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let file = opts.open(&path).map_err(|e| err(e.to_string()))?;
        Ok(Self {
            path: Some(path),
            state: Mutex::new(State {
                signed,
                file: Some(file),
            }),
        })
    }

    /// A ledger that lives in memory only: it still refuses a second receipt per job while the
    /// process runs, but forgets everything on exit.
    pub fn in_memory() -> Self {
        warn!(target: "worker::node", "receipt ledger in memory only: a restarted node could sign a job twice");
        Self {
            path: None,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a receipt for `job` was already signed.
    pub fn contains(&self, job: &JobRef) -> bool {
        self.lock()
            .signed
            .contains_key(&(job.escrow.clone(), job.job_id))
    }

    /// The receipt recorded for `job`, if any.
    pub fn get(&self, job: &JobRef) -> Option<Vec<u8>> {
        self.lock()
            .signed
            .get(&(job.escrow.clone(), job.job_id))
            .cloned()
    }

    /// Number of receipts recorded.
    pub fn len(&self) -> usize {
        self.lock().signed.len()
    }

    /// Whether no receipt was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records the receipt for `job` durably, or refuses with [`NodeError::AlreadySigned`] when
    /// the job already has one. Only a receipt recorded here may be sent anywhere.
    pub fn record(&self, job: &JobRef, receipt_boc: &[u8]) -> Result<()> {
        let mut st = self.lock();
        let key = (job.escrow.clone(), job.job_id);
        if st.signed.contains_key(&key) {
            return Err(NodeError::AlreadySigned {
                job: job.to_string(),
            });
        }
        if let Some(f) = st.file.as_mut() {
            let line = format!(
                "{} {} {}\n",
                job.escrow,
                job.job_id,
                STANDARD.encode(receipt_boc)
            );
            f.write_all(line.as_bytes())
                .and_then(|()| f.sync_data())
                .map_err(|e| NodeError::File {
                    path: self.path.clone().unwrap_or_default(),
                    reason: e.to_string(),
                })?;
        }
        st.signed.insert(key, receipt_boc.to_vec());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_recorded_once_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json.receipts");
        let job = JobRef::new(format!("0:{}", "ab".repeat(32)), 7);
        {
            let l = ReceiptLedger::open(path.clone()).unwrap();
            assert!(!l.contains(&job));
            l.record(&job, b"first").unwrap();
            assert!(matches!(
                l.record(&job, b"second"),
                Err(NodeError::AlreadySigned { .. })
            ));
            l.record(&JobRef::new(job.escrow.clone(), 8), b"other")
                .unwrap();
        }
        let l = ReceiptLedger::open(path.clone()).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l.get(&job).unwrap(), b"first");
        assert!(matches!(
            l.record(&job, b"third"),
            Err(NodeError::AlreadySigned { .. })
        ));
        std::fs::write(&path, "0:00 notanumber AAAA\n").unwrap();
        assert!(matches!(
            ReceiptLedger::open(path),
            Err(NodeError::File { .. })
        ));
    }
}
