//! The configuration as operators write it: every problem reported with its key path,
//! secrets never printed, careless edits refused by name.

use std::path::Path;

use super::*;

const FULL: &str = r#"
[server]
listen = "127.0.0.1:8080"
admin_listen = "127.0.0.1:9090"
max_body_mb = 2

[auth]
keys = [{ name = "web-app", key_env = "KEY_WEB" }]

[admin]
token_env = "ADMIN_TOKEN"

[upstreams.official]
base_url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"
timeout = "30s"
first_token_timeout = "5s"

[upstreams.relay]
base_url = "http://127.0.0.1:8001/v1/"
models = { "gpt-4.1" = "relay-gpt-4.1" }

[prices.relay]
"gpt-4.1" = { input = 8.0, output = 8.0 }

[[routes]]
name = "default"
models = ["gpt-4.1", "gpt-4.1-*"]
primary = "official"
candidate = "relay"
sticky = "header:x-user-id"
fallback = "both"

[routes.rollout]
interval = "1m"
max_error_rate_increase = 1.0
steps = [
  { shadow = 1.0, weight = 0, min_duration = "1h", min_requests = 500 },
  { weight = 0.05, min_duration = "4h", min_requests = 1000, max_error_rate = 5.0 },
  { weight = 100, min_duration = "72h", min_requests = 500000, max_error_rate = 1.0 },
]
"#;

fn env(name: &str) -> Option<String> {
    match name {
        "KEY_WEB" => Some("sk-gateway-web".to_owned()),
        "ADMIN_TOKEN" => Some("admin-secret".to_owned()),
        "OPENAI_API_KEY" => Some("sk-upstream-secret".to_owned()),
        _ => None,
    }
}

fn problems(text: &str) -> Vec<String> {
    load_str(text, Path::new("/etc/cutover"), env).err().unwrap_or_default().iter().map(ToString::to_string).collect()
}

#[test]
fn a_full_config_resolves_to_runtime_types() {
    let config = load_str(FULL, Path::new("/etc/cutover"), env).unwrap();
    assert_eq!(config.server.max_body_bytes, 2 * 1024 * 1024);
    let relay = &config.upstreams[config.upstream_index("relay").unwrap()];
    assert_eq!((relay.authority.as_str(), relay.base_path.as_str()), ("127.0.0.1:8001", "/v1"));
    assert_eq!(relay.model_aliases.get("gpt-4.1").map(String::as_str), Some("relay-gpt-4.1"));
    let route = config.route("default").unwrap();
    assert_eq!(route.fallback, FallbackMode::Both);
    assert!(route.models[1].matches("gpt-4.1-mini") && !route.models[1].matches("gpt-4o"));
    let plan = route.rollout.as_ref().unwrap();
    assert_eq!(plan.steps.iter().map(|step| step.weight_bp).collect::<Vec<_>>(), vec![0, 5, 10_000]);
    assert_eq!(plan.steps[1].criteria.get(Criterion::MaxErrorRate), Some(5.0));
    assert_eq!(
        plan.steps[1].criteria.get(Criterion::MaxErrorRateIncrease),
        Some(1.0),
        "steps inherit route-level criteria"
    );
    assert_eq!(config.state_path, Path::new("/etc/cutover/cutover.db"));
}

#[test]
fn every_problem_is_reported_at_once_with_its_key_path() {
    let text = FULL
        .replace("candidate = \"relay\"", "candidate = \"nada\"")
        .replace("timeout = \"30s\"", "timeout = \"3 parsecs\"")
        .replace("max_body_mb = 2", "max_body_mb = 2\nbogus = 1")
        .replace("OPENAI_API_KEY", "UNSET_VARIABLE");
    let found = problems(&text);
    let expected = [
        "routes[0].candidate: unknown upstream \"nada\"",
        "upstreams.official.timeout: \"3 parsecs\" is not a duration",
        "server.bogus: unknown field `bogus`",
        "upstreams.official.api_key_env: environment variable UNSET_VARIABLE is not set",
    ];
    for expected in expected {
        assert!(found.iter().any(|problem| problem.starts_with(expected)), "missing {expected:?} in {found:#?}");
    }
}

#[test]
fn misspelt_criteria_in_steps_are_errors_not_silently_ignored() {
    let found = problems(&FULL.replace("max_error_rate = 5.0", "max_eror_rate = 5.0"));
    assert!(
        found.iter().any(|problem| problem.starts_with("routes[0].rollout.steps[1].max_eror_rate: unknown key")),
        "{found:#?}"
    );
}

