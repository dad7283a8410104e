//! The proxy service driven in-process, as hyper would drive it but without a socket on
//! the client side: requests are made up, answers read straight from the service.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use cutover_config::Config;
use cutover_metrics::Metrics;
use cutover_model::{Outcome, Role};
use cutover_net::body::BoxBody;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::service::Service;

use super::ProxyService;
use crate::Gateway;
use cutover_live::LiveState;
use cutover_mock::{MockConfig, MockServer};
use cutover_model::RouteState;

const GATEWAY_KEY: &str = "sk-gateway-test";

fn config(upstream: &str, auth: bool) -> Config {
    let mut text = format!(
        "[upstreams.primary]\nbase_url = \"{upstream}\"\n\n[[routes]]\nname = \"default\"\nprimary = \"primary\"\n"
    );
    if auth {
        text.push_str("\n[auth]\nkeys = [{ name = \"app\", key_env = \"GATEWAY_KEY\" }]\n");
    }
    let env = |name: &str| (name == "GATEWAY_KEY").then(|| GATEWAY_KEY.to_owned());
    cutover_config::load_str(&text, Path::new("."), env).unwrap()
}

/// The service of a gateway built from `config`, and its metrics.
fn service(config: Config) -> (ProxyService, Arc<Metrics>) {
    let states = config.routes.map(|_, route| RouteState::initial(&route.name, 0));
    let metrics = Arc::new(Metrics::new(&config));
    let live = Arc::new(LiveState::new(&states));
    let gateway = Gateway::new(Arc::new(config), metrics.clone(), live);
    (ProxyService::new(Arc::new(arc_swap::ArcSwap::from_pointee(gateway)), crate::Admission::new(1024, 32)), metrics)
}

fn chat(stream: bool) -> Request<Full<Bytes>> {
    let body = format!(r#"{{"model":"gpt-4.1","stream":{stream},"messages":[{{"role":"user","content":"hi"}}]}}"#);
    Request::builder()
        .method(Method::POST)
        .uri("/v1/chat/completions")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

async fn text(response: Response<BoxBody>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// OpenAI's error object of an answer: `(message, code)`.
async fn openai_error(response: Response<BoxBody>) -> (String, String) {
    let json: serde_json::Value = serde_json::from_str(&text(response).await).unwrap();
    let error = &json["error"];
    assert_eq!(error["type"].as_str().map(str::len).map(|length| length > 0), Some(true), "{json}");
    (error["message"].as_str().unwrap().to_owned(), error["code"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn an_unknown_path_answers_404_in_openais_error_shape() {
    let (service, _) = service(config("http://127.0.0.1:9", false));
    let request = Request::get("/healthz").body(Full::new(Bytes::new())).unwrap();
    let response = service.call(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let (message, code) = openai_error(response).await;
    assert_eq!(code, "unknown_url");
    assert!(message.contains("/healthz"), "{message}");
}

#[tokio::test]
async fn a_request_without_the_gateway_key_answers_401() {
    let upstream = MockServer::start(MockConfig::default()).await.unwrap();
    let (service, _) = service(config(&upstream.base_url(), true));
    let response = service.call(chat(false)).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(openai_error(response).await.1, "invalid_api_key");
    assert_eq!(upstream.calls(), 0, "a refused request never reaches the upstream");

    let mut request = chat(false);
    let bearer = format!("Bearer {GATEWAY_KEY}").parse().unwrap();
    request.headers_mut().insert(header::AUTHORIZATION, bearer);
    assert_eq!(service.call(request).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn a_stream_is_forwarded_whole_and_recorded_when_it_ends() {
    let upstream = MockServer::start(MockConfig::default()).await.unwrap();
    let config = config(&upstream.base_url(), false);
    let route = config.routes.first_id().unwrap();
    let (service, metrics) = service(config);
    let response = service.call(chat(true)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-cutover-upstream"], "primary");
    let text = text(response).await;
    assert!(text.starts_with("data: {") && text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(upstream.calls(), 1);
    assert_eq!(metrics.route(route).arm(Role::Primary).unwrap().count(Outcome::Ok), 1);
}

#[tokio::test]
async fn an_unreachable_upstream_answers_502_naming_it_and_the_connect_error_but_not_its_address() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    let (service, _) = service(config(&format!("http://{address}"), false));
    let response = service.call(chat(false)).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let (message, code) = openai_error(response).await;
    assert_eq!(code, "upstream_unavailable");
    assert!(
        message.starts_with("Upstream `primary` failed: cannot connect: tcp connect: Connection refused"),
        "{message}"
    );
    assert!(!message.contains(&address.ip().to_string()), "{message}");
}
