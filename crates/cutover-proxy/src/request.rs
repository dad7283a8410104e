//! What the gateway reads of a client request: the body (within the size limit) and,
//! for JSON endpoints, the few fields it routes on — `model`, `user` (Anthropic's
//! `metadata.user_id`), `stream`, `stream_options` — read from the top level only,
//! without building a JSON tree: the values between them (the messages, most of a body)
//! are passed over at about `memchr`'s cost and left to the upstream to judge. The model
//! is renamed by splicing bytes, so the rest of the body reaches the upstream exactly as
//! the client wrote it.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cutover_config::{BodyTimeouts, Upstream};
use cutover_net::body::BoxError;
use http::HeaderMap;
use http_body::Body;
use http_body_util::BodyExt;
use serde::Deserialize;
use tokio::time::Instant;

use super::error::GatewayError;

/// The routing-relevant fields of a JSON request body.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RequestMeta {
    pub model: Option<String>,
    pub user: Option<String>,
    pub stream: bool,
    /// Byte range of the `model` value (quotes included) inside the body.
    model_span: Option<(usize, usize)>,
    /// Byte range of the `stream_options` value, when the key is there (`null` included).
    stream_options_span: Option<(usize, usize)>,
    /// The endpoint, when its answers report usage (set by `ask_for_usage`).
    pub endpoint: Option<cutover_wire::usage::Endpoint>,
    /// The gateway asked for streamed usage on the client's behalf: strip it again.
    pub usage_injected: bool,
}

/// Anthropic's `metadata`.
#[derive(Deserialize)]
struct Metadata {
    user_id: Option<String>,
}

/// What a body may be given up front, whatever it declares: the buffer grows with the
/// bytes that arrive, so a peer that declares 32 MB and sends one byte costs 64 KiB.
const INITIAL_BODY_CAPACITY: usize = 64 << 10;

/// Reads the whole request body, refusing more than `limit` bytes, and a body that falls
/// silent for `timeouts.idle` or is not complete within `timeouts.total`.
pub async fn read_body<B>(
    body: B,
    headers: &HeaderMap,
    limit: usize,
    timeouts: BodyTimeouts,
) -> Result<Bytes, GatewayError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(body);
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        discard_body(body, headers).await;
        return Err(GatewayError::BodyTooLarge { limit });
    }
    let capacity = declared.map_or(0, |length| (length as usize).min(INITIAL_BODY_CAPACITY));
    let mut collected = BytesMut::with_capacity(capacity);
    let total = Instant::now() + timeouts.total;
    loop {
        let deadline = total.min(Instant::now() + timeouts.idle);
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(_) => return Err(GatewayError::BodyTimeout),
        };
        let frame = frame.map_err(|error| GatewayError::BodyRead(error.into().to_string()))?;
        let Ok(data) = frame.into_data() else { continue };
        if collected.len() + data.len() > limit {
            // The upload has begun (after a `100 Continue`, if it asked): read what is left.
            drain_body(body).await;
            return Err(GatewayError::BodyTooLarge { limit });
        }
        // A body in one frame, the usual case, is kept as it came: no copy.
        if collected.is_empty() && body.is_end_stream() {
            return Ok(data);
        }
        collected.extend_from_slice(&data);
    }
    Ok(collected.freeze())
}

/// At most this much of a refused request's body is read and dropped…
const DISCARD_BYTES: usize = 64 << 20;
/// …for at most this long.
const DISCARD_TIME: Duration = Duration::from_secs(5);

/// Reads and drops what is left of a body the gateway refuses, within bounds, before it
/// answers. Closing with unread data makes the kernel reset the connection, and a client
/// still uploading would get a broken pipe instead of the 401 or 413 (RFC 9112 §9.6).
/// A client that sent `Expect: 100-continue` has sent nothing yet: reading would make
/// hyper answer `100 Continue` and invite the very upload that is refused, so the
/// refusal goes out at once instead (RFC 9110 §10.1.1), and hyper closes the connection.
pub async fn discard_body<B: Body<Data = Bytes>>(body: B, headers: &HeaderMap) {
    if !awaits_continue(headers) {
        drain_body(body).await;
    }
}

