//! Server-sent events as the suite reads them: bytes in any split, `\n` or `\r\n` line
//! ends, comment lines (`:`) skipped, an event's `data:` lines joined by `\n`, events
//! without data dropped.

/// An incremental reader; `push` answers the events completed by each piece.
#[derive(Debug, Default)]
pub struct SseReader {
    pending: Vec<u8>,
}

impl SseReader {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend(bytes.iter().copied().filter(|&b| b != b'\r'));
        let mut events = Vec::new();
        while let Some(end) = self.pending.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = self.pending.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&block[..end]);
            let data: Vec<&str> = text
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .map(|data| data.strip_prefix(' ').unwrap_or(data))
                .collect();
            if !data.is_empty() {
                events.push(data.join("\n"));
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_anywhere_with_comments_and_crlf() {
        let mut reader = SseReader::default();
        assert!(reader.push(b": keep-alive\r\n\r\ndata: {\"a\"").is_empty());
        assert_eq!(reader.push(b":1}\r\n\r\ndata: x\ndata: y\n\ndata: [DONE]\n\n"), ["{\"a\":1}", "x\ny", "[DONE]"]);
    }
}
