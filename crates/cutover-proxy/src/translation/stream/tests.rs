//! The translated stream driven with made-up upstream frames: Messages events out of a
//! chat stream however the network splits it, ended when the answer finished and left
//! unended when it was cut.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;

use super::*;

/// An upstream body of set frames: data, or a break.
struct Frames(VecDeque<Result<Bytes, std::io::Error>>);

impl Body for Frames {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.pop_front().map(|frame| frame.map(Frame::data)))
    }
}

fn upstream(chunks: &[&str]) -> TranslatedStream<Frames> {
    let frames = chunks.iter().map(|chunk| Ok(Bytes::copy_from_slice(chunk.as_bytes()))).collect();
    TranslatedStream::new(Frames(frames), Events::new(Translation::MessagesOverChat, true))
}

const FIRST: &str = r#"data: {"id":"chatcmpl-1","model":"gpt-4.1","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}

"#;
const SECOND: &str = r#"data: {"id":"chatcmpl-1","model":"gpt-4.1","choices":[{"index":0,"delta":{"content":"lo"}}]}

"#;
const FINISH: &str = r#"data: {"id":"chatcmpl-1","model":"gpt-4.1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}

"#;
const USAGE: &str = r#"data: {"id":"chatcmpl-1","model":"gpt-4.1","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12}}

"#;
const DONE: &str = "data: [DONE]\n\n";

/// What the client reads, whole, and whether the body failed.
async fn read(mut stream: TranslatedStream<Frames>) -> (String, Option<BoxError>) {
    let mut text = String::new();
    while let Some(frame) = stream.frame().await {
        match frame {
            Ok(frame) => text.push_str(std::str::from_utf8(&frame.into_data().unwrap_or_default()).unwrap()),
            Err(error) => return (text, Some(error)),
        }
    }
    (text, None)
}

/// The names of the client's events, in order.
fn names(text: &str) -> Vec<&str> {
    text.lines().filter_map(|line| line.strip_prefix("event: ")).collect()
}

#[tokio::test]
async fn a_chat_stream_split_anywhere_reads_as_one_messages_stream() {
    let whole = [FIRST, SECOND, FINISH, USAGE, DONE].concat();
    let (expected, failed) = read(upstream(&[&whole])).await;
    assert!(failed.is_none());
    assert_eq!(
        names(&expected),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    for at in [1, 7, FIRST.len() - 1, FIRST.len() + 3, whole.len() - 2] {
        let (head, tail) = whole.split_at(at);
        let (text, failed) = read(upstream(&[head, tail])).await;
        assert!(failed.is_none(), "split at {at}");
        assert_eq!(text, expected, "split at {at}");
    }
}

#[tokio::test]
async fn a_finished_answer_whose_upstream_left_out_done_is_ended() {
    let (text, failed) = read(upstream(&[FIRST, FINISH, USAGE])).await;
    assert!(failed.is_none());
    assert_eq!(names(&text).last(), Some(&"message_stop"), "{text}");
    assert!(text.contains(r#""output_tokens":2"#), "the usage that came is told: {text}");
}

#[tokio::test]
async fn a_stream_cut_before_its_finish_is_left_unended_for_the_layers_above_to_fail() {
    let (text, failed) = read(upstream(&[FIRST, SECOND])).await;
    assert!(failed.is_none(), "the cut is not the translation's to tell");
    assert!(!text.contains("message_delta") && !text.contains("message_stop"), "{text}");
}

#[tokio::test]
async fn an_event_that_is_not_its_apis_fails_the_body() {
    let (_, failed) = read(upstream(&[FIRST, "data: {\"choices\":[{\"index\":1}]}\n\n"])).await;
    assert!(failed.is_some(), "a second choice has no place in a Messages stream");
    let (_, failed) = read(upstream(&[FIRST, "data: {not json\n\n"])).await;
    assert!(failed.is_some(), "the framer refuses data that is not JSON");
}

#[tokio::test]
async fn a_broken_upstream_body_fails_the_body() {
    let frames = VecDeque::from([Ok(Bytes::from_static(FIRST.as_bytes())), Err(std::io::Error::other("reset"))]);
    let (text, failed) =
        read(TranslatedStream::new(Frames(frames), Events::new(Translation::MessagesOverChat, true))).await;
    assert!(text.contains("message_start"));
    assert!(failed.unwrap().to_string().contains("reset"));
}