async fn drain_body<B: Body<Data = Bytes>>(body: B) {
    let mut body = std::pin::pin!(body);
    let deadline = tokio::time::Instant::now() + DISCARD_TIME;
    let mut seen = 0;
    while seen <= DISCARD_BYTES {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => seen += frame.data_ref().map_or(0, Bytes::len),
            _ => return,
        }
    }
}

fn awaits_continue(headers: &HeaderMap) -> bool {
    headers.get(http::header::EXPECT).is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Whether the request's body is JSON the gateway must understand: declared JSON, or any
/// body that looks like a JSON object whatever its content type (`curl -d` sends JSON as
/// a form). Multipart uploads (audio, files) are forwarded untouched.
pub fn is_json_request(method: &http::Method, headers: &HeaderMap, body: &[u8]) -> bool {
    if body.is_empty() || method == http::Method::GET {
        return false;
    }
    let content_type = headers.get(http::header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("");
    if content_type.starts_with("multipart/") {
        return false;
    }
    content_type.starts_with("application/json") || body.trim_ascii_start().first() == Some(&b'{')
}

/// Whether `method path` is an endpoint whose request body is a JSON object: an empty
/// body there is refused rather than forwarded for the upstream to guess at.
pub fn takes_json_body(method: &http::Method, path: &str) -> bool {
    const JSON_ENDPOINTS: [&str; 9] = [
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/moderations",
        "/v1/responses",
        "/v1/images/generations",
        "/v1/audio/speech",
        "/v1/messages",
        "/v1/messages/count_tokens",
    ];
    method == http::Method::POST && JSON_ENDPOINTS.contains(&path)
}

/// Reads the routing fields of a JSON body: its top level only. The body must be one
/// JSON object whose members are well delimited (every string closed, brackets
/// balanced, each key followed by its colon, members separated, nothing after it), with
/// no routing key twice (an escaped key is decoded first, as the upstream will) and each
/// routing field of its type. What lies inside the values the gateway does not read
/// (numbers, literals, escapes, UTF-8, raw control characters, nested keys) is left to
/// the upstream to judge: a conforming parser reads every body accepted here with the
/// same routing fields, or refuses it.
pub fn parse_meta(body: &[u8]) -> Result<RequestMeta, GatewayError> {
    let not_an_object = || GatewayError::BadJson("expected a JSON object".to_owned());
    let mut object = cutover_wire::json::object(body).ok_or_else(not_an_object)?;
    let mut meta = RequestMeta::default();
    let mut seen = Seen::default();
    let (mut model, mut user, mut metadata) = (None, None, None);
    while let Some(key) = object.key() {
        let Some(field) = RoutingField::of_key(key)? else { continue };
        seen.first(field)?;
        let span = object.value_span().ok_or_else(|| malformed(&object))?;
        let value = &body[span.clone()];
        match field {
            RoutingField::Model => model = Some(span).filter(|_| value != b"null"),
            RoutingField::User => user = Some(value).filter(|value| *value != b"null"),
            RoutingField::Metadata => metadata = Some(value),
            RoutingField::Stream => {
                meta.stream = match value {
                    b"true" => true,
                    b"false" | b"null" => false,
                    _ => return Err(invalid("stream", "`stream` must be a boolean")),
                }
            }
            RoutingField::StreamOptions => meta.stream_options_span = Some((span.start, span.end)),
        }
    }
    let end = object.end().ok_or_else(|| malformed(&object))?;
    if !body[end..].trim_ascii().is_empty() {
        return Err(GatewayError::BadJson(format!("unexpected data after the JSON object at offset {end}")));
    }
    if let Some(span) = model {
        let name: String =
            serde_json::from_slice(&body[span.clone()]).map_err(|_| invalid("model", "`model` must be a string"))?;
        meta.model_span = Some((span.start, span.end));
        meta.model = Some(name);
    }
    meta.user = match (user, metadata) {
        (Some(raw), _) => serde_json::from_slice::<String>(raw).ok(),
        (None, Some(raw)) => serde_json::from_slice::<Metadata>(raw).ok().and_then(|metadata| metadata.user_id),
        (None, None) => None,
    };
    Ok(meta)
}

/// The top-level members the gateway reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RoutingField {
    Model,
    User,
    Stream,
    StreamOptions,
    /// Anthropic's Messages API names the end user in `metadata.user_id`; OpenAI's
    /// `metadata` is a map of the client's own, so it is read only when there is no
    /// `user`, and leniently.
    Metadata,
}

impl RoutingField {
    const ALL: [RoutingField; 5] = [Self::Model, Self::User, Self::Stream, Self::StreamOptions, Self::Metadata];

    fn name(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::User => "user",
            Self::Stream => "stream",
            Self::StreamOptions => "stream_options",
            Self::Metadata => "metadata",
        }
    }

    /// The field a key names, as its bytes are written between the quotes; a key with an
    /// escape is decoded first, so that `"mod\u0065l"` is the `model` it is to the
    /// upstream.
    fn of_key(key: &[u8]) -> Result<Option<RoutingField>, GatewayError> {
        if !key.contains(&b'\\') {
            return Ok(Self::ALL.into_iter().find(|field| field.name().as_bytes() == key));
        }
        let mut quoted = Vec::with_capacity(key.len() + 2);
        quoted.push(b'"');
        quoted.extend_from_slice(key);
        quoted.push(b'"');
        let decoded: String = serde_json::from_slice(&quoted)
            .map_err(|error| GatewayError::BadJson(format!("a key of the body is not a JSON string: {error}")))?;
        Ok(Self::ALL.into_iter().find(|field| field.name() == decoded))
    }
}

