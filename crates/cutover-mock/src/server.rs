//! The mock as an HTTP service: routing by the API spoken, the steps every request goes
//! through (count, record, authenticate, fault, latency), and the in-process handle tests
//! drive.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cutover_config::ConnectionLimits;
use cutover_net::{
    body::{BoxBody, BoxError, json},
    serve::serve_counting,
};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::Service;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::config::{Api, MockConfig};
use super::ctx::Ctx;
use super::faults::{FaultRule, FaultSet};
use super::runtime::{Runtime, error_json};
use super::state::{Endpoint, RecordedRequest, State};
use super::{anthropic, chat, completions, embeddings, messages, responses};

/// A mock upstream running in this process, for tests.
///
/// Dropping it stops the server too; [`MockServer::shutdown`] also waits for the drain.
pub struct MockServer {
    addr: SocketAddr,
    state: Arc<State>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl MockServer {
    /// Binds `127.0.0.1:0` and serves `config` there.
    pub async fn start(config: MockConfig) -> std::io::Result<MockServer> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        Ok(MockServer::start_on(listener, config).await)
    }

    /// Serves `config` on `listener` from a spawned task.
    pub async fn start_on(listener: TcpListener, config: MockConfig) -> MockServer {
        let addr = listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let state = Arc::new(State::new(Runtime::new(&config)));
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve_state(listener, state.clone(), async move {
            // A dropped handle stops the server as well.
            let _ = stopped.await;
        }));
        MockServer { addr, state, stop, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/v1`, what an OpenAI client takes as its base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Requests received so far, on every path, faulted ones included.
    pub fn calls(&self) -> u64 {
        self.state.calls()
    }

    /// Requests received so far on `path` (`/v1/models` includes `/v1/models/{id}`;
    /// `/v1/messages` and `/v1/messages/count_tokens` count apart). Paths the mock does
    /// not serve share one counter.
    pub fn calls_to(&self, path: &str) -> u64 {
        self.state.calls_to(Endpoint::of(path))
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.state.connections.get()
    }

    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.state.last_request()
    }

    /// Replaces the fault rules from the next request on; limits start over.
    pub fn set_faults(&self, faults: Vec<FaultRule>) {
        let faults = Arc::new(FaultSet::new(&faults));
        self.state.runtime.rcu(|runtime| Runtime { faults: faults.clone(), ..Runtime::clone(runtime) });
    }

    pub fn set_latency(&self, latency: Duration) {
        self.state.runtime.rcu(|runtime| Runtime { latency, ..Runtime::clone(runtime) });
    }

    /// Stops accepting, ends hung faults, and waits for in-flight requests to finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Serves a mock with `config` on `listener` until `shutdown` resolves, then drains.
pub async fn run(listener: TcpListener, config: MockConfig, shutdown: impl Future<Output = ()>) {
    serve_state(listener, Arc::new(State::new(Runtime::new(&config))), shutdown).await;
}

async fn serve_state(listener: TcpListener, state: Arc<State>, shutdown: impl Future<Output = ()>) {
    let stopping = state.clone();
    let shutdown = async move {
        shutdown.await;
        // Stalled streams and unanswered requests would otherwise hold the drain.
        stopping.stopping.send_replace(true);
    };
    let service = MockService { state: state.clone() };
    serve_counting(listener, service, shutdown, ConnectionLimits::default(), &state.connections).await;
}

#[derive(Clone)]
struct MockService {
    state: Arc<State>,
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<BoxBody>, BoxError>> + Send>>;

impl Service<Request<Incoming>> for MockService {
    type Response = Response<BoxBody>;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        Box::pin(handle(self.state.clone(), request))
    }
}

const MODEL_PREFIX: &str = "/v1/models/";

/// What one request is, decided from the API spoken, its method and path.
enum Route {
    Chat,
    Completions,
    Embeddings,
    Responses,
    Messages,
    CountTokens,
    ModelList,
    Model(Bytes),
    UnknownModel(String),
    NotFound(String),
}

impl Route {
    fn of(method: &Method, path: &str, runtime: &Runtime) -> Route {
        match (runtime.api, method, path) {
            (Api::OpenAi, &Method::POST, "/v1/chat/completions") => Route::Chat,
            (Api::OpenAi, &Method::POST, "/v1/completions") => Route::Completions,
            (Api::OpenAi, &Method::POST, "/v1/embeddings") => Route::Embeddings,
            (Api::OpenAi, &Method::POST, "/v1/responses") => Route::Responses,
            (Api::Anthropic, &Method::POST, "/v1/messages") => Route::Messages,
            (Api::Anthropic, &Method::POST, "/v1/messages/count_tokens") => Route::CountTokens,
            (_, &Method::GET, "/v1/models") => Route::ModelList,
            (_, &Method::GET, _) if path.starts_with(MODEL_PREFIX) => {
                let id = &path[MODEL_PREFIX.len()..];
                runtime.model(id).map_or_else(|| Route::UnknownModel(id.to_owned()), Route::Model)
            }
            (Api::OpenAi, ..) => Route::NotFound(format!("Invalid URL ({method} {path})")),
            (Api::Anthropic, ..) => Route::NotFound(format!("Not Found ({method} {path})")),
        }
    }
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Result<Response<BoxBody>, BoxError> {
    state.count(Endpoint::of(request.uri().path()));
    let runtime = state.runtime.load_full();
    let id = state.next_id();
    let (parts, body) = request.into_parts();
    let route = Route::of(&parts.method, parts.uri.path(), &runtime);
    let refused = match runtime.api {
        Api::OpenAi => (!runtime.authorized(parts.headers.get(http::header::AUTHORIZATION)))
            .then(|| json(StatusCode::UNAUTHORIZED, runtime.errors.unauthorized.clone())),
        Api::Anthropic => anthropic::refusal(&runtime, &parts.headers),
    };
    // A body that fails mid-read means the client is gone: nobody to answer.
    let body = body.collect().await?.to_bytes();
    let mut parts = parts;
    // Whatever hyper attached (e.g. a pending upgrade) must not outlive the request.
    parts.extensions.clear();
    state.record(parts, body.clone());
    let ctx = Ctx { state, runtime, id };
    let mut response = match refused {
        None => dispatch(&ctx, route, body).await?,
        Some(refused) => refused,
    };
    if ctx.runtime.quirks.plain_errors && !response.status().is_success() {
        response = plain_error(response).await?;
    }
    let headers = response.headers_mut();
    if let Ok(request_id) = HeaderValue::from_str(&format!("req_{}", ctx.id)) {
        if ctx.runtime.api == Api::Anthropic {
            headers.insert("request-id", request_id.clone());
        }
        headers.insert("x-request-id", request_id);
    }
    headers.insert("x-mock-name", ctx.runtime.name_header.clone());
    Ok(response)
}

/// The `plain-errors` quirk: the error's message alone, as `text/plain`, as some relays
/// answer (the SDKs cannot parse it).
async fn plain_error(response: Response<BoxBody>) -> Result<Response<BoxBody>, BoxError> {
    let (mut parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let message = parsed.as_ref().and_then(|v| v.pointer("/error/message")).and_then(serde_json::Value::as_str);
    let text = match message {
        Some(message) => format!("{} {message}", parts.status),
        None => parts.status.to_string(),
    };
    parts.headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    parts.headers.remove(http::header::CONTENT_LENGTH);
    Ok(Response::from_parts(parts, cutover_net::body::full(text)))
}

async fn dispatch(ctx: &Ctx, route: Route, body: Bytes) -> Result<Response<BoxBody>, BoxError> {
    match route {
        Route::Chat => chat::handle(ctx, &body).await,
        Route::Completions => completions::handle(ctx, &body).await,
        Route::Embeddings => embeddings::handle(ctx, &body).await,
        Route::Responses => responses::handle(ctx, &body).await,
        Route::Messages => messages::handle(ctx, &body).await,
        Route::CountTokens => Ok(messages::count_tokens(ctx, &body)),
        Route::ModelList => Ok(json(StatusCode::OK, ctx.runtime.model_list.clone())),
        Route::Model(model) => Ok(json(StatusCode::OK, model)),
        Route::UnknownModel(id) => Ok(match ctx.runtime.api {
            Api::OpenAi => json(
                StatusCode::NOT_FOUND,
                error_json(
                    "The model does not exist.",
                    "invalid_request_error",
                    Some("model"),
                    Some("model_not_found"),
                ),
            ),
            Api::Anthropic => anthropic::error(StatusCode::NOT_FOUND, &anthropic::unknown_model(&id)),
        }),
        Route::NotFound(message) => Ok(match ctx.runtime.api {
            Api::OpenAi => json(StatusCode::NOT_FOUND, error_json(&message, "invalid_request_error", None, None)),
            Api::Anthropic => anthropic::error(StatusCode::NOT_FOUND, &message),
        }),
    }
}
