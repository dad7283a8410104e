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
fn a_routing_key_is_read_as_the_upstream_reads_it_escaped_or_not_and_only_once() {
    let escaped = br#"{"mod\u0065l":"gpt-4.1","\u0073tream":true}"#;
    let meta = parse_meta(escaped).unwrap();
    assert_eq!((meta.model.as_deref(), meta.stream), (Some("gpt-4.1"), true));
    for twice in [&br#"{"model":"a","messages":[],"model":"b"}"#[..], br#"{"model":"a","mod\u0065l":"b"}"#] {
        let Err(GatewayError::BadJson(message)) = parse_meta(twice) else { panic!("read a model given twice") };
        assert!(message.contains("duplicate field `model`"), "{message}");
    }
    assert!(matches!(parse_meta(br#"{"stream":"yes"}"#), Err(GatewayError::InvalidField { param: "stream", .. })));
}

#[test]
fn the_top_level_must_be_one_well_delimited_object() {
    for (body, why) in [
        (&br#"{"model":"gpt-4.1","messages":[{"content":"hi"}]"#[..], "never closed"),
        (br#"{"model":"gpt-4.1","messages":[{"content":"hi}]}"#, "a string never closed"),
        (br#"{"model":"gpt-4.1",}"#, "a trailing comma"),
        (br#"{"model":"gpt-4.1"} {"model":"other"}"#, "a second value after it"),
        (br#"{"model" "gpt-4.1"}"#, "a member without its colon"),
    ] {
        assert!(matches!(parse_meta(body), Err(GatewayError::BadJson(_))), "{why}: accepted");
    }
}

#[test]
fn what_lies_inside_the_values_the_gateway_does_not_read_is_left_to_the_upstream() {
    // Not UTF-8, a bad escape, a number JSON does not allow, a raw newline: each inside
    // the messages, which the gateway passes over; the upstream's parser judges them.
    for body in [
        &b"{\"model\": \"gpt-4.1\", \"messages\": [{\"content\": \"\xff\"}]}"[..],
        br#"{"model":"gpt-4.1","messages":[{"content":"\x"}]}"#,
        br#"{"model":"gpt-4.1","messages":[{"n":01}]}"#,
        b"{\"model\":\"gpt-4.1\",\"messages\":[{\"content\":\"a\nb\"}]}",
    ] {
        let meta = parse_meta(body).unwrap_or_else(|error| panic!("{error:?}: {}", String::from_utf8_lossy(body)));
        assert_eq!(meta.model.as_deref(), Some("gpt-4.1"));
    }
    // A routing field's own value is read whole, and checked.
    assert!(matches!(parse_meta(b"{\"model\":\"\xff\"}"), Err(GatewayError::InvalidField { param: "model", .. })));
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
    //! The request-meta parser against whatever a client sends, and against serde's
    //! reading of the same routing fields (the gateway's reading before it read only the
    //! top level, kept here as the reference).

    use proptest::prelude::*;
    use serde::Deserialize;
    use serde_json::value::RawValue;
    use serde_json::{Value, json};

    use super::*;

    /// A member's raw value when the key is there, `null` included.
    #[derive(Default)]
    struct Present<'a>(Option<&'a RawValue>);

    impl<'de: 'a, 'a> Deserialize<'de> for Present<'a> {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            <&'a RawValue>::deserialize(deserializer).map(|raw| Present(Some(raw)))
        }
    }

    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(borrow, default)]
        model: Option<&'a RawValue>,
        #[serde(borrow, default)]
        user: Option<&'a RawValue>,
        #[serde(default)]
        stream: Option<bool>,
        #[serde(borrow, default)]
        stream_options: Present<'a>,
        #[serde(borrow, default)]
        metadata: Option<&'a RawValue>,
    }

    /// The routing fields as serde reads the whole body: `None` when it is no JSON object
    /// at all; `Some(Err)` when it is one whose routing fields are refused.
    fn serde_reading(body: &[u8]) -> Option<Result<RequestMeta, ()>> {
        serde_json::from_slice::<Value>(body).ok().filter(Value::is_object)?;
        let Ok(probe) = serde_json::from_slice::<Probe<'_>>(body) else { return Some(Err(())) };
        let span = |raw: &RawValue| {
            let start = raw.get().as_ptr() as usize - body.as_ptr() as usize;
            (start, start + raw.get().len())
        };
        let mut meta = RequestMeta { stream: probe.stream.unwrap_or(false), ..RequestMeta::default() };
        if let Some(raw) = probe.model {
            let Ok(model) = serde_json::from_str::<String>(raw.get()) else { return Some(Err(())) };
            meta.model = Some(model);
            meta.model_span = Some(span(raw));
        }
        meta.user = match (probe.user, probe.metadata) {
            (Some(raw), _) => serde_json::from_str::<String>(raw.get()).ok(),
            (None, Some(raw)) => serde_json::from_str::<Metadata>(raw.get()).ok().and_then(|metadata| metadata.user_id),
            (None, None) => None,
        };
        meta.stream_options_span = probe.stream_options.0.map(span);
        Some(Ok(meta))
    }

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

    /// A key: a routing one or another, as serde writes it or with its first letter
    /// escaped, as a client may.
    fn any_key() -> impl Strategy<Value = String> {
        let name = prop_oneof![
            Just("model".to_owned()),
            Just("user".to_owned()),
            Just("stream".to_owned()),
            Just("stream_options".to_owned()),
            Just("metadata".to_owned()),
            "[a-z_]{1,8}",
        ];
        (name, any::<bool>()).prop_map(|(name, escaped)| {
            let quoted = serde_json::to_string(&name).unwrap_or_default();
            if escaped { format!("\"\\u{:04x}{}", u32::from(name.as_bytes()[0]), &quoted[2..]) } else { quoted }
        })
    }

    /// An object written member by member (keys may repeat), with whitespace around each
    /// token now and then.
    fn any_object() -> impl Strategy<Value = Vec<u8>> {
        let value = prop_oneof![
            any_json(),
            "\\PC{0,16}".prop_map(Value::String),
            Just(json!({"user_id": "u-1"})),
            Just(json!({"include_usage": false})),
        ];
        (proptest::collection::vec((any_key(), value, any::<bool>()), 0..6)).prop_map(|members| {
            let members: Vec<String> = members
                .into_iter()
                .map(|(key, value, spaced)| {
                    let space = if spaced { " " } else { "" };
                    format!("{space}{key}{space}:{space}{value}{space}")
                })
                .collect();
            format!("{{{}}}", members.join(",")).into_bytes()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Arbitrary bytes: an answer, never a panic; a success only for what starts as an
        /// object; and where serde reads the bytes as an object, the same verdict and the
        /// same routing fields.
        #[test]
        fn arbitrary_bytes_are_read_as_serde_reads_them_or_refused_never_a_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let read = parse_meta(&bytes);
            if read.is_ok() {
                prop_assert_eq!(bytes.trim_ascii_start().first(), Some(&b'{'));
            }
            if let Some(reference) = serde_reading(&bytes) {
                prop_assert_eq!(read.ok(), reference.ok(), "{:?}", String::from_utf8_lossy(&bytes));
            }
        }

        /// Any object, routing keys escaped or repeated, values of any type: the verdict
        /// and the routing fields (their spans included) are serde's.
        #[test]
        fn an_object_is_read_as_serde_reads_it(body in any_object()) {
            let reference = serde_reading(&body).expect("the generator writes JSON objects");
            prop_assert_eq!(parse_meta(&body).ok(), reference.ok(), "{}", String::from_utf8_lossy(&body));
        }

        /// An object with one byte changed: where serde still reads an object, the same
        /// verdict and fields; where it does not, an answer all the same.
        #[test]
        fn a_corrupted_object_is_read_as_serde_reads_it_or_left_to_the_upstream(
            body in any_object(),
            at in any::<prop::sample::Index>(),
            byte in prop_oneof![Just(b'"'), Just(b'\\'), Just(b'{'), Just(b'}'), Just(b'['), Just(b']'), Just(b','), Just(b':'), any::<u8>()],
        ) {
            let mut body = body;
            let at = at.index(body.len());
            body[at] = byte;
            let read = parse_meta(&body);
            if let Some(reference) = serde_reading(&body) {
                prop_assert_eq!(read.ok(), reference.ok(), "{}", String::from_utf8_lossy(&body));
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