#[test]
fn weights_must_be_percentages_with_hundredth_resolution() {
    assert_eq!(percent_to_basis_points(12.5), Some(1250));
    assert_eq!(percent_to_basis_points(0.01), Some(1));
    assert_eq!(percent_to_basis_points(100.0), Some(10_000));
    assert_eq!(percent_to_basis_points(100.5), None);
    assert_eq!(percent_to_basis_points(-1.0), None);
    assert_eq!(percent_to_basis_points(0.001), None);
    let found = problems(&FULL.replace("weight = 100,", "weight = 150,"));
    assert!(found.iter().any(|problem| problem.starts_with("routes[0].rollout.steps[2].weight")), "{found:#?}");
}

#[test]
fn shadow_agreement_is_judged_overall_and_per_dimension_in_percent() {
    let shadow_step = "{ shadow = 1.0, weight = 0, min_duration = \"1h\", min_requests = 500 }";
    let text = FULL.replace(
        shadow_step,
        "{ shadow = 1.0, weight = 0, min_duration = \"1h\", min_requests = 500, \
         min_shadow_agreement = { overall = 90, tool_calls = 98, json_valid = 99 } }",
    );
    let config = load_str(&text, Path::new("."), env).unwrap();
    let criteria = &config.route("default").unwrap().rollout.as_ref().unwrap().steps[0].criteria;
    assert_eq!(criteria.get(Criterion::MinShadowAgreement), Some(90.0));
    let dimensions: Vec<_> = criteria.shadow_dimensions().collect();
    assert_eq!(dimensions, [(cutover_model::Dimension::ToolCalls, 98.0), (cutover_model::Dimension::JsonValid, 99.0)]);
    assert!(config.to_string().contains("shadow agreement ≥ 90%; shadow tool_calls agreement ≥ 98%"));
    let plain = FULL.replace(shadow_step, &shadow_step.replace(" }", ", min_shadow_agreement = 95 }"));
    let config = load_str(&plain, Path::new("."), env).unwrap();
    let criteria = &config.route("default").unwrap().rollout.as_ref().unwrap().steps[0].criteria;
    assert_eq!(criteria.get(Criterion::MinShadowAgreement), Some(95.0));
}

#[test]
fn shadow_agreement_that_reads_as_a_ratio_names_an_unknown_dimension_or_lacks_a_shadow_share_is_refused() {
    let shadow_step = "{ shadow = 1.0, weight = 0, min_duration = \"1h\", min_requests = 500 }";
    let ratio =
        FULL.replace(shadow_step, &shadow_step.replace(" }", ", min_shadow_agreement = { tool_calls = 0.98 } }"));
    let found = problems(&ratio);
    assert!(
        found.iter().any(|problem| problem
            .starts_with("routes[0].rollout.steps[0].min_shadow_agreement.tool_calls: 0.98 reads as 0.98%")
            && problem.contains("write 98 for 98%")),
        "{found:#?}"
    );
    let unknown = FULL.replace(shadow_step, &shadow_step.replace(" }", ", min_shadow_agreement = { tools = 98 } }"));
    let found = problems(&unknown);
    assert!(found.iter().any(|problem| problem.contains("\"tools\" is not a shadow dimension")), "{found:#?}");
    let unmirrored = FULL.replace("max_error_rate = 5.0 }", "max_error_rate = 5.0, min_shadow_agreement = 80 }");
    let found = problems(&unmirrored);
    assert!(
        found
            .iter()
            .any(|problem| problem
                .starts_with("routes[0].rollout.steps[1].min_shadow_agreement: this step mirrors nothing")),
        "{found:#?}"
    );
}

#[test]
fn require_validation_is_off_by_default_and_shown_in_the_plan_when_on() {
    let config = load_str(FULL, Path::new("."), env).unwrap();
    assert!(!config.route("default").unwrap().rollout.as_ref().unwrap().require_validation);
    let text = FULL.replace("[routes.rollout]\n", "[routes.rollout]\nrequire_validation = true\n");
    let config = load_str(&text, Path::new("."), env).unwrap();
    assert!(config.route("default").unwrap().rollout.as_ref().unwrap().require_validation);
    assert!(config.to_string().contains("starts after a passing validation of the candidate"));
}

