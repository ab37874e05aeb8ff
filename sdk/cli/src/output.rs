//! Human or JSON output, and a progress indicator while waiting on the chain.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::Args;
use serde_json::Value;

/// Prints results as text or as one JSON document.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    /// JSON mode.
    pub json: bool,
}

impl Printer {
    /// Prints `human` (text mode) or `json` (JSON mode) to stdout.
    pub fn emit(&self, human: impl AsRef<str>, json: Value) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_else(|_| json.to_string())
            );
        } else {
            println!("{}", human.as_ref());
        }
    }

    /// Runs `fut` while showing `msg` with a spinner on stderr (a plain line when stderr is not
    /// a terminal, nothing in JSON mode).
    pub async fn progress<F: Future>(&self, msg: &str, fut: F) -> F::Output {
        if self.json {
            return fut.await;
        }
        let tty = std::io::stderr().is_terminal();
        if !tty {
            eprintln!("{msg}…");
            return fut.await;
        }
        let text = msg.to_owned();
        let spinner = tokio::spawn(async move {
            const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
            let mut i = 0usize;
            loop {
                eprint!("\r{} {text}", FRAMES[i % FRAMES.len()]);
                let _ = std::io::stderr().flush();
                i += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let out = fut.await;
        spinner.abort();
        eprint!("\r\x1b[2K");
        let _ = std::io::stderr().flush();
        out
    }
}
/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Args)]
pub struct OutputArgs {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}
