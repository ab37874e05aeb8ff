//! The `cocoon-relayer` binary as a child process, for the tests that SIGKILL it.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A port nobody listens on now (the relayer binds it next, across restarts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the relayer binary on `port` over the store `db`, watching the Root `root` through
/// the chain API at `api_url`, with `extra` flags; its log is appended to `log`.
pub fn spawn_relayer(
    api_url: &str,
    root: &str,
    mnemonic: &str,
    port: u16,
    db: &str,
    log: &Path,
    extra: &[&str],
) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_cocoon-relayer"))
        .args([
            "run",
            "--api.listen",
            &format!("127.0.0.1:{port}"),
            "--store.url",
            db,
        ])
        .args([
            "--chain.api-url",
            api_url,
            "--chain.root",
            root,
            "--chain.poll",
            "1",
        ])
        .args(extra)
        .env("COCOON_RELAYER_MNEMONIC", mnemonic)
        .env("RUST_LOG", "relayer=info")
        .env_remove("COCOON_RELAYER_CONFIG")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}
