//! `cutover cost [--route R] [--since 24h] [--json]`: asks a running gateway's admin API
//! for its spend per arm and the monthly projection (`GET /admin/cost`), with the address
//! and token from the same configuration file the gateway runs.

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::rollout::RolloutCliError;
use crate::config::Config;
use crate::cost::CostReport;

/// The gateway's report for `route` (every route without one) over `since` (e.g. "24h").
pub async fn fetch(config: &Config, route: Option<&str>, since: &str) -> Result<CostReport, RolloutCliError> {
    let token = config.admin_token.as_ref().ok_or(RolloutCliError::NoToken)?;
    let address = config.server.admin_listen;
    let unreachable = |reason: String| RolloutCliError::Unreachable { address: address.to_string(), reason };
    let mut query = format!("since={}", encode(since));
    if let Some(route) = route {
        query.push_str(&format!("&route={}", encode(route)));
    }
    let request = Request::builder()
        .method(Method::GET)
        .uri(format!("http://{address}/admin/cost?{query}"))
        .header(header::AUTHORIZATION, format!("Bearer {}", token.expose()))
        .body(Empty::<Bytes>::new())
        .map_err(|error| unreachable(error.to_string()))?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let response = client.request(request).await.map_err(|error| unreachable(error.to_string()))?;
    let status = response.status();
    let bytes = response.into_body().collect().await.map_err(|error| unreachable(error.to_string()))?.to_bytes();
    if !status.is_success() {
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let message = json["error"]["message"]
            .as_str()
            .map_or_else(|| String::from_utf8_lossy(&bytes).into_owned(), str::to_owned);
        return Err(RolloutCliError::Refused { status, message });
    }
    serde_json::from_slice(&bytes).map_err(|error| unreachable(format!("an answer that is not a cost report: {error}")))
}

/// A query value with everything but unreserved characters percent-encoded.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
