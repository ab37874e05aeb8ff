//! A minimal Server-Sent-Events reader for the relayer's job streams (used by the benchmark and
//! the tests; clients use the sdk). It reads `event:` / `data:` lines and ignores comments
//! (keep-alives).

use cocoon_sdk::relay::client::StreamEvent;

/// Incremental SSE parser: feed it bytes, take complete events out.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: String,
}

/// Why a stream event could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// Not UTF-8.
    #[error("stream is not utf-8")]
    NotUtf8,
    /// The data of an event is not a StreamEvent.
    #[error("bad event data: {0}")]
    BadEvent(String),
}

impl SseParser {
    /// Appends received bytes and returns the events completed by them.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<StreamEvent>, SseError> {
        self.buf
            .push_str(std::str::from_utf8(bytes).map_err(|_| SseError::NotUtf8)?);
        let mut out = Vec::new();
        while let Some(end) = self.buf.find("\n\n") {
            let block: String = self.buf.drain(..end + 2).collect();
            let data: Vec<&str> = block
                .lines()
                .filter_map(|l| {
                    l.strip_prefix("data:")
                        .map(|d| d.strip_prefix(' ').unwrap_or(d))
                })
                .collect();
            if data.is_empty() {
                continue;
            }
            let ev: StreamEvent = serde_json::from_str(&data.join("\n"))
                .map_err(|e| SseError::BadEvent(e.to_string()))?;
            out.push(ev);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_split_events_and_skips_comments() {
        let mut p = SseParser::default();
        assert!(
            p.feed(b": keep-alive\n\nevent: status\ndata: {\"type\":\"sta")
                .unwrap()
                .is_empty()
        );
        let evs = p
            .feed(b"tus\",\"state\":\"x\",\"reason\":null}\n\n")
            .unwrap();
        assert_eq!(
            evs,
            vec![StreamEvent::Status {
                state: "x".into(),
                reason: None
            }]
        );
        assert!(p.feed(b"data: nope\n\n").is_err());
    }
}
