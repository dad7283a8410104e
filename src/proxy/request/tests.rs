//! What the gateway reads of a request: the body within its limits and clocks, the routing fields.

use super::*;

#[test]
fn finds_model_user_and_stream_without_touching_the_rest() {
    let body = Bytes::from_static(
        br#"{"messages":[{"role":"user","content":"hi"}], "model" : "gpt-4.1", "user":"u-1","stream":true}"#,
    );
    let meta = parse_meta(&body).unwrap();
    assert_eq!(meta.model.as_deref(), Some("gpt-4.1"));
    assert_eq!(meta.user.as_deref(), Some("u-1"));
    assert!(meta.stream);
    let renamed = with_model(&body, &meta, Some("relay/gpt-4.1"));
    assert_eq!(
        &renamed[..],
        br#"{"messages":[{"role":"user","content":"hi"}], "model" : "relay/gpt-4.1", "user":"u-1","stream":true}"#
    );
}

#[test]
fn escaped_model_names_are_decoded_and_replaced_whole() {
    let body = Bytes::from_static(br#"{"model":"gpt-\u0034.1"}"#);
    let meta = parse_meta(&body).unwrap();
    assert_eq!(meta.model.as_deref(), Some("gpt-4.1"));
    assert_eq!(&with_model(&body, &meta, Some("x\"y"))[..], br#"{"model":"x\"y"}"#);
}

#[test]
fn bad_json_and_non_string_models_are_client_errors() {
    assert!(matches!(parse_meta(b"{\"model\": "), Err(GatewayError::BadJson(_))));
    assert!(matches!(parse_meta(b"[1,2]"), Err(GatewayError::BadJson(_))));
    assert!(matches!(parse_meta(br#"{"model": 4}"#), Err(GatewayError::InvalidField { param: "model", .. })));
}

/// A client body: `frames`, then silence (a client that stopped sending).
struct Trickle(std::collections::VecDeque<Bytes>);

impl Body for Trickle {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        match self.0.pop_front() {
            Some(data) => std::task::Poll::Ready(Some(Ok(http_body::Frame::data(data)))),
            None => std::task::Poll::Pending,
        }
    }
}

fn declaring(length: usize) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(http::header::CONTENT_LENGTH, length.into());
    headers
}

const TIMEOUTS: BodyTimeouts = BodyTimeouts { idle: Duration::from_secs(5), total: Duration::from_secs(20) };

#[tokio::test(start_paused = true)]
async fn a_body_that_falls_silent_is_a_timeout_after_the_idle_time() {
    let started = Instant::now();
    let body = Trickle([Bytes::from_static(b"{")].into());
    let read = read_body(body, &declaring(32 << 20), 32 << 20, TIMEOUTS).await;
    assert!(matches!(read, Err(GatewayError::BodyTimeout)), "{read:?}");
    assert_eq!(started.elapsed(), TIMEOUTS.idle);
    assert_eq!(GatewayError::BodyTimeout.status(), http::StatusCode::REQUEST_TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn a_body_that_trickles_is_a_timeout_after_the_total_time() {
    /// One byte every `every`, for ever.
    struct Drip(std::pin::Pin<Box<tokio::time::Sleep>>);
    impl Body for Drip {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            std::task::ready!(self.0.as_mut().poll(cx));
            let next = Instant::now() + Duration::from_secs(1);
            self.0.as_mut().reset(next);
            std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(b" ")))))
        }
    }
    use std::future::Future;
    let started = Instant::now();
    let drip = Drip(Box::pin(tokio::time::sleep(Duration::from_secs(1))));
    let read = read_body(drip, &HeaderMap::new(), 1 << 20, TIMEOUTS).await;
    assert!(matches!(read, Err(GatewayError::BodyTimeout)), "{read:?}");
    assert_eq!(started.elapsed(), TIMEOUTS.total);
}

#[tokio::test]
async fn a_body_in_one_frame_is_returned_as_it_came() {
    let data = Bytes::from_static(br#"{"model":"gpt-4.1"}"#);
    let body = http_body_util::Full::new(data.clone());
    let read = read_body(body, &declaring(data.len()), 1 << 20, TIMEOUTS).await.unwrap();
    assert_eq!(read.as_ptr(), data.as_ptr());
}

#[test]
fn a_body_without_alias_is_shared_not_copied() {
    let body = Bytes::from_static(br#"{"model":"gpt-4.1"}"#);
    let meta = parse_meta(&body).unwrap();
    assert_eq!(with_model(&body, &meta, None).as_ptr(), body.as_ptr());
}
