//! `cutover shadow diff [--route R] [--dimension D]`: the disagreeing pairs a running
//! gateway kept (`GET /admin/shadow/{route}/diffs`), printed for people: when, what
//! disagreed and how, then the request and both answers as kept (truncated bodies).

use std::fmt::Write as _;

use cutover_config::Config;
use http::Method;
use serde_json::Value;

use super::admin_call::{AdminCallError, call_json, query_value};

/// The kept diffs of `route` (every route with a candidate without one).
pub async fn diffs(
    config: &Config,
    route: Option<&str>,
    dimension: Option<&str>,
) -> Result<Vec<Value>, AdminCallError> {
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
        answers.push(call_json(config, Method::GET, &path, String::new(), &[]).await?);
    }
    Ok(answers)
}

/// Each route's diffs, newest first.
pub fn render(answers: &[Value]) -> String {
    let mut out = String::new();
    let text = |value: &Value| value.as_str().map_or_else(|| value.to_string(), str::to_owned);
    for answer in answers {
        let diffs = answer["diffs"].as_array().map_or(&[][..], Vec::as_slice);
        let route = text(&answer["route"]);
        if answer["keep_diffs"].as_u64().unwrap_or(0) == 0 {
            let _ =
                writeln!(out, "route {route}: keeps no diffs (set shadow_keep_diffs = N on the route to keep some)");
            continue;
        }
        let _ = writeln!(out, "route {route}: {} disagreeing pair(s) kept", diffs.len());
        for diff in diffs {
            let dimensions: Vec<String> = diff["dimensions"].as_array().into_iter().flatten().map(text).collect();
            let at = cutover_model::utc_fields(diff["at"].as_i64().unwrap_or(0));
            let [year, month, day, hour, minute, second] = at;
            let _ = writeln!(
                out,
                "\n  {year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02} UTC  disagreed on: {}",
                dimensions.join(", ")
            );
            for note in diff["notes"].as_array().into_iter().flatten() {
                let _ = writeln!(out, "    {}", text(note));
            }
            for side in ["request", "primary", "candidate"] {
                let body = text(&diff[side]);
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
    use serde_json::json;

    use super::*;

    #[test]
    fn diffs_print_what_disagreed_and_both_answers() {
        let answer = json!({"route": "default", "keep_diffs": 10, "diffs": [{
            "at": 0, "dimensions": ["model"], "notes": ["model: asked for \"gpt-4.1\", reported \"gpt-4o-mini\""],
            "request": "{\"model\":\"gpt-4.1\"}", "primary": "Hello", "candidate": "Hi"}]});
        let printed = render(&[answer, json!({"route": "other", "keep_diffs": 0, "diffs": []})]);
        assert!(printed.contains("route default: 1 disagreeing pair(s) kept"), "{printed}");
        assert!(printed.contains("1970-01-01 00:00:00 UTC  disagreed on: model"), "{printed}");
        assert!(printed.contains("reported \"gpt-4o-mini\""), "{printed}");
        assert!(printed.contains("    candidate:\n      Hi"), "{printed}");
        assert!(printed.contains("route other: keeps no diffs"), "{printed}");
    }
}