#[test]
fn shadow_caps_and_kept_diffs_are_read_and_checked() {
    let text = FULL.replace(
        "fallback = \"both\"",
        "fallback = \"both\"\nshadow_max_rps = 20\nshadow_max_usd_per_hour = 1.5\nshadow_keep_diffs = 50",
    );
    let config = load_str(&text, Path::new("."), env).unwrap();
    let settings = config.route("default").unwrap().shadow_settings;
    assert_eq!((settings.max_rps, settings.max_usd_per_hour, settings.keep_diffs), (Some(20.0), Some(1.5), 50));
    assert!(config.to_string().contains("(at most 20/s, at most $1.5/h, keeping 50 diffs)"));
    let found = problems(
        &FULL.replace("fallback = \"both\"", "fallback = \"both\"\nshadow_max_rps = 0\nshadow_keep_diffs = 5000"),
    );
    assert!(
        found.iter().any(|problem| problem.starts_with("routes[0].shadow_max_rps: 0 is not a positive")),
        "{found:#?}"
    );
    assert!(found.iter().any(|problem| problem.starts_with("routes[0].shadow_keep_diffs: 5000")), "{found:#?}");
}

#[test]
fn max_cost_ratio_is_accepted_now_that_it_is_evaluated() {
    let text = FULL.replace("max_error_rate = 5.0 }", "max_error_rate = 5.0, max_cost_ratio = 0.8 }");
    let config = load_str(&text, Path::new("."), env).unwrap();
    let plan = config.route("default").unwrap().rollout.as_ref().unwrap();
    assert_eq!(plan.steps[1].criteria.get(Criterion::MaxCostRatio), Some(0.8));
}

#[test]
fn invalid_toml_names_the_line() {
    let found = problems("[server\nlisten = 1");
    assert_eq!(found.len(), 1);
    assert!(found[0].contains("line 1"), "{found:?}");
}

#[test]
fn secrets_never_appear_in_the_printed_plan() {
    let config = load_str(FULL, Path::new("."), env).unwrap();
    let printed = format!("{config}\n{config:?}");
    for secret in ["sk-gateway-web", "admin-secret", "sk-upstream-secret"] {
        assert!(!printed.contains(secret), "{secret} leaked");
    }
    assert!(printed.contains("key from $OPENAI_API_KEY"));
}

#[test]
fn raw_criteria_read_every_key_of_the_table() {
    for &criterion in Criterion::ALL {
        let value: toml::Value = toml::from_str(&format!("{criterion} = 1.5")).unwrap();
        let parsed: raw::RawCriteria = value.try_into().unwrap();
        assert_eq!(parsed.written.get(criterion), Some(1.5), "{criterion}");
        assert_eq!(parsed.written.iter().count(), 1, "{criterion} set another slot");
    }
}

#[test]
fn every_criterion_in_the_table_is_parsed_validated_and_printed() {
    for &criterion in Criterion::ALL {
        // A budget counts requests: less than one is refused (its own test below).
        let value = if criterion.is_budget() { 75.0 } else { 0.75 };
        // A slow-request budget guards a latency criterion: refused alone (its own test).
        let guarded = if criterion == Criterion::MaxExcessSlowRequests { "max_latency_p95_ratio = 1.5, " } else { "" };
        let text = FULL.replace("max_error_rate = 5.0 }", &format!("{guarded}{criterion} = {value} }}"));
        let path = format!("routes[0].rollout.steps[1].{criterion}");
        // Needs a step that mirrors and a threshold in percent: its own tests above.
        if criterion == Criterion::MinShadowAgreement {
            continue;
        }
        if !criterion.is_evaluated() {
            let found = problems(&text);
            assert!(found.iter().any(|problem| problem.starts_with(&format!("{path}: not evaluated"))), "{found:#?}");
            continue;
        }
        let config = load_str(&text, Path::new("."), env).unwrap();
        let plan = config.route("default").unwrap().rollout.as_ref().unwrap();
        assert_eq!(plan.steps[1].criteria.get(criterion), Some(value), "{criterion}");
        let printed = config.to_string();
        assert!(printed.contains(&format!("; {}", criterion.summary(value))), "{criterion} not in {printed}");

        let limit = criterion.unit().limit();
        let found =
            problems(&FULL.replace("max_error_rate = 5.0 }", &format!("{guarded}{criterion} = {} }}", limit + 1.0)));
        let expected = format!("{path}: {} is not between 0 and {limit}", limit + 1.0);
        assert!(found.contains(&expected), "missing {expected:?} in {found:#?}");
    }
}

