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
fn a_messages_requests_user_is_its_metadata_user_id_and_an_openai_metadata_map_is_no_user() {
    let anthropic = br#"{"model":"claude-sonnet-4-5","max_tokens":64,"metadata":{"user_id":"u-7"},"messages":[]}"#;
    assert_eq!(parse_meta(anthropic).unwrap().user.as_deref(), Some("u-7"));
    let both = br#"{"model":"m","user":"u-1","metadata":{"user_id":"u-7"}}"#;
    assert_eq!(parse_meta(both).unwrap().user.as_deref(), Some("u-1"));
    for openai in [&br#"{"model":"m","metadata":{"team":"search"}}"#[..], br#"{"model":"m","metadata":"x"}"#] {
        assert_eq!(parse_meta(openai).unwrap().user, None);
    }
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

#[test]
fn a_body_that_is_not_utf8_is_refused_even_where_serde_would_skip_it() {
    // The invalid bytes sit in a string the routing fields do not need.
    let body = b"{\"model\": \"gpt-4.1\", \"messages\": [{\"content\": \"\xff\"}]}";
    let Err(GatewayError::BadJson(message)) = parse_meta(body) else { panic!("accepted a body that is not UTF-8") };
    assert!(message.contains("not UTF-8") && message.contains("offset 47"), "{message}");
}

#[test]
fn only_endpoints_that_take_a_json_object_refuse_an_empty_body() {
    assert!(takes_json_body(&http::Method::POST, "/v1/chat/completions"));
    assert!(takes_json_body(&http::Method::POST, "/v1/embeddings"));
    assert!(!takes_json_body(&http::Method::GET, "/v1/models"));
    assert!(!takes_json_body(&http::Method::POST, "/v1/files"));
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

mod fuzz {
    //! The request-meta parser against whatever a client sends.

    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    /// Any JSON value, a few levels deep, with strings that need escaping.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "\\PC{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Arbitrary bytes: an answer, never a panic; a success only for a JSON object.
        #[test]
        fn arbitrary_bytes_are_parsed_or_refused_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if parse_meta(&bytes).is_ok() {
                let object = serde_json::from_slice::<Value>(&bytes).ok().filter(Value::is_object);
                prop_assert!(object.is_some(), "accepted what is not a JSON object: {:?}", String::from_utf8_lossy(&bytes));
            }
        }

        /// Any object with a string `model`: the model and user are read as JSON reads them,
        /// and renaming the model changes that field only, whatever the escapes around it.
        #[test]
        fn renaming_the_model_changes_that_field_only(
            mut fields in proptest::collection::btree_map("[a-z_]{1,8}", any_json(), 0..5),
            model in "\\PC{0,16}",
            user in proptest::option::of("\\PC{0,8}"),
            alias in "\\PC{0,16}",
        ) {
            fields.remove("model");
            fields.remove("user");
            fields.remove("stream");
            let mut object: serde_json::Map<String, Value> = fields.into_iter().collect();
            object.insert("model".to_owned(), Value::String(model.clone()));
            if let Some(user) = &user {
                object.insert("user".to_owned(), Value::String(user.clone()));
            }
            let body = Bytes::from(serde_json::to_vec(&Value::Object(object.clone())).unwrap());
            let meta = parse_meta(&body).unwrap();
            prop_assert_eq!(meta.model.as_deref(), Some(model.as_str()));
            prop_assert_eq!(meta.user.as_deref(), user.as_deref());
            let renamed: Value = serde_json::from_slice(&with_model(&body, &meta, Some(&alias))).unwrap();
            object.insert("model".to_owned(), Value::String(alias));
            prop_assert_eq!(renamed, Value::Object(object));
        }
    }
}
