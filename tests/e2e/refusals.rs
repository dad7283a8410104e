//! Every answer the gateway writes itself, from the real binary: each refusal (401, 404,
//! 400, 408, 413, 502, 504) has a body that validates against the `ErrorResponse`
//! schema of OpenAI's own OpenAPI document (vendored in `openapi/`, see its README),
//! carries an `x-request-id` in OpenAI's shape, and `x-cutover-route` once a route was
//! chosen; a 502 or 504 names the upstream, never its address; a body over the limit
//! announced with `Expect: 100-continue` is refused before the client uploads it.

use std::net::{SocketAddr, TcpListener};

use http::Method;
use serde_json::{Value, json};

use crate::binary::{Gateway, Mock, Reply, Scratch, raw_exchange, send};
use crate::configs::GatewayToml;

const GATEWAY_KEY: &str = "sk-cutover-refusals-key";
const CHAT: &str = "/v1/chat/completions";

/// `ErrorResponse` of OpenAI's OpenAPI document as a JSON Schema (2020-12): OpenAPI 3.0's
/// `nullable: true` becomes a type union with `"null"`, and the references to
/// `#/components/schemas/` point into `$defs`.
fn error_response_schema() -> Value {
    let text = include_str!("openapi/error_response.json");
    let mut defs: Value = serde_json::from_str(text).unwrap();
    to_json_schema(&mut defs);
    json!({ "$defs": defs, "$ref": "#/$defs/ErrorResponse" })
}

fn to_json_schema(node: &mut Value) {
    match node {
        Value::Object(object) => {
            if object.remove("nullable") == Some(Value::Bool(true)) {
                let kind = object.remove("type").unwrap();
                object.insert("type".to_owned(), json!([kind, "null"]));
            }
            if let Some(Value::String(target)) = object.get_mut("$ref") {
                *target = target.replace("#/components/schemas/", "#/$defs/");
            }
            object.values_mut().for_each(to_json_schema);
        }
        Value::Array(items) => items.iter_mut().for_each(to_json_schema),
        _ => {}
    }
}

/// What is wrong with `body` as an OpenAI `ErrorResponse`; empty when nothing is.
fn schema_violations(validator: &jsonschema::Validator, body: &Value) -> Vec<String> {
    validator.iter_errors(body).map(|error| format!("{}: {error}", error.instance_path())).collect()
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&error_response_schema()).unwrap()
}

#[test]
fn the_converted_schema_accepts_openais_shape_and_rejects_others() {
    let validator = validator();
    let openai = json!({"error": {"message": "m", "type": "invalid_request_error", "param": null, "code": null}});
    assert_eq!(schema_violations(&validator, &openai), Vec::<String>::new());
    let wrong = [
        json!({"message": "m"}),
        json!({"error": {"message": "m", "type": "t"}}),
        json!({"error": {"message": "m", "type": "t", "param": null, "code": 401}}),
        json!({"error": {"message": null, "type": "t", "param": null, "code": null}}),
    ];
    for body in wrong {
        assert!(!schema_violations(&validator, &body).is_empty(), "the schema accepted {body}");
    }
}

/// A port on loopback that nothing listens on: bound once, then released.
fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A gateway with routes to a healthy mock (`gpt-4.1`), to a closed port (`down-model`)
/// and to a mock slower than its first-byte deadline (`slow-model`), gateway keys
/// required, a 1 MB body limit and a 1 s body idle timeout.
struct World {
    gateway: Gateway,
    down: SocketAddr,
    _mocks: [Mock; 2],
    _scratch: Scratch,
}

impl World {
    async fn start() -> World {
        let scratch = Scratch::new("refusals");
        let healthy = Mock::start(&scratch, "healthy", &[], &[]).await;
        let slow = Mock::start(&scratch, "slow", &["--latency", "2000"], &[]).await;
        let down = closed_port();
        let config = GatewayToml::new()
            .server("max_body_mb = 1")
            .server("body_idle_timeout = \"1s\"")
            .gateway_key("refusals", "GATEWAY_KEY")
            .upstream("healthy", &healthy.base_url())
            .upstream("down", &format!("http://{down}/v1"))
            .upstream_line("down", "connect_timeout = \"500ms\"")
            .upstream("slow", &slow.base_url())
            .upstream_line("slow", "first_byte_timeout = \"300ms\"")
            .route("to-down", "down", None)
            .route_line("to-down", "models = [\"down-model\"]")
            .route("to-slow", "slow", None)
            .route_line("to-slow", "models = [\"slow-model\"]")
            .route("default", "healthy", None)
            .route_line("default", "models = [\"gpt-4.1\"]")
            .build();
        let gateway = Gateway::start(&scratch, &config, &[("GATEWAY_KEY", GATEWAY_KEY)]).await;
        World { gateway, down, _mocks: [healthy, slow], _scratch: scratch }
    }

    async fn send(&self, path: &str, key: Option<&str>, body: impl Into<bytes::Bytes>) -> Reply {
        let bearer = key.map(|key| format!("Bearer {key}"));
        let headers: Vec<(&str, &str)> = bearer.iter().map(|value| ("authorization", value.as_str())).collect();
        send(Method::POST, &self.gateway.url(path), &headers, body).await
    }

    async fn chat(&self, body: impl Into<bytes::Bytes>) -> Reply {
        self.send(CHAT, Some(GATEWAY_KEY), body).await
    }
}

fn chat_body(model: &str) -> String {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}).to_string()
}