#[test]
fn unknown_criteria_are_refused_with_their_path_and_the_keys_of_the_table() {
    let found = problems(&FULL.replace("interval = \"1m\"", "interval = \"1m\"\nmax_latency_p99_ratio = 2"));
    let refusal = found
        .iter()
        .find(|problem| problem.starts_with("routes[0].rollout.max_latency_p99_ratio: unknown key (expected one of "))
        .unwrap_or_else(|| panic!("{found:#?}"));
    for key in raw::ROLLOUT_KEYS.iter().chain(Criterion::KEYS) {
        assert!(refusal.contains(key), "{key} missing from {refusal}");
    }
}

#[test]
fn durations_beyond_a_year_are_refused_with_their_key() {
    let text = FULL
        .replace("timeout = \"30s\"", "timeout = \"10000000000000000000s\"")
        .replace("interval = \"1m\"", "interval = \"400d\"");
    let found = problems(&text);
    for key in ["upstreams.official.timeout", "routes[0].rollout.interval"] {
        assert!(
            found.iter().any(|problem| problem.starts_with(key)
                && problem.contains("longer than the longest duration allowed (365d)")),
            "{key}: {found:#?}"
        );
    }
}

#[test]
fn secrets_with_surrounding_whitespace_or_control_characters_are_refused() {
    for value in ["sk-upstream-secret\n", " sk-upstream-secret", "sk-up\u{7}stream"] {
        let env = |name: &str| if name == "OPENAI_API_KEY" { Some(value.to_owned()) } else { env(name) };
        let found: Vec<String> = load_str(FULL, Path::new("/etc/cutover"), env)
            .err()
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            found.iter().any(|problem| problem.starts_with("upstreams.official.api_key_env")
                && problem.contains("OPENAI_API_KEY")
                && !problem.contains("sk-up")),
            "{value:?}: {found:#?}"
        );
    }
}

#[test]
fn credentials_in_a_base_url_are_refused_without_printing_them() {
    let text = FULL.replace("https://api.openai.com/v1", "https://user:hunter2@api.openai.com/v1");
    let found = problems(&text);
    let problem = found.iter().find(|problem| problem.starts_with("upstreams.official.base_url")).cloned();
    let problem = problem.unwrap_or_else(|| panic!("no base_url problem: {found:#?}"));
    assert!(problem.contains("api_key_env") && !problem.contains("hunter2"), "{problem}");
}

#[test]
fn connection_clocks_and_budgets_have_defaults_a_public_deployment_can_live_with() {
    let config = load_str(FULL, Path::new("/etc/cutover"), env).unwrap();
    let (proxy, admin) = (&config.server.proxy_connections, &config.server.admin_connections);
    assert_eq!(*proxy, ConnectionLimits::default());
    assert_eq!(proxy.header_timeout, std::time::Duration::from_secs(10));
    assert_eq!(proxy.idle_timeout, std::time::Duration::from_secs(75), "nginx's keepalive_timeout");
    assert_eq!(admin.max_connections, ADMIN_MAX_CONNECTIONS);
    assert_eq!(admin.header_timeout, proxy.header_timeout, "the admin port keeps the same clocks");
    assert_eq!(proxy.when_full, WhenFull::Wait, "a full proxy port leaves new clients in the backlog");
    assert_eq!(admin.when_full, WhenFull::CloseLongestIdle, "idle connections cannot keep probes out");
    assert_eq!(config.server.body_timeouts, BodyTimeouts::default());
    let shown = config.to_string();
    assert!(shown.contains("api at most 1024, admin at most 64; headers within 10s"), "{shown}");
}

