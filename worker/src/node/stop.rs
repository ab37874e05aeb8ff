//! Stop strings: generation ends before the first occurrence of any of them, and the stop string
//! itself is never emitted. Text that might be the start of a stop string is held back until the
//! next token decides (a stop string can span several tokens).

/// Filters streamed text against the request's stop strings.
#[derive(Debug, Clone, Default)]
pub struct StopFilter {
    stops: Vec<String>,
    held: String,
    stopped: bool,
}

impl StopFilter {
    /// A filter for `stops` (empty strings are ignored).
    pub fn new(stops: &[String]) -> Self {
        Self {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
            stopped: false,
        }
    }

    /// Whether a stop string was seen.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Feeds newly generated text; returns the text that is safe to emit now. After a stop string
    /// was seen it returns nothing.
    pub fn push(&mut self, text: &str) -> String {
        if self.stopped {
            return String::new();
        }
        self.held.push_str(text);
        if let Some(at) = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
        {
            self.stopped = true;
            let out = self.held[..at].to_owned();
            self.held.clear();
            return out;
        }
        let keep = self.longest_stop_prefix_suffix();
        let cut = self.held.len() - keep;
        let out = self.held[..cut].to_owned();
        self.held.drain(..cut);
        out
    }

    /// The text still held back, released when generation ends without a stop string.
    pub fn finish(&mut self) -> String {
        if self.stopped {
            return String::new();
        }
        std::mem::take(&mut self.held)
    }

    /// Length of the longest suffix of the held text that is a proper prefix of a stop string.
    fn longest_stop_prefix_suffix(&self) -> usize {
        let h = &self.held;
        (1..=h.len())
            .rev()
            .filter(|&n| h.is_char_boundary(h.len() - n))
            .find(|&n| {
                let suffix = &h[h.len() - n..];
                self.stops
                    .iter()
                    .any(|s| s.len() > n && s.starts_with(suffix))
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut f = StopFilter::new(&stops);
        let mut out = String::new();
        for p in pieces {
            out.push_str(&f.push(p));
        }
        out.push_str(&f.finish());
        (out, f.stopped())
    }

    #[test]
    fn stop_strings_end_the_text_and_are_never_emitted() {
        assert_eq!(run(&[], &["a", "b"]), ("ab".into(), false));
        assert_eq!(
            run(&["END"], &["one E", "N", "D two"]),
            ("one ".into(), true)
        );
        assert_eq!(run(&["\n\n"], &["x\n", "\n", "y"]), ("x".into(), true));
        // A held prefix that turns out not to be a stop is released.
        assert_eq!(run(&["END"], &["EN", "x"]), ("ENx".into(), false));
        assert_eq!(run(&["END"], &["xEN"]), ("xEN".into(), false));
        // The earliest of several stops wins.
        assert_eq!(run(&["b", "a"], &["xab"]), ("x".into(), true));
        // Multi-byte characters are never split.
        assert_eq!(run(&["é!"], &["café", "?"]), ("café?".into(), false));
        assert_eq!(run(&[""], &["a"]), ("a".into(), false));
    }

    #[test]
    fn held_text_is_not_emitted_early() {
        let mut f = StopFilter::new(&["STOP".to_string()]);
        assert_eq!(f.push("hi ST"), "hi ");
        assert_eq!(f.push("O"), "");
        assert_eq!(f.push("P and more"), "");
        assert!(f.stopped());
        assert_eq!(f.push("later"), "");
        assert_eq!(f.finish(), "");
    }
}
