//! Translation at an arm's edge, for a route whose arm speaks the other API than the
//! client calls (`cutover_translate` holds the mappings): the request is translated once
//! per arm, before the first attempt, and the arm's answer on its way back, before
//! anything else reads it — a whole answer (or error) read whole and translated, an event
//! stream event by event (`TranslatedStream`). Everything above an arm's edge (holding,
//! failures, fallback, metering, the shadow tap) sees the client's API only.

mod stream;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use cutover_config::{Config, Route, Upstream};
use cutover_model::{Api, Role};
use cutover_net::body::BoxError;
use cutover_net::pool::UpstreamBody;
use cutover_translate::{Untranslatable, chat_over_messages, messages_over_chat};
use http::{HeaderValue, Response, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full, Limited};

use super::error::TransportError;
use super::expected::is_event_stream;
use super::request::{RequestMeta, for_upstream};
use stream::{Events, TranslatedStream};

/// A translated whole answer is read up to this size; a larger one is no answer.
const MAX_TRANSLATED_ANSWER_BYTES: usize = 32 << 20;

/// Which way an arm's traffic is translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Translation {
    /// An Anthropic Messages client, an upstream of OpenAI's chat completions.
    MessagesOverChat,
    /// An OpenAI chat completions client, an Anthropic Messages upstream.
    ChatOverMessages,
}

impl Translation {
    /// How a request to `path` (the client's, in `called`'s API) reaches an upstream that
    /// speaks `speaks`: as it is (`None`), translated, or not at all (`Err`: only the two
    /// endpoints that mean the same in both APIs translate).
    fn between(called: Api, speaks: Api, path: &str) -> Result<Option<Translation>, NotTranslated> {
        match (called, speaks, path) {
            _ if called == speaks => Ok(None),
            (Api::Anthropic, Api::OpenAi, "/v1/messages") => Ok(Some(Translation::MessagesOverChat)),
            (Api::OpenAi, Api::Anthropic, "/v1/chat/completions") => Ok(Some(Translation::ChatOverMessages)),
            _ => Err(NotTranslated),
        }
    }

    /// The request translated for the upstream; `body` carries the model the upstream gets.
    pub fn request(self, body: &[u8]) -> Result<ArmTranslation, Untranslatable> {
        let request = match self {
            Translation::MessagesOverChat => messages_over_chat::request(body)?,
            Translation::ChatOverMessages => chat_over_messages::request(body)?,
        };
        Ok(ArmTranslation { translation: self, body: Bytes::from(request.body), include_usage: request.include_usage })
    }

    /// The path after the upstream's base path.
    fn upstream_path(self) -> &'static str {
        match self {
            Translation::MessagesOverChat => messages_over_chat::UPSTREAM_PATH,
            Translation::ChatOverMessages => chat_over_messages::UPSTREAM_PATH,
        }
    }
}

/// An endpoint the gateway does not translate between the two APIs.
struct NotTranslated;

/// How the request reaches one arm's upstream.
#[derive(Debug, Clone)]
pub enum ArmRequest {
    /// In the client's API: the same bytes, with the model the upstream is given.
    AsIs,
    Translated(ArmTranslation),
    /// The arm cannot be given the request.
    Refused(Unservable),
}

/// Why an arm cannot be given a request.
#[derive(Debug, Clone)]
pub enum Unservable {
    /// The endpoint is not one the gateway translates to the arm's API.
    Endpoint,
    /// The request carries what the arm's API cannot.
    Request(Arc<Untranslatable>),
}

/// How the request reaches each of the route's arms.
#[derive(Debug, Clone)]
pub struct ArmRequests([ArmRequest; 2]);

impl ArmRequests {
    /// The request for each arm, translated where the arm's upstream speaks the other API
    /// than `called` (the client's); `body` is the client's, usage asked for already.
    pub fn new(
        config: &Config,
        route: &Route,
        called: Api,
        path: &str,
        body: &Bytes,
        meta: &RequestMeta,
    ) -> ArmRequests {
        let primary = ArmRequest::new(&config.upstreams[route.primary], called, path, body, meta);
        let candidate = match route.candidate {
            Some(index) => ArmRequest::new(&config.upstreams[index], called, path, body, meta),
            // As `Route::upstream_of`: without a candidate every role is the primary's.
            None => primary.clone(),
        };
        ArmRequests([primary, candidate])
    }

    pub fn get(&self, role: Role) -> &ArmRequest {
        &self.0[usize::from(role != Role::Primary)]
    }