#[test]
fn connection_keys_are_read_into_each_listener() {
    let text = FULL.replace(
        "max_body_mb = 2",
        "max_body_mb = 2\nheader_timeout = \"1s\"\nbody_timeout = \"30s\"\nbody_idle_timeout = \"2s\"\n\
         max_connections = 8\nadmin_max_connections = 4\nhttp2_keepalive = \"5s\"\nhttp2_max_streams = 16\n\
         drain_timeout = \"1m\"\nidle_timeout = \"30s\"",
    );
    let config = load_str(&text, Path::new("/etc/cutover"), env).unwrap();
    let proxy = config.server.proxy_connections;
    let seconds = std::time::Duration::from_secs;
    assert_eq!(
        proxy,
        ConnectionLimits {
            header_timeout: seconds(1),
            max_connections: 8,
            http2_keepalive: seconds(5),
            http2_max_streams: 16,
            idle_timeout: seconds(30),
            drain_timeout: seconds(60),
            when_full: WhenFull::Wait,
        }
    );
    let admin = ConnectionLimits { max_connections: 4, when_full: WhenFull::CloseLongestIdle, ..proxy };
    assert_eq!(config.server.admin_connections, admin);
    assert_eq!(config.server.body_timeouts, BodyTimeouts { idle: seconds(2), total: seconds(30) });
}

#[test]
fn admission_keys_are_read_and_max_inflight_is_derived_when_absent() {
    let config = load_str(FULL, Path::new("/etc/cutover"), env).unwrap();
    assert_eq!(config.server.admission, AdmissionLimits { max_inflight: None, per_connection: 32 });
    let text = FULL.replace("max_body_mb = 2", "max_body_mb = 2\nmax_inflight = 5000\nmax_inflight_per_connection = 8");
    let config = load_str(&text, Path::new("/etc/cutover"), env).unwrap();
    assert_eq!(config.server.admission, AdmissionLimits { max_inflight: Some(5000), per_connection: 8 });
    let text = FULL.replace("max_body_mb = 2", "max_body_mb = 2\nmax_inflight = 0\nmax_inflight_per_connection = -3");
    let found = problems(&text);
    for (key, value) in [("server.max_inflight", "0"), ("server.max_inflight_per_connection", "-3")] {
        let expected = format!("{key}: {value} is not between 1 and 1000000");
        assert!(found.iter().any(|problem| problem.starts_with(&expected)), "{expected} not in {found:#?}");
    }
}

#[test]
fn connection_keys_out_of_bounds_are_refused_with_their_key_path() {
    let text = FULL.replace(
        "max_body_mb = 2",
        "max_body_mb = 2\nheader_timeout = \"0s\"\nbody_timeout = \"2h\"\nbody_idle_timeout = \"soon\"\n\
         max_connections = 0\nadmin_max_connections = -1\nhttp2_keepalive = \"10ms\"\nhttp2_max_streams = 0\n\
         idle_timeout = \"2h\"",
    );
    let found = problems(&text);
    for key in [
        "server.header_timeout",
        "server.body_timeout",
        "server.body_idle_timeout",
        "server.max_connections",
        "server.admin_max_connections",
        "server.http2_keepalive",
        "server.http2_max_streams",
        "server.idle_timeout",
    ] {
        assert!(found.iter().any(|problem| problem.starts_with(key)), "no problem for {key}: {found:#?}");
    }
}

mod fuzz {
    //! The loader against careless edits: whatever the file says, an answer, never a panic.

    use proptest::prelude::*;

    use super::*;

    /// A value an operator could type where another was expected.
    fn careless_value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("\"\"".to_owned()),
            Just("-1".to_owned()),
            Just("1e309".to_owned()),
            Just("\"99999999999999999999999d\"".to_owned()),
            Just("[]".to_owned()),
            Just("{}".to_owned()),
            "[0-9]{1,20}".prop_map(|digits| digits),
            "\"[a-z0-9 .:/*-]{0,16}\"".prop_map(|text| text),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1_000))]

        /// Any line of a full config dropped, doubled or given another value: the loader
        /// answers a config or a list of problems, each naming where it is.
        #[test]
        fn an_edited_config_is_loaded_or_refused_with_named_problems(
            line in 0usize..60,
            edit in 0u8..3,
            value in careless_value(),
        ) {
            let lines: Vec<&str> = FULL.lines().collect();
            let line = line % lines.len();
            let mut edited: Vec<String> = lines.iter().map(|line| (*line).to_owned()).collect();
            match edit {
                0 => { edited.remove(line); }
                1 => edited.insert(line, lines[line].to_owned()),
                _ => {
                    if let Some((key, _)) = lines[line].split_once(" = ") {
                        edited[line] = format!("{key} = {value}");
                    }
                }
            }
            let text = edited.join("\n");
            if let Err(problems) = load_str(&text, Path::new("/etc/cutover"), env) {
                prop_assert!(!problems.is_empty());
                for problem in problems.iter().map(ToString::to_string) {
                    prop_assert!(!problem.contains("sk-upstream-secret"), "a secret in {problem}");
                    prop_assert!(!problem.trim().is_empty());
                }
            }
        }

        /// Arbitrary text is refused (or, rarely, a config), never a panic.
        #[test]
        fn arbitrary_text_is_refused_never_a_panic(text in "\\PC{0,200}") {
            let _ = load_str(&text, Path::new("/etc/cutover"), env);
        }
    }
}

