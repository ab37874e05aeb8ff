//! A Server-Sent-Events parser (the WHATWG `text/event-stream` rules the client needs): lines end
//! with LF, CRLF or CR; `event:` names the event, `data:` lines are joined with LF, lines starting
//! with `:` are comments (keep-alives), a blank line dispatches. Bytes arrive in arbitrary pieces,
//! so a line, a CRLF pair or a UTF-8 character may be split across two feeds.

/// Longest event (all its lines together) the parser buffers, bytes. A sealed chunk of
/// [`crate::seal::MAX_CHUNK_LEN`] is about 1.4 MiB in base64 JSON, so this leaves room.
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, `message` when absent.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Why the byte stream is not a valid event stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// A line is not UTF-8.
    #[error("event stream line is not UTF-8")]
    NotUtf8,
    /// An event grew beyond [`MAX_EVENT_BYTES`].
    #[error("event of more than {MAX_EVENT_BYTES} bytes")]
    TooLarge,
}

/// Incremental parser: [`SseParser::feed`] bytes, take the completed events.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the line being received.
    line: Vec<u8>,
    /// The previous feed ended with CR: a LF at the start of the next one belongs to it.
    after_cr: bool,
    event: Option<String>,
    data: Option<String>,
    /// Bytes held by the event being built.
    pending: usize,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes `bytes` and returns the events they complete, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut out = Vec::new();
        for &b in bytes {
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                continue;
            }
            match b {
                b'\r' | b'\n' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(ev) = self.line_done(&line)? {
                        out.push(ev);
                    }
                }
                _ => {
                    if self.line.len() + self.pending >= MAX_EVENT_BYTES {
                        return Err(SseError::TooLarge);
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(out)
    }

    /// Whether bytes of an event that was never dispatched are held (a stream that ends here
    /// was cut in the middle of an event).
    pub fn has_partial(&self) -> bool {
        !self.line.is_empty() || self.data.is_some() || self.event.is_some()
    }

    fn line_done(&mut self, line: &[u8]) -> Result<Option<SseEvent>, SseError> {
        if line.is_empty() {
            self.pending = 0;
            let event = self.event.take();
            return Ok(self.data.take().map(|data| SseEvent {
                event: event.unwrap_or_else(|| "message".to_owned()),
                data,
            }));
        }
        let line = std::str::from_utf8(line).map_err(|_| SseError::NotUtf8)?;
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                self.pending += value.len() + 1;
                match &mut self.data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => self.data = Some(value.to_owned()),
                }
            }
            // `id` and `retry` matter only to browsers reconnecting; unknown fields are ignored
            // as the standard says.
            _ => {}
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn named_events_and_default_name() {
        let mut p = SseParser::new();
        let got = p
            .feed(b"event: chunk\ndata: {\"a\":1}\n\ndata: plain\n\n")
            .unwrap();
        assert_eq!(got, vec![ev("chunk", "{\"a\":1}"), ev("message", "plain")]);
        assert!(!p.has_partial());
    }

    #[test]
    fn multi_line_data_is_joined_with_lf() {
        let mut p = SseParser::new();
        let got = p.feed(b"data: one\ndata:two\ndata:  three\n\n").unwrap();
        assert_eq!(got, vec![ev("message", "one\ntwo\n three")]);
    }

    #[test]
    fn comments_and_unknown_fields_are_skipped() {
        let mut p = SseParser::new();
        let got = p
            .feed(b": keep-alive\n\n:another\nid: 7\nretry: 10\nevent: status\nfoo\ndata: x\n\n")
            .unwrap();
        assert_eq!(got, vec![ev("status", "x")]);
        // A blank line with no data dispatches nothing.
        assert!(p.feed(b"event: lonely\n\n").unwrap().is_empty());
    }

    #[test]
    fn crlf_and_cr_line_endings() {
        let mut p = SseParser::new();
        let got = p
            .feed(b"event: a\r\ndata: 1\r\n\r\nevent: b\rdata: 2\r\r")
            .unwrap();
        assert_eq!(got, vec![ev("a", "1"), ev("b", "2")]);
    }

    #[test]
    fn frames_split_anywhere_give_the_same_events() {
        let stream = "event: chunk\r\ndata: {\"x\":\"é→\"}\r\n\r\n: ping\n\nevent: receipt\ndata: a\ndata: b\n\n";
        let whole = SseParser::new().feed(stream.as_bytes()).unwrap();
        assert_eq!(whole.len(), 2);
        let bytes = stream.as_bytes();
        for cut in 0..bytes.len() {
            let mut p = SseParser::new();
            let mut got = p.feed(&bytes[..cut]).unwrap();
            got.extend(p.feed(&bytes[cut..]).unwrap());
            assert_eq!(got, whole, "split at {cut}");
        }
        // One byte at a time.
        let mut p = SseParser::new();
        let mut got = Vec::new();
        for b in bytes {
            got.extend(p.feed(std::slice::from_ref(b)).unwrap());
        }
        assert_eq!(got, whole);
    }

    #[test]
    fn a_cut_event_is_reported_as_partial() {
        let mut p = SseParser::new();
        assert!(
            p.feed(b"event: receipt\ndata: {\"trunc")
                .unwrap()
                .is_empty()
        );
        assert!(p.has_partial());
    }

    #[test]
    fn bad_utf8_and_oversized_events_are_errors() {
        assert_eq!(
            SseParser::new().feed(b"data: \xff\xfe\n\n"),
            Err(SseError::NotUtf8)
        );
        let mut p = SseParser::new();
        let line = vec![b'a'; 1024 * 1024];
        let mut res = Ok(Vec::new());
        for _ in 0..9 {
            res = p
                .feed(b"data: ")
                .and_then(|_| p.feed(&line))
                .and_then(|_| p.feed(b"\n"));
            if res.is_err() {
                break;
            }
        }
        assert_eq!(res, Err(SseError::TooLarge));
    }
}
