//! Human or JSON output, and a progress indicator while waiting on the chain.

use std::future::Future;
use std::io::IsTerminal;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

/// How often a spinner turns.
const SPINNER_TICK: Duration = Duration::from_millis(100);

/// Where progress is drawn: stderr on a terminal, nowhere otherwise (a log file or a pipe gets
/// no control sequences and no redraws).
pub(crate) fn progress_target(is_terminal: bool) -> ProgressDrawTarget {
    if is_terminal {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// A spinner saying `msg`, turning on its own, drawn only when `is_terminal`.
pub(crate) fn spinner(msg: &str, is_terminal: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, progress_target(is_terminal));
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed:.dim}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(msg.to_owned());
    if is_terminal {
        bar.enable_steady_tick(SPINNER_TICK);
    }
    bar
}

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
        let bar = spinner(msg, tty);
        let out = fut.await;
        bar.finish_and_clear();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_drawn_when_stderr_is_not_a_terminal() {
        assert!(progress_target(false).is_hidden());
        let bar = spinner("waiting for the chain", false);
        assert!(bar.is_hidden());
        bar.tick();
        bar.finish_and_clear();
    }

    #[test]
    fn a_terminal_gets_the_spinner_with_its_message() {
        let bar = spinner("deploying Root", true);
        assert_eq!(bar.message(), "deploying Root");
        bar.finish_and_clear();
    }
}