#[test]
fn a_step_with_neither_criteria_nor_gates_is_refused() {
    let text = FULL.replace(
        "  { weight = 100, min_duration = \"72h\", min_requests = 500000, max_error_rate = 1.0 },",
        "  { weight = 100 },",
    );
    let found = problems(&text.replace("max_error_rate_increase = 1.0\n", ""));
    assert!(
        found.iter().any(|problem| problem.starts_with("routes[0].rollout.steps[2]: neither criteria nor gates")),
        "{found:#?}"
    );
    assert!(problems(&text).is_empty(), "the rollout's own criteria apply to the step: {:#?}", problems(&text));
}

#[test]
fn a_connection_cap_is_read_per_upstream_unset_by_default_and_refused_out_of_bounds_by_key() {
    let text = FULL.replace("[upstreams.relay]\n", "[upstreams.relay]\nmax_connections = 64\n");
    let config = load_str(&text, Path::new("/etc/cutover"), env).unwrap();
    let cap = |name: &str| config.upstreams[config.upstream_index(name).unwrap()].max_connections;
    assert_eq!((cap("official"), cap("relay")), (None, Some(64)));
    assert!(config.to_string().contains("connections: 64 open at most"), "{config}");
    for bad in ["0", "-1", "2000000", "\"many\""] {
        let text = FULL.replace("[upstreams.relay]\n", &format!("[upstreams.relay]\nmax_connections = {bad}\n"));
        let found = problems(&text);
        assert!(found.iter().any(|problem| problem.contains("upstreams.relay.max_connections")), "{bad}: {found:#?}");
    }
}

#[test]
fn connect_pacing_is_read_per_upstream_with_a_default_and_refused_out_of_bounds_by_key() {
    let text = FULL.replace("[upstreams.relay]\n", "[upstreams.relay]\nmax_connecting = 4\n");
    let config = load_str(&text, Path::new("/etc/cutover"), env).unwrap();
    let connecting = |name: &str| config.upstreams[config.upstream_index(name).unwrap()].max_connecting;
    assert_eq!((connecting("official"), connecting("relay")), (crate::MAX_CONNECTING, 4));
    assert!(config.to_string().contains("(4 connects at once)"), "{config}");
    for bad in ["0", "-3", "100000"] {
        let text = FULL.replace("[upstreams.relay]\n", &format!("[upstreams.relay]\nmax_connecting = {bad}\n"));
        let found = problems(&text);
        assert!(found.iter().any(|problem| problem.starts_with("upstreams.relay.max_connecting")), "{bad}: {found:#?}");
    }
}