/// The status, headers and body of a raw HTTP/1.1 answer.
fn parse_raw(answer: &str) -> (&str, &str, &str) {
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no complete head: {answer:?}"));
    let (status_line, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status_line, headers, body)
}

fn is_openai_request_id(id: &str) -> bool {
    id.strip_prefix("req_").is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|byte| byte.is_ascii_hexdigit()))
}

#[tokio::test]
async fn every_answer_the_gateway_writes_itself_is_an_openai_error_response_with_a_request_id() {
    let world = World::start().await;
    let validator = validator();
    let cases: Vec<(&str, Reply, u16)> = vec![
        ("no gateway key", world.send(CHAT, None, chat_body("gpt-4.1")).await, 401),
        ("a wrong gateway key", world.send(CHAT, Some("sk-wrong"), chat_body("gpt-4.1")).await, 401),
        ("a model no route serves", world.chat(chat_body("no-such-model")).await, 404),
        ("a path outside /v1", world.send("/v2/chat", Some(GATEWAY_KEY), chat_body("gpt-4.1")).await, 404),
        ("a dot segment", world.send("/v1/../admin", Some(GATEWAY_KEY), chat_body("gpt-4.1")).await, 400),
        ("JSON that does not parse", world.chat("{\"model\": ").await, 400),
        ("an empty body", world.chat("").await, 400),
        ("a model given twice", world.chat("{\"model\": \"gpt-4.1\", \"model\": \"other\"}").await, 400),
        ("a model that is not a string", world.chat("{\"model\": 4, \"messages\": []}").await, 400),
        ("a body over the limit", world.chat(vec![b' '; 2 * 1024 * 1024]).await, 413),
        ("an upstream that refuses connections", world.chat(chat_body("down-model")).await, 502),
        ("an upstream slower than its deadline", world.chat(chat_body("slow-model")).await, 504),
    ];
    for (what, reply, status) in &cases {
        assert_eq!(reply.status.as_u16(), *status, "{what}: {}", reply.text());
        reply.openai_error();
        let violations = schema_violations(&validator, &reply.json());
        assert!(violations.is_empty(), "{what}: {} does not validate: {violations:?}", reply.text());
        let id = reply.header("x-request-id").unwrap_or_default();
        assert!(is_openai_request_id(id), "{what}: x-request-id {id:?}");
    }
    let ids: std::collections::HashSet<&str> =
        cases.iter().filter_map(|(_, reply, _)| reply.header("x-request-id")).collect();
    assert_eq!(ids.len(), cases.len(), "every answer has an id of its own");
    let message = |index: usize| cases[index].1.openai_error()["message"].as_str().unwrap_or_default().to_owned();
    assert!(message(6).contains("empty"), "{}", message(6));
    assert!(message(7).contains("duplicate field `model`"), "{}", message(7));
}

#[tokio::test]
async fn a_502_or_504_names_the_route_and_the_upstream_but_not_its_address() {
    let world = World::start().await;
    for (model, status, route, upstream) in
        [("down-model", 502, "to-down", "down"), ("slow-model", 504, "to-slow", "slow")]
    {
        let reply = world.chat(chat_body(model)).await;
        assert_eq!(reply.status.as_u16(), status, "{model}: {}", reply.text());
        assert_eq!(reply.header("x-cutover-route"), Some(route), "{model}: {:?}", reply.headers);
        let message = reply.openai_error()["message"].as_str().unwrap_or_default().to_owned();
        assert!(message.contains(&format!("`{upstream}`")), "{model}: {message}");
        for address in ["127.0.0.1", &world.down.port().to_string()] {
            assert!(!reply.text().contains(address), "{model}: the body shows {address}: {}", reply.text());
        }
    }
    // Before a route is chosen there is none to name.
    let unrouted = world.chat(chat_body("no-such-model")).await;
    assert_eq!(unrouted.header("x-cutover-route"), None, "{:?}", unrouted.headers);
}

#[tokio::test]
async fn a_body_over_the_limit_announced_with_expect_100_continue_is_refused_before_it_is_sent() {
    let world = World::start().await;
    let head = format!(
        "POST {CHAT} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {GATEWAY_KEY}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nexpect: 100-continue\r\n\r\n",
        world.gateway.proxy,
        8 * 1024 * 1024
    );
    // Nothing of the body is sent: a gateway that invited it would wait for it instead.
    let answer = raw_exchange(world.gateway.proxy, &head, b"").await;
    assert!(!answer.contains("100 Continue"), "the gateway invited the upload: {answer:?}");
    let (status, headers, body) = parse_raw(&answer);
    assert!(status.starts_with("HTTP/1.1 413"), "{answer:?}");
    assert!(headers.to_ascii_lowercase().contains("x-request-id: req_"), "{headers}");
    let body: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body:?}"));
    assert_eq!(schema_violations(&validator(), &body), Vec::<String>::new(), "{body}");
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_answered_408_in_openais_shape() {
    let world = World::start().await;
    let head = format!(
        "POST {CHAT} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {GATEWAY_KEY}\r\ncontent-type: application/json\r\n\
         content-length: 100\r\n\r\n",
        world.gateway.proxy
    );
    let answer = raw_exchange(world.gateway.proxy, &head, b"{\"model\": \"gpt-4.1\"").await;
    let (status, headers, body) = parse_raw(&answer);
    assert!(status.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(headers.to_ascii_lowercase().contains("x-request-id: req_"), "{headers}");
    let body: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body:?}"));
    assert_eq!(schema_violations(&validator(), &body), Vec::<String>::new(), "{body}");
}
