//! What a name in the configuration may be. Route, upstream, alert and notifier names
//! are written where free text breaks things or cannot be read back: Prometheus label
//! values, the `x-cutover-route` and `x-cutover-upstream` response headers, admin API
//! paths (`/admin/rollouts/{route}`, matched as sent, never percent-decoded), the rule
//! file `cutover alerts export` writes (PromQL inside YAML) and log lines. One rule
//! serves them all: 1 to 64 ASCII letters, digits, '-', '_' or '.'. A fleet's
//! `state.instance` (a label and a database key, never a path) may also hold ':'.

use super::validate::Validator;

/// The longest name: a label or a header, not a description.
pub const MAX_NAME_LEN: usize = 64;

/// Whether `text` can name a route, an upstream, an alert or a notifier.
pub fn is_name(text: &str) -> bool {
    is_made_of(text, b"-_.")
}

/// Whether `text` can name this gateway in a fleet (`state.instance`).
pub fn is_instance_name(text: &str) -> bool {
    is_made_of(text, b"-_.:")
}

fn is_made_of(text: &str, punctuation: &[u8]) -> bool {
    (1..=MAX_NAME_LEN).contains(&text.len())
        && text.bytes().all(|byte| byte.is_ascii_alphanumeric() || punctuation.contains(&byte))
}

impl Validator<'_> {
    /// Records a problem at `path` (the key that gives the name) unless `name` is one.
    pub(super) fn name(&mut self, name: &str, path: impl Into<String>) {
        if !is_name(name) {
            self.problem(
                path,
                format!(
                    "{name:?} cannot be a name: use 1 to {MAX_NAME_LEN} ASCII letters, digits, '-', '_' or '.' \
                     (names are metric labels, response headers and admin API paths)"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::load_str;
    use crate::testing::two_upstreams_toml;

    /// Names that would break a label, a header, a path or a line of the rule file.
    const REFUSED: [&str; 9] = ["", "we\"b", "we\\b", "we\nb", "we\tb", "we b", "we/b", "wéb", "web:1"];

    fn problems(text: &str) -> Vec<String> {
        let env = |_: &str| None;
        load_str(text, Path::new("/tmp"), env).err().unwrap_or_default().iter().map(ToString::to_string).collect()
    }

    /// The configuration with one more route, upstream, alert or notifier named `name`
    /// (written as a TOML string: Rust's quoting of these names is TOML's), and the key
    /// a problem with it must name.
    fn with_name(kind: &str, name: &str) -> (String, String) {
        let quoted = format!("{name:?}");
        match kind {
            "route" => (
                two_upstreams_toml(
                    "",
                    &format!("[[routes]]\nname = {quoted}\nmodels = [\"m\"]\nprimary = \"primary\""),
                ),
                "routes[1].name".to_owned(),
            ),
            "upstream" => (
                two_upstreams_toml(&format!("[upstreams.{quoted}]\nbase_url = \"http://127.0.0.1:9/v1\""), ""),
                format!("upstreams.{quoted}"),
            ),
            "alert" => (
                two_upstreams_toml(
                    &format!("[[alerts]]\nname = {quoted}\nmetric = \"error_rate\"\nop = \">\"\nthreshold = 5.0"),
                    "",
                ),
                "alerts[0].name".to_owned(),
            ),
            _ => (
                two_upstreams_toml(&format!("[[notify]]\nname = {quoted}\nurl = \"http://127.0.0.1:9/hook\""), ""),
                "notify[0].name".to_owned(),
            ),
        }
    }

    #[test]
    fn names_are_letters_digits_dashes_underscores_and_dots_up_to_64() {
        for name in ["default", "gpt-4.1_relay", "A", &"x".repeat(MAX_NAME_LEN)] {
            assert!(is_name(name), "{name:?}");
        }
        for name in REFUSED.iter().copied().chain([&*"x".repeat(MAX_NAME_LEN + 1)]) {
            assert!(!is_name(name), "{name:?}");
        }
        assert!(is_instance_name("gw-1:8080") && !is_instance_name("gw 1"));
    }

    #[test]
    fn a_route_upstream_alert_or_notifier_name_that_cannot_be_a_label_is_refused_by_key_and_value() {
        for kind in ["route", "upstream", "alert", "notifier"] {
            for name in REFUSED {
                let (text, key) = with_name(kind, name);
                let expected = format!("{key}: {name:?} cannot be a name: use 1 to 64 ASCII letters");
                let found = problems(&text);
                assert!(found.iter().any(|problem| problem.starts_with(&expected)), "{expected}\nnot in {found:#?}");
            }
        }
    }

    #[test]
    fn well_formed_names_of_every_kind_load() {
        for kind in ["route", "upstream", "alert", "notifier"] {
            let (text, _) = with_name(kind, "gpt-4.1_relay");
            assert_eq!(problems(&text), Vec::<String>::new(), "{kind}");
        }
    }
}