/// The routing fields met so far: each may appear once, as a strict parser takes it
/// (a lenient one keeps the last, which the gateway would not have routed on).
#[derive(Default)]
struct Seen(u8);

impl Seen {
    fn first(&mut self, field: RoutingField) -> Result<(), GatewayError> {
        let bit = 1 << field as u8;
        if self.0 & bit != 0 {
            return Err(GatewayError::BadJson(format!("duplicate field `{}`", field.name())));
        }
        self.0 |= bit;
        Ok(())
    }
}

fn invalid(param: &'static str, message: &str) -> GatewayError {
    GatewayError::InvalidField { param, message: message.to_owned() }
}

/// The refusal of a body whose top level breaks off, naming where the reader stopped.
fn malformed(object: &cutover_wire::json::Object<'_>) -> GatewayError {
    GatewayError::BadJson(format!(
        "the body is not a well-formed JSON object (it breaks off near offset {})",
        object.position()
    ))
}

/// The body as `upstream` is sent it: its `model` renamed by the upstream's alias map.
pub fn for_upstream(body: &Bytes, meta: &RequestMeta, upstream: &Upstream) -> Bytes {
    let alias = meta.model.as_deref().and_then(|model| upstream.model_aliases.get(model)).map(String::as_str);
    with_model(body, meta, alias)
}

/// The body with its `model` replaced by `alias`, or the body itself when there is nothing
/// to rename (a refcount, no copy).
pub fn with_model(body: &Bytes, meta: &RequestMeta, alias: Option<&str>) -> Bytes {
    let (Some(alias), Some((start, end))) = (alias, meta.model_span) else { return body.clone() };
    let encoded = serde_json::to_string(alias).unwrap_or_default();
    let mut rewritten = BytesMut::with_capacity(body.len() - (end - start) + encoded.len());
    rewritten.extend_from_slice(&body[..start]);
    rewritten.extend_from_slice(encoded.as_bytes());
    rewritten.extend_from_slice(&body[end..]);
    rewritten.freeze()
}

mod usage;

pub use usage::ask_for_usage;

#[cfg(test)]
mod tests;
