//! Server-sent events as translation meets them: whole upstream events parsed into their
//! name and data, and the client's events written compactly (`data: …` for OpenAI,
//! `event: …` + `data: …` for Anthropic).

use serde_json::Value;

use crate::BadStream;

/// One upstream event: its `event:` name, if any, and its `data:` lines joined with `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    pub name: Option<String>,
    pub data: String,
}

/// The events in `bytes`, which hold whole events (each ending with a blank line). Events
/// without data (comments, keep-alives, a lone `id:`) are no events for translation; an
/// unterminated last event is taken as ended.
pub(crate) fn events(bytes: &[u8]) -> Result<Vec<Event>, BadStream> {
    let text = std::str::from_utf8(bytes).map_err(|_| BadStream("an event is not UTF-8".to_owned()))?;
    let mut events = Vec::new();
    let mut name = None;
    let mut data: Option<String> = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            if let Some(data) = data.take() {
                events.push(Event { name: name.take(), data });
            }
            name = None;
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => name = Some(value.to_owned()),
            "data" => match &mut data {
                Some(joined) => {
                    joined.push('\n');
                    joined.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            // `id:`, `retry:`, comments (an empty field name) and unknown fields.
            _ => {}
        }
    }
    if let Some(data) = data {
        events.push(Event { name, data });
    }
    Ok(events)
}

/// The event's data as JSON.
pub(crate) fn json(event: &Event) -> Result<Value, BadStream> {
    serde_json::from_str(&event.data).map_err(|error| BadStream(format!("an event's data is not JSON: {error}")))
}

/// An OpenAI event: `data: {json}`.
pub(crate) fn write_data(out: &mut Vec<u8>, data: &Value) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// OpenAI's end of stream.
pub(crate) fn write_done(out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: [DONE]\n\n");
}

/// An Anthropic event: `event: <type>` then `data: {json}`, the type repeated in the data.
pub(crate) fn write_event(out: &mut Vec<u8>, data: &Value) {
    let kind = data.get("type").and_then(Value::as_str).unwrap_or("error");
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.push(b'\n');
    write_data(out, data);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: Option<&str>, data: &str) -> Event {
        Event { name: name.map(str::to_owned), data: data.to_owned() }
    }

    #[test]
    fn events_keep_their_name_and_join_their_data_lines() {
        let bytes = b"event: message_start\ndata: {\"a\":\ndata: 1}\n\ndata: [DONE]\n\n";
        assert_eq!(events(bytes).unwrap(), vec![event(Some("message_start"), "{\"a\":\n1}"), event(None, "[DONE]")]);
    }

    #[test]
    fn crlf_lines_comments_and_ids_are_read_as_the_spec_says() {
        let bytes = b": keep-alive\r\n\r\nid: 7\r\nevent: ping\r\ndata:{}\r\n\r\n";
        assert_eq!(events(bytes).unwrap(), vec![event(Some("ping"), "{}")]);
    }

    #[test]
    fn an_unterminated_last_event_is_taken_as_ended() {
        assert_eq!(events(b"data: 1\n\ndata: 2").unwrap(), vec![event(None, "1"), event(None, "2")]);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_a_bad_stream() {
        assert!(events(b"data: \xff\n\n").is_err());
    }

    #[test]
    fn the_clients_events_are_written_compactly() {
        let mut out = Vec::new();
        write_event(&mut out, &serde_json::json!({"type": "ping"}));
        write_data(&mut out, &serde_json::json!({"a": 1}));
        write_done(&mut out);
        assert_eq!(out, b"event: ping\ndata: {\"type\":\"ping\"}\n\ndata: {\"a\":1}\n\ndata: [DONE]\n\n");
    }
}
