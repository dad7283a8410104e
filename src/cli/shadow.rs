//! `cutover shadow diff [--route R] [--dimension D]`: the disagreeing pairs a running
//! gateway kept (`GET /admin/shadow/{route}/diffs`), printed for people: when, what
//! disagreed and how, then the request and both answers as kept (truncated bodies).

use std::fmt::Write as _;

use cutover_config::Config;
use cutover_model::view::ShadowDiffs;
use http::Method;

use super::admin_call::{AdminCallError, call_as, query_value};

/// The kept diffs of `route` (every route with a candidate without one), as the gateway
/// answered them.
pub async fn diffs(
    config: &Config,
    route: Option<&str>,
    dimension: Option<&str>,
) -> Result<Vec<ShadowDiffs>, AdminCallError> {
    let routes: Vec<&str> = match route {
        Some(route) => vec![route],
        None => {
            config.routes.values().filter(|route| route.candidate.is_some()).map(|route| route.name.as_str()).collect()
        }
    };
    let query = dimension.map_or(String::new(), |dimension| format!("?dimension={}", query_value(dimension)));
    let mut answers = Vec::with_capacity(routes.len());
    for route in routes {
        let path = format!("/admin/shadow/{}/diffs{query}", query_value(route));
        answers.push(call_as(config, Method::GET, &path, String::new(), &[]).await?);
    }
    Ok(answers)
}

/// Each route's diffs, newest first.
pub fn render(answers: &[ShadowDiffs]) -> String {
    let mut out = String::new();
    for answer in answers {
        let route = &answer.route;
        if answer.keep_diffs == 0 {
            let _ =
                writeln!(out, "route {route}: keeps no diffs (set shadow_keep_diffs = N on the route to keep some)");
            continue;
        }
        let _ = writeln!(out, "route {route}: {} disagreeing pair(s) kept", answer.diffs.len());
        for diff in &answer.diffs {
            let dimensions: Vec<&str> = diff.dimensions.iter().map(|dimension| dimension.as_str()).collect();
            let [year, month, day, hour, minute, second] = cutover_model::utc_fields(diff.at);
            let _ = writeln!(
                out,
                "\n  {year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02} UTC  disagreed on: {}",
                dimensions.join(", ")
            );
            for note in &diff.notes {
                let _ = writeln!(out, "    {note}");
            }
            for (side, body) in [("request", &diff.request), ("primary", &diff.primary), ("candidate", &diff.candidate)]
            {
                let _ = writeln!(out, "    {side}:");
                for line in body.lines() {
                    let _ = writeln!(out, "      {line}");
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use cutover_model::Dimension;
    use cutover_model::view::ShadowDiff;
    use serde::Deserialize;

    use super::*;

    #[test]
    fn diffs_print_what_disagreed_and_both_answers() {
        let diff = ShadowDiff {
            at: 0,
            dimensions: vec![Dimension::Model],
            notes: vec!["model: asked for \"gpt-4.1\", reported \"gpt-4o-mini\"".to_owned()],
            request: "{\"model\":\"gpt-4.1\"}".to_owned(),
            primary: "Hello".to_owned(),
            candidate: "Hi".to_owned(),
        };
        let kept = ShadowDiffs { route: "default".to_owned(), keep_diffs: 10, diffs: vec![diff] };
        let none = ShadowDiffs { route: "other".to_owned(), keep_diffs: 0, diffs: Vec::new() };
        let printed = render(&[kept, none]);
        assert!(printed.contains("route default: 1 disagreeing pair(s) kept"), "{printed}");
        assert!(printed.contains("1970-01-01 00:00:00 UTC  disagreed on: model"), "{printed}");
        assert!(printed.contains("reported \"gpt-4o-mini\""), "{printed}");
        assert!(printed.contains("    candidate:\n      Hi"), "{printed}");
        assert!(printed.contains("route other: keeps no diffs"), "{printed}");
    }

    #[test]
    fn an_answer_with_an_unknown_dimension_is_not_read_as_diffs() {
        let answer = serde_json::json!({"route": "default", "keep_diffs": 1, "diffs": [{"at": 0,
            "dimensions": ["mood"], "notes": [], "request": "", "primary": "", "candidate": ""}]});
        let error = ShadowDiffs::deserialize(&answer).unwrap_err();
        assert!(error.to_string().contains("\"mood\" is not a shadow dimension"), "{error}");
    }
}