    /// The arm that serves a request the split gave to `chosen`: that one, unless it cannot
    /// be given the request, then the other if it can; why not when neither can.
    pub fn servable(&self, chosen: Role) -> Result<Role, Unservable> {
        let ArmRequest::Refused(why) = self.get(chosen) else { return Ok(chosen) };
        let other = if chosen == Role::Primary { Role::Candidate } else { Role::Primary };
        match self.get(other) {
            ArmRequest::Refused(_) => Err(why.clone()),
            ArmRequest::AsIs | ArmRequest::Translated(_) => Ok(other),
        }
    }
}

impl ArmRequest {
    fn new(upstream: &Upstream, called: Api, path: &str, body: &Bytes, meta: &RequestMeta) -> ArmRequest {
        let translation = match Translation::between(called, upstream.api, path) {
            Ok(None) => return ArmRequest::AsIs,
            Ok(Some(translation)) => translation,
            Err(NotTranslated) => return ArmRequest::Refused(Unservable::Endpoint),
        };
        match translation.request(&for_upstream(body, meta, upstream)) {
            Ok(translated) => ArmRequest::Translated(translated),
            Err(untranslatable) => ArmRequest::Refused(Unservable::Request(Arc::new(untranslatable))),
        }
    }

    pub fn is_refused(&self) -> bool {
        matches!(self, ArmRequest::Refused(_))
    }
}

/// One arm's request, translated for its upstream.
#[derive(Debug, Clone)]
pub struct ArmTranslation {
    translation: Translation,
    /// The body the upstream gets (its model already the upstream's).
    pub body: Bytes,
    /// Whether the client's stream carries OpenAI's usage chunk.
    include_usage: bool,
}

impl ArmTranslation {
    pub fn upstream_path(&self) -> &'static str {
        self.translation.upstream_path()
    }

    /// The upstream's answer in the client's API: an event stream translated as it comes,
    /// anything else read whole (within `total`) and translated.
    pub async fn answer(
        &self,
        response: Response<UpstreamBody>,
        total: Duration,
    ) -> Result<Response<ArmBody>, TransportError> {
        let (mut parts, body) = response.into_parts();
        if is_event_stream(&parts.headers) && parts.status.is_success() {
            let stream = TranslatedStream::new(body, Events::new(self.translation, self.include_usage));
            return Ok(Response::from_parts(parts, ArmBody::Translated(Box::new(stream))));
        }
        let whole = read_whole(body, total).await?;
        let answer = match self.translation {
            Translation::MessagesOverChat => messages_over_chat::answer(parts.status.as_u16(), &whole),
            Translation::ChatOverMessages => chat_over_messages::answer(parts.status.as_u16(), &whole),
        };
        parts.status = http::StatusCode::from_u16(answer.status).unwrap_or(http::StatusCode::BAD_GATEWAY);
        parts.headers.remove(header::CONTENT_ENCODING);
        parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(answer.body.len()));
        Ok(Response::from_parts(parts, ArmBody::Whole(Full::new(Bytes::from(answer.body)))))
    }
}

/// An upstream answer body read whole, within `total`.
async fn read_whole(body: UpstreamBody, total: Duration) -> Result<Bytes, TransportError> {
    let limited = Limited::new(body, MAX_TRANSLATED_ANSWER_BYTES);
    match tokio::time::timeout(total, limited.collect()).await {
        Err(_) => Err(TransportError::AnswerTimeout(total)),
        Ok(Err(source)) => Err(TransportError::Broken { source }),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// The body of an arm's answer: the upstream's own, or translated.
pub enum ArmBody {
    Upstream(UpstreamBody),
    /// A whole answer, translated.
    Whole(Full<Bytes>),
    /// An event stream, translated as it comes.
    Translated(Box<TranslatedStream>),
}

impl Body for ArmBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ArmBody::Upstream(body) => Pin::new(body).poll_frame(cx).map_err(BoxError::from),
            ArmBody::Whole(body) => Pin::new(body).poll_frame(cx).map_err(|never| match never {}),
            ArmBody::Translated(body) => Pin::new(&mut **body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ArmBody::Upstream(body) => body.is_end_stream(),
            ArmBody::Whole(body) => body.is_end_stream(),
            ArmBody::Translated(body) => body.done,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ArmBody::Upstream(body) => body.size_hint(),
            ArmBody::Whole(body) => body.size_hint(),
            ArmBody::Translated(_) => SizeHint::default(),
        }
    }
}
