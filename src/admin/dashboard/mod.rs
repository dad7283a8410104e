//! `GET /dashboard`: one page, embedded in the binary with everything it loads (its
//! script and style, and uPlot vendored under `assets/dashboard/vendor/`), so it works on
//! an air-gapped host; a Content-Security-Policy of `'self'` keeps it from asking anything
//! of anyone else. The page itself holds no data and no secret: it asks for the admin
//! token, keeps it in the tab's session storage and sends it as a bearer token to the
//! JSON endpoints of the admin API (`/admin/*`, 401 without it), including
//! `GET /admin/dashboard` below for what only the page needs: the time series and which
//! features are configured.

mod series;

use std::sync::Arc;

use cutover_net::body::{self, BoxBody};
use http::{Response, StatusCode, header};
use serde_json::{Value, json};

use crate::proxy::SharedGateway;

pub use series::Series;

/// The actor recorded for the page's operator actions.
pub const ACTOR: &str = "dashboard";

const PAGE: &str = include_str!("../../../assets/dashboard/index.html");
const SCRIPT: &str = include_str!("../../../assets/dashboard/app.js");
const STYLE: &str = include_str!("../../../assets/dashboard/app.css");
const UPLOT_SCRIPT: &str = include_str!("../../../assets/dashboard/vendor/uPlot.iife.min.js");
const UPLOT_STYLE: &str = include_str!("../../../assets/dashboard/vendor/uPlot.min.css");

/// Nothing but this origin: no external script, style, font, image or connection.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                      connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The page or one of its assets, by path; `None` for any other path.
pub fn asset(path: &str) -> Option<Response<BoxBody>> {
    let (content_type, text) = match path {
        "/dashboard" | "/dashboard/" => ("text/html; charset=utf-8", PAGE),
        "/dashboard/app.js" => ("text/javascript; charset=utf-8", SCRIPT),
        "/dashboard/app.css" => ("text/css; charset=utf-8", STYLE),
        "/dashboard/vendor/uPlot.iife.min.js" => ("text/javascript; charset=utf-8", UPLOT_SCRIPT),
        "/dashboard/vendor/uPlot.min.css" => ("text/css; charset=utf-8", UPLOT_STYLE),
        _ => return None,
    };
    let mut response = body::response(StatusCode::OK, content_type, text);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, header::HeaderValue::from_static(POLICY));
    headers.insert(header::REFERRER_POLICY, header::HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    Some(response)
}

/// Starts recording the time series, for as long as the returned `Series` lives (outside a
/// runtime, as in some unit tests, nothing is recorded).
pub fn start_series(gateway: &SharedGateway) -> Arc<Series> {
    let series = Arc::new(Series::default());
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(series::record(Arc::downgrade(&series), gateway.clone()));
    }
    series
}

/// `GET /admin/dashboard?since=MS`: the series' points after `since` (unix ms; all kept
/// without it), and which optional panels have something to show.
pub fn data(gateway: &SharedGateway, series: &Series, since_ms: i64) -> Value {
    let gateway = gateway.load();
    let config = &gateway.config;
    json!({
        "now": cutover_model::unix_millis(),
        "configured": {
            "prices": !config.prices.is_empty(),
            "health_probes": config.health.enabled,
            "alerts": config.alerts.len(),
            "notifiers": config.notifiers.len(),
        },
        "series": series.json(since_ms),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::SCRIPT;

    /// Every chain of names the page reads from a rollout view (`view.evaluation?.checks`),
    /// up to the first index or call.
    fn view_reads(script: &str) -> Vec<Vec<&str>> {
        let mut reads = Vec::new();
        for (at, _) in script.match_indices("view.") {
            if script[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                continue;
            }
            let mut chain = Vec::new();
            let mut rest = &script[at + "view.".len()..];
            loop {
                let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
                chain.push(&rest[..end]);
                rest = &rest[end..];
                match rest.strip_prefix("?.").or_else(|| rest.strip_prefix('.')) {
                    Some(next) if next.starts_with(|c: char| c.is_ascii_alphabetic()) => rest = next,
                    _ => break,
                }
            }
            reads.push(chain);
        }
        reads
    }

    #[test]
    fn the_dashboard_reads_only_what_the_rollout_view_has() {
        let mut view = crate::cli::rollout::empty_view();
        view.undecided = Some(cutover_model::view::Undecided { since: 0, reason: None });
        view.evaluation = Some(cutover_model::evaluation::Evaluation {
            verdict: cutover_model::evaluation::Verdict::Pass,
            control: cutover_model::evaluation::ControlKind::EqualSlice,
            checks: Vec::new(),
            gates: Vec::new(),
            held: None,
            ahead: Vec::new(),
        });
        let json = serde_json::to_value(view).unwrap();
        let reads = view_reads(SCRIPT);
        assert!(reads.len() > 20, "the page reads the view: {reads:?}");
        for chain in reads {
            let mut value = &json;
            for (depth, name) in chain.iter().enumerate() {
                // Past an object: a method or property of the value itself (`view.phase.replace`).
                let Value::Object(object) = value else { break };
                value =
                    object.get(*name).unwrap_or_else(|| panic!("the page reads view.{}", chain[..=depth].join(".")));
            }
        }
    }
}
