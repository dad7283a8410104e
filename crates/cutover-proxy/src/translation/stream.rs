//! An upstream event stream translated as it comes: framed into whole events (the same
//! framer, bound and checks as a stream passed through), each translated into the
//! client's API; at its end, a finished answer left without its end marker is ended.
//! A stream the upstream cuts short ends here unended, for the layers above to fail as
//! they fail the upstream's own.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use cutover_net::body::BoxError;
use cutover_net::pool::UpstreamBody;
use cutover_translate::{BadStream, chat_over_messages, messages_over_chat};
use cutover_wire::sse::SseFramer;
use http_body::{Body, Frame};

use super::Translation;

/// The event translator of one direction.
pub(super) enum Events {
    MessagesOverChat(messages_over_chat::EventTranslator),
    ChatOverMessages(chat_over_messages::EventTranslator),
}

impl Events {
    /// The translator of `translation`'s direction; `include_usage`: the client's stream
    /// carries OpenAI's usage chunk.
    pub(super) fn new(translation: Translation, include_usage: bool) -> Events {
        match translation {
            Translation::MessagesOverChat => {
                Events::MessagesOverChat(messages_over_chat::EventTranslator::new(include_usage))
            }
            Translation::ChatOverMessages => {
                Events::ChatOverMessages(chat_over_messages::EventTranslator::new(include_usage))
            }
        }
    }

    fn push(&mut self, events: &[u8], out: &mut Vec<u8>) -> Result<(), BadStream> {
        match self {
            Events::MessagesOverChat(translator) => translator.push(events, out),
            Events::ChatOverMessages(translator) => translator.push(events, out),
        }
    }

    /// The upstream's stream ended: a finished answer left without its end marker is ended.
    fn end(&mut self, out: &mut Vec<u8>) {
        match self {
            Events::MessagesOverChat(translator) => translator.end(out),
            Events::ChatOverMessages(translator) => translator.end(out),
        }
    }
}

/// An upstream event stream, framed into whole events and translated event by event.
pub struct TranslatedStream<B = UpstreamBody> {
    inner: B,
    framer: SseFramer,
    events: Events,
    pub(super) done: bool,
}

impl<B> TranslatedStream<B> {
    pub(super) fn new(inner: B, events: Events) -> TranslatedStream<B> {
        TranslatedStream { inner, framer: SseFramer::new(), events, done: false }
    }

    /// The client's events for `upstream`'s whole events (the last ones, at `end`), if any.
    fn translate(&mut self, upstream: &[u8], end: bool) -> Result<Option<Bytes>, BoxError> {
        let mut out = Vec::new();
        self.events.push(upstream, &mut out)?;
        if end {
            self.events.end(&mut out);
        }
        Ok((!out.is_empty()).then(|| Bytes::from(out)))
    }
}

impl<B> Body for TranslatedStream<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        while !this.done {
            let whole = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => this.framer.push(data)?,
                    Err(_trailers) => continue,
                },
                Some(Err(error)) => return Poll::Ready(Some(Err(error.into()))),
                None => {
                    this.done = true;
                    this.framer.finish()?.unwrap_or_default()
                }
            };
            if let Some(translated) = this.translate(&whole, this.done)? {
                return Poll::Ready(Some(Ok(Frame::data(translated))));
            }
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests;
