//! `cutover cost [--route R] [--since 24h] [--json]`: asks a running gateway's admin API
//! for its spend per arm and the monthly projection (`GET /admin/cost`), with the address
//! and token from the same configuration file the gateway runs.

use cutover_config::Config;
use cutover_cost::CostReport;
use http::Method;

use super::admin_call::{AdminCallError, call, query_value};

/// The gateway's report for `route` (every route without one) over `since` (e.g. "24h").
pub async fn fetch(config: &Config, route: Option<&str>, since: &str) -> Result<CostReport, AdminCallError> {
    let mut query = format!("since={}", query_value(since));
    if let Some(route) = route {
        query.push_str(&format!("&route={}", query_value(route)));
    }
    let bytes = call(config, Method::GET, &format!("/admin/cost?{query}"), String::new(), &[]).await?;
    serde_json::from_slice(&bytes).map_err(|error| AdminCallError::Unreachable {
        address: config.server.admin_listen.to_string(),
        reason: format!("an answer that is not a cost report: {error}"),
    })
}
