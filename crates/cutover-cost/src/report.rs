//! The spend report served by `GET /admin/cost` and printed by `cutover cost` and the
//! demo: per route and arm, cost per 1,000 requests and per successful request, tokens
//! per request, and the monthly projection of the window's traffic all on the candidate
//! against all on the primary.

use std::fmt::Write;

use cutover_model::Role;
use serde::{Deserialize, Serialize};

use super::Ledger;
use super::window::{Totals, WINDOW_SECONDS};

const MONTH_SECONDS: f64 = 30.0 * 86_400.0;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CostReport {
    /// The span asked for…
    pub since_seconds: u64,
    /// …and the part of it the gateway was up for (the projection scales from this).
    pub covered_seconds: u64,
    pub routes: Vec<RouteCost>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RouteCost {
    pub route: String,
    pub arms: Vec<ArmCost>,
    /// `None` until both the primary and the candidate (or its shadow) have a known cost.
    pub projection: Option<Projection>,
    /// Share of the route's requests (all arms) whose cost is unknown, 0–1.
    pub unknown_cost_share: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArmCost {
    /// `primary`, `candidate` (a fallback's cost included: the split chose that arm), `shadow`.
    pub arm: String,
    pub upstream: String,
    pub totals: Totals,
    pub cost_usd: f64,
    /// Averaged over the requests whose cost is known.
    pub cost_per_1k_requests_usd: Option<f64>,
    pub cost_per_successful_request_usd: Option<f64>,
    pub tokens_per_request: Option<TokensPerRequest>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokensPerRequest {
    pub input: f64,
    pub cached_input: f64,
    #[serde(default)]
    pub cache_write: f64,
    pub output: f64,
    pub reasoning: f64,
}

/// The window's user traffic (primary and candidate arms) priced at each arm's measured
/// cost per request, for 30 days.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Projection {
    pub requests: u64,
    pub candidate_usd_per_month: f64,
    pub primary_usd_per_month: f64,
    pub saves_percent: f64,
    /// Where the candidate's cost per request was measured: `candidate` or `shadow`.
    pub candidate_measured_on: String,
}

/// The average cost of a request whose cost is known, in dollars.
fn per_request(totals: &Totals) -> Option<f64> {
    (totals.known > 0).then(|| totals.cost.as_dollars() / totals.known as f64)
}

impl ArmCost {
    fn new(role: Role, upstream: &str, totals: Totals) -> ArmCost {
        let average = per_request(&totals);
        let requests = totals.requests as f64;
        let tokens_per_request = (totals.requests > 0).then(|| TokensPerRequest {
            input: totals.tokens.input as f64 / requests,
            cached_input: totals.tokens.cached_input as f64 / requests,
            cache_write: totals.tokens.cache_write as f64 / requests,
            output: totals.tokens.output as f64 / requests,
            reasoning: totals.tokens.reasoning as f64 / requests,
        });
        ArmCost {
            arm: role.as_str().to_owned(),
            upstream: upstream.to_owned(),
            totals,
            cost_usd: totals.cost.as_dollars(),
            cost_per_1k_requests_usd: average.map(|cost| cost * 1000.0),
            cost_per_successful_request_usd: average
                .filter(|_| totals.successful > 0)
                .map(|cost| cost * requests / totals.successful as f64),
            tokens_per_request,
        }
    }
}

/// The report over the `since` seconds before `now`, for `route` or every route.
pub fn report(ledger: &Ledger, route: Option<&str>, since: u64, now: u64) -> CostReport {
    let since = since.clamp(1, WINDOW_SECONDS);
    let covered = since.min(now.saturating_sub(ledger.started()).max(1));
    let mut routes = Vec::new();
    for (id, name) in ledger.routes() {
        if route.is_some_and(|asked| asked != name) {
            continue;
        }
        let sums = ledger.window(id, now, since);
        let arms: Vec<ArmCost> = Role::ALL
            .into_iter()
            .filter_map(|role| ledger.upstream(id, role).map(|upstream| (role, upstream)))
            .filter(|(role, _)| *role != Role::Shadow || sums[Role::Shadow as usize].requests > 0)
            .map(|(role, upstream)| ArmCost::new(role, upstream, sums[role as usize]))
            .collect();
        let all = sums.iter().fold(Totals::default(), |mut all, arm| {
            all.add(arm);
            all
        });
        let unknown_cost_share = if all.requests == 0 { 0.0 } else { all.unknown as f64 / all.requests as f64 };
        let projection = project(&sums, covered);
        routes.push(RouteCost { route: name.to_owned(), arms, projection, unknown_cost_share });
    }
    CostReport { since_seconds: since, covered_seconds: covered, routes }
}

fn project(sums: &[Totals; 3], covered: u64) -> Option<Projection> {
    let [primary, candidate, shadow] = sums;
    let primary_cost = per_request(primary)?;
    let (candidate_cost, measured_on) = match per_request(candidate) {
        Some(cost) => (cost, Role::Candidate),
        None => (per_request(shadow)?, Role::Shadow),
    };
    let requests = primary.requests + candidate.requests;
    let scale = requests as f64 * MONTH_SECONDS / covered.max(1) as f64;
    let (on_candidate, on_primary) = (candidate_cost * scale, primary_cost * scale);
    let saves_percent = if on_primary > 0.0 { (on_primary - on_candidate) / on_primary * 100.0 } else { 0.0 };
    Some(Projection {
        requests,
        candidate_usd_per_month: on_candidate,
        primary_usd_per_month: on_primary,
        saves_percent,
        candidate_measured_on: measured_on.as_str().to_owned(),
    })
}

fn money(value: Option<f64>) -> String {
    match value {
        Some(value) if value >= 100.0 => format!("${value:.0}"),
        Some(value) if value >= 1.0 => format!("${value:.2}"),
        Some(value) => format!("${value:.6}"),
        None => "unknown".to_owned(),
    }
}

/// The report as the table `cutover cost` and the demo print.
pub fn render(report: &CostReport) -> String {
    let mut out = String::new();
    let span = |seconds: u64| cutover_model::duration::format_duration(std::time::Duration::from_secs(seconds));
    let covered = span(report.covered_seconds);
    let _ = writeln!(out, "cost over the last {covered} (asked: {})", span(report.since_seconds));
    for route in &report.routes {
        let _ = writeln!(out, "\nroute {}", route.route);
        let _ = writeln!(
            out,
            "  {:<10} {:<12} {:>9} {:>9} {:>12} {:>14} {:>14} {:>22}",
            "arm", "upstream", "requests", "unknown", "cost", "per 1k req", "per success", "tokens/req in/out"
        );
        for arm in &route.arms {
            let tokens = arm
                .tokens_per_request
                .as_ref()
                .map_or("-".to_owned(), |tokens| format!("{:.1}/{:.1}", tokens.input, tokens.output));
            let _ = writeln!(
                out,
                "  {:<10} {:<12} {:>9} {:>9} {:>12} {:>14} {:>14} {:>22}",
                arm.arm,
                arm.upstream,
                arm.totals.requests,
                arm.totals.unknown,
                money(Some(arm.cost_usd)),
                money(arm.cost_per_1k_requests_usd),
                money(arm.cost_per_successful_request_usd),
                tokens
            );
        }
        let unknown = route.unknown_cost_share * 100.0;
        match &route.projection {
            Some(projection) => {
                let _ = writeln!(
                    out,
                    "  at the last {covered} of traffic ({} requests), all on the candidate: {}/month vs {}/month \
                     on the primary (saves {:.1}%); cost unknown for {unknown:.1}% of requests",
                    projection.requests,
                    money(Some(projection.candidate_usd_per_month)),
                    money(Some(projection.primary_usd_per_month)),
                    projection.saves_percent
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "  no projection yet: both arms need requests of known cost; cost unknown for {unknown:.1}% of \
                     requests"
                );
            }
        }
    }
    out
}

/// Why a report cannot be made as asked.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("since={0:?} is not a duration (e.g. \"1h\", \"24h\")")]
    BadSince(String),
    #[error("since={0:?} is beyond the {hours} h the gateway keeps", hours = WINDOW_SECONDS / 3600)]
    SinceTooLong(String),
    #[error("unknown route {0:?}")]
    UnknownRoute(String),
}

/// The span of `--since` / `?since=` in seconds: default 24 h, at most 24 h.
pub fn parse_since(since: Option<&str>) -> Result<u64, ReportError> {
    let Some(text) = since else { return Ok(WINDOW_SECONDS) };
    let span = cutover_model::duration::parse_duration(text).ok_or_else(|| ReportError::BadSince(text.to_owned()))?;
    if span.as_secs() > WINDOW_SECONDS {
        return Err(ReportError::SinceTooLong(text.to_owned()));
    }
    Ok(span.as_secs().max(1))
}

/// `report`, refusing a route the gateway does not have.
pub fn checked_report(ledger: &Ledger, route: Option<&str>, since: u64, now: u64) -> Result<CostReport, ReportError> {
    if let Some(name) = route
        && ledger.route_id(name).is_none()
    {
        return Err(ReportError::UnknownRoute(name.to_owned()));
    }
    Ok(report(ledger, route, since, now))
}
