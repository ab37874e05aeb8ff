//! What the canary tests share: the canary string, a log capture for the whole test process, a
//! byte search, and the relayer's database files of a devnet.
//!
//! A canary string in a prompt must never appear in plaintext in the relayer's database, in a
//! log line of any component, or on the links (read with [`cocoon_testkit::wire`]).

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

/// The string the tests put in prompts.
pub const CANARY: &str = "CANARY-7f3a9c-purple-giraffe";

/// Every log line of the process, as written.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// What was logged so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures every component's logs at debug level for the rest of the process (installed once:
/// the tests of one binary share it, and each searches all of it).
///
/// # Panics
/// When another global subscriber was installed first (the capture would then see nothing).
pub fn capture_logs() -> Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let logs = Captured::default();
            let sink = logs.clone();
            tracing_subscriber::fmt()
                .with_env_filter(
                    "debug,wgpu_core=warn,wgpu_hal=warn,naga=warn,cubecl=warn,burn=warn,hyper=info,h2=info",
                )
                .with_writer(move || sink.clone())
                .with_ansi(false)
                .try_init()
                .expect("the log capture is the process's only subscriber");
            logs
        })
        .clone()
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The bytes of the relayer's SQLite files (database, WAL, shared memory) in a devnet's
/// directory; stop the relayer first so that everything reached them.
pub fn relayer_db(dir: &Path) -> std::io::Result<Vec<u8>> {
    let mut db = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("relayer.sqlite"))
        {
            db.extend(std::fs::read(&p)?);
        }
    }
    Ok(db)
}
