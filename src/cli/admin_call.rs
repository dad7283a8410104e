//! The one exchange every CLI verb has with a running gateway: a request to its admin API
//! at the address and with the token of the configuration file the gateway runs, and the
//! answer's body, or why there was none (no token configured, the gateway unreachable, or
//! its refusal with the message from OpenAI's error shape).

use bytes::Bytes;
use cutover_config::Config;
use http::{HeaderName, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

#[derive(Debug, thiserror::Error)]
pub enum AdminCallError {
    #[error("the config sets no admin.token_env: the admin API is closed")]
    NoToken,
    #[error("cannot reach the gateway's admin API at {address}: {reason}")]
    Unreachable { address: String, reason: String },
    #[error("the gateway refused ({status}): {message}")]
    Refused { status: StatusCode, message: String },
    /// A 2xx answer that does not read as the type the verb expects (a gateway of
    /// another version, or not a gateway).
    #[error("the gateway's answer to {path} does not read as expected: {source}")]
    Unreadable { path: String, source: serde_json::Error },
}

/// Sends `method path` (with a JSON `body` when it is not empty, and `headers`) to the
/// admin API `config` describes; the body of a 2xx answer.
pub async fn call(
    config: &Config,
    method: Method,
    path: &str,
    body: String,
    headers: &[(HeaderName, String)],
) -> Result<Bytes, AdminCallError> {
    let token = config.admin_token.as_ref().ok_or(AdminCallError::NoToken)?;
    let address = config.server.admin_listen;
    let unreachable = |reason: String| AdminCallError::Unreachable { address: address.to_string(), reason };
    let mut request = Request::builder()
        .method(method)
        .uri(format!("http://{address}{path}"))
        .header(header::AUTHORIZATION, format!("Bearer {}", token.expose()));
    if !body.is_empty() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let request = request.body(Full::new(Bytes::from(body))).map_err(|error| unreachable(error.to_string()))?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let response = client.request(request).await.map_err(|error| unreachable(error.to_string()))?;
    let status = response.status();
    let bytes = response.into_body().collect().await.map_err(|error| unreachable(error.to_string()))?.to_bytes();
    if !status.is_success() {
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let message = json["error"]["message"]
            .as_str()
            .map_or_else(|| String::from_utf8_lossy(&bytes).into_owned(), str::to_owned);
        return Err(AdminCallError::Refused { status, message });
    }
    Ok(bytes)
}

/// [`call`], with the answer read as JSON (`null` when it is not).
pub async fn call_json(
    config: &Config,
    method: Method,
    path: &str,
    body: String,
    headers: &[(HeaderName, String)],
) -> Result<serde_json::Value, AdminCallError> {
    let bytes = call(config, method, path, body, headers).await?;
    Ok(serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

/// [`call`], with the answer read into `T`, one of the admin API's typed answers
/// (`cutover_model::view`).
pub async fn call_as<T: serde::de::DeserializeOwned>(
    config: &Config,
    method: Method,
    path: &str,
    body: String,
    headers: &[(HeaderName, String)],
) -> Result<T, AdminCallError> {
    let bytes = call(config, method, path, body, headers).await?;
    serde_json::from_slice(&bytes).map_err(|source| AdminCallError::Unreadable { path: path.to_owned(), source })
}

/// A query value with everything but unreserved characters percent-encoded.
pub fn query_value(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