#[test]
fn an_upstreams_ca_file_is_read_against_the_config_folder_and_refused_by_key_when_it_holds_no_certificate() {
    let folder = std::env::temp_dir().join(format!("cutover-ca-file-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    // PEM framing around base64: what is read here; rustls parses the DER when it connects.
    let certificate = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n";
    std::fs::write(folder.join("internal-ca.pem"), certificate.repeat(2)).unwrap();
    std::fs::write(
        folder.join("key.pem"),
        "-----BEGIN PRIVATE KEY-----\nMIIBszCCAVmgAwIBAgIU\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let with_ca =
        |file: &str| FULL.replace("[upstreams.relay]\n", &format!("[upstreams.relay]\nca_file = \"{file}\"\n"));

    let config = load_str(&with_ca("internal-ca.pem"), &folder, env).unwrap();
    let relay = &config.upstreams[config.upstream_index("relay").unwrap()];
    assert_eq!(relay.extra_roots.len(), 2);
    assert_eq!(relay.ca_file.as_deref(), Some(folder.join("internal-ca.pem").as_path()));
    let official = &config.upstreams[config.upstream_index("official").unwrap()];
    assert!(official.extra_roots.is_empty() && official.ca_file.is_none());

    for (file, says) in [("key.pem", "holds no PEM certificate"), ("missing.pem", "cannot read certificates from")] {
        let found = load_str(&with_ca(file), &folder, env).unwrap_err();
        let found: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert!(
            found.iter().any(|problem| problem.starts_with("upstreams.relay.ca_file")
                && problem.contains(says)
                && problem.contains(file)),
            "{file}: {found:#?}"
        );
    }
    std::fs::remove_dir_all(&folder).unwrap();
}

#[test]
fn an_upstreams_account_identity_is_its_own_and_must_be_a_header_value() {
    let text = FULL
        .replace("[upstreams.relay]\n", "[upstreams.relay]\norganization = \"org-relay\"\nproject = \"proj_relay\"\n");
    let config = load_str(&text, Path::new("/etc/cutover"), env).unwrap();
    let relay = &config.upstreams[config.upstream_index("relay").unwrap()];
    assert_eq!(relay.organization.as_ref().unwrap(), "org-relay");
    assert_eq!(relay.project.as_ref().unwrap(), "proj_relay");
    let text = FULL.replace("[upstreams.relay]\n", "[upstreams.relay]\norganization = \"org relay\\n\"\n");
    let found = problems(&text);
    assert!(found.iter().any(|problem| problem.starts_with("upstreams.relay.organization")), "{found:#?}");
}

#[test]
fn a_harm_budget_below_one_request_is_refused_and_a_derived_one_is_printed() {
    let found = problems(&FULL.replace("max_error_rate = 5.0 }", "max_excess_failures = 0.5 }"));
    let expected = "routes[0].rollout.steps[1].max_excess_failures: 0.5 would fail every step at its first look";
    assert!(found.iter().any(|problem| problem.starts_with(expected)), "{found:#?}");
    let text = FULL.replace("max_error_rate = 5.0 }", "max_error_rate_increase = 0.5 }");
    let config = load_str(&text, Path::new("."), env).unwrap();
    let step = &config.route("default").unwrap().rollout.as_ref().unwrap().steps[1];
    assert!(step.max_duration.is_some(), "{step:?}");
    let printed = config.to_string();
    let derived = "; excess failures ≤ 2 × 0.5pp of the requests expected by";
    assert!(printed.contains(derived), "{printed}");
}

#[test]
fn a_slow_request_budget_without_a_latency_criterion_is_refused_and_a_derived_one_is_printed() {
    let found = problems(&FULL.replace("max_error_rate = 5.0 }", "max_excess_slow_requests = 100 }"));
    let expected = "routes[0].rollout.steps[1].max_excess_slow_requests: bounds the slowness a latency criterion \
                    tolerates, and the step has none (max_latency_p50_ratio, max_latency_p95_ratio, max_ttft_p95_ratio)";
    assert!(found.iter().any(|problem| problem.starts_with(expected)), "{found:#?}");
    let text = FULL.replace("max_error_rate = 5.0 }", "max_latency_p95_ratio = 1.2 }");
    let printed = load_str(&text, Path::new("."), env).unwrap().to_string();
    let derived =
        "; excess slow requests ≤ 2 × what a candidate at each latency limit adds, of the requests expected by";
    assert!(printed.contains(derived), "{printed}");
    let set = FULL.replace("max_error_rate = 5.0 }", "max_latency_p95_ratio = 1.2, max_excess_slow_requests = 100 }");
    let printed = load_str(&set, Path::new("."), env).unwrap().to_string();
    assert!(printed.contains("excess slow requests ≤ 100 requests beyond the primary's share"), "{printed}");
    assert!(!printed.contains("excess slow requests ≤ 2 ×"), "{printed}");
}

#[test]
fn max_duration_shorter_than_min_duration_and_unknown_on_undecided_are_refused_with_their_key() {
    let found = problems(
        &FULL
            .replace(
                "min_duration = \"1h\", min_requests = 500 }",
                "min_duration = \"1h\", max_duration = \"30m\", min_requests = 500 }",
            )
            .replace("interval = \"1m\"", "interval = \"1m\"\non_undecided = \"wait\""),
    );
    for (key, says) in [
        ("routes[0].rollout.steps[0].max_duration", "\"30m\" is shorter than the step's min_duration (1h)"),
        ("routes[0].rollout.on_undecided", "\"wait\" is not \"pause\", \"rollback\" or \"advance\""),
    ] {
        assert!(found.iter().any(|problem| problem.starts_with(key) && problem.contains(says)), "{key}: {found:#?}");
    }
}
