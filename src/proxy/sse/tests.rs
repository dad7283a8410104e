use proptest::prelude::*;

use super::*;

const STREAM: &str = concat!(
    ": keep-alive\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\r\n\r\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: [DONE]\n\n",
);

fn feed_in_pieces(pieces: &[&[u8]]) -> (SseObserver, usize) {
    let mut observer = SseObserver::new();
    let mut first_token_at = usize::MAX;
    for (index, piece) in pieces.iter().enumerate() {
        if observer.feed(piece).first_token {
            first_token_at = index;
        }
    }
    (observer, first_token_at)
}

#[test]
fn role_chunk_is_not_a_token_but_the_first_content_is() {
    let mut observer = SseObserver::new();
    let mut events = Vec::new();
    let mut start = 0;
    for (end, _) in STREAM.match_indices("\n\n").chain(STREAM.match_indices("\r\n\r\n")) {
        events.push(end);
    }
    events.sort_unstable();
    let events: Vec<&str> = events
        .into_iter()
        .map(|end| {
            let stop = if STREAM[end..].starts_with("\r\n\r\n") { end + 4 } else { end + 2 };
            let event = &STREAM[start..stop];
            start = stop;
            event
        })
        .collect();
    assert!(!observer.feed(events[0].as_bytes()).first_token);
    assert!(!observer.feed(events[1].as_bytes()).first_token);
    assert!(observer.feed(events[2].as_bytes()).first_token);
    assert!(!observer.saw_finish());
    observer.feed(events[3].as_bytes());
    assert!(observer.saw_finish() && !observer.saw_done());
    observer.feed(events[4].as_bytes());
    assert!(observer.saw_done());
}

#[test]
fn tool_call_deltas_and_legacy_text_count_as_tokens() {
    let mut observer = SseObserver::new();
    observer.feed(b"data: {\"choices\":[{\"delta\":{\"tool_calls\": [{\"index\":0}]}}]}\n\n");
    assert!(observer.saw_token());
    let mut observer = SseObserver::new();
    observer.feed(b"data: {\"choices\":[{\"text\":\"Hi\",\"finish_reason\":null}]}\n\n");
    assert!(observer.saw_token() && !observer.saw_finish());
}

#[test]
fn escaped_keys_inside_content_are_not_mistaken_for_fields() {
    let mut observer = SseObserver::new();
    observer.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"say \\\"finish_reason\\\": \\\"x\\\"\"},\"finish_reason\":null}]}\n\n");
    assert!(observer.saw_token());
    assert!(!observer.saw_finish());
}

#[test]
fn error_events_are_noticed() {
    let mut observer = SseObserver::new();
    observer.feed(b"data: {\"error\": {\"message\": \"boom\"}}\n\n");
    assert!(observer.saw_error());
}

#[test]
fn an_endless_line_stops_the_observer_without_growing() {
    let mut observer = SseObserver::new();
    let big = vec![b'a'; 64 * 1024];
    for _ in 0..40 {
        observer.feed(&big);
    }
    assert!(observer.line.capacity() <= MAX_EVENT_BYTES * 2);
    observer.feed(b"\n\ndata: [DONE]\n\n");
    assert!(!observer.saw_done(), "an overflowed observer stays off");
}

proptest! {
    #[test]
    fn any_split_of_a_stream_gives_the_same_signals(cuts in proptest::collection::btree_set(1usize..STREAM.len(), 0..12)) {
        let bytes = STREAM.as_bytes();
        let mut pieces = Vec::new();
        let mut start = 0;
        for cut in cuts {
            pieces.push(&bytes[start..cut]);
            start = cut;
        }
        pieces.push(&bytes[start..]);
        let (observer, first_token_at) = feed_in_pieces(&pieces);
        prop_assert!(observer.saw_token() && observer.saw_finish() && observer.saw_done());
        let token_end = STREAM.find("Hel").unwrap();
        let consumed_before: usize = pieces[..first_token_at].iter().map(|piece| piece.len()).sum();
        prop_assert!(consumed_before <= token_end + 60, "token signalled in the piece that completes its event");
    }
}
