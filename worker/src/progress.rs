//! Progress on the worker's terminal: the bar drawn now (a model load), and the log writer that
//! lifts it while a log line is written. A line written under a bar would be glued to it and the
//! next redraw would leave the pieces behind; lifting it (clearing, writing the line, redrawing
//! below) keeps both readable. Where stderr is not a terminal no bar is ever drawn and the writer
//! is plain stderr.

use std::io::{self, Write};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget};

/// The bar on stderr now, if any (the node loads one model at a time).
static DRAWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Where progress is drawn: stderr on a terminal, nowhere otherwise.
pub fn draw_target(is_terminal: bool) -> ProgressDrawTarget {
    if is_terminal {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// Makes `bar` the one the log writer lifts (`None`: no bar any more). A hidden bar is never
/// registered: nothing needs lifting.
pub(crate) fn set_drawn(bar: Option<&ProgressBar>) {
    let bar = bar.filter(|b| !b.is_hidden()).cloned();
    if let Ok(mut d) = DRAWN.lock() {
        *d = bar;
    }
}

/// The log writer for `tracing_subscriber::fmt().with_writer(...)`: stderr, lifting the bar
/// drawn now around each write (a formatted log line is written at once).
pub fn log_writer() -> LogWriter {
    LogWriter
}

/// Stderr that lifts the bar drawn now around each write; see [`log_writer`].
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let bar = DRAWN.lock().ok().and_then(|d| d.clone());
        match bar {
            Some(bar) => bar.suspend(|| io::stderr().write(buf)),
            None => io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hidden_bar_is_never_lifted_and_the_writer_still_writes() {
        assert!(draw_target(false).is_hidden());
        let hidden = ProgressBar::with_draw_target(Some(10), draw_target(false));
        set_drawn(Some(&hidden));
        assert!(DRAWN.lock().unwrap().is_none());
        let line = b"a log line\n";
        assert_eq!(LogWriter.write(line).unwrap(), line.len());
        set_drawn(None);
        assert!(DRAWN.lock().unwrap().is_none());
    }
}
