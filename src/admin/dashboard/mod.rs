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
