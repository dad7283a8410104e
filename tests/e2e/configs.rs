//! The TOML text of every gateway configuration the tests serve, built from the parts a
//! test cares about (upstreams on given URLs, routes, keys, admin token, state file,
//! rollout plan) so that no test carries its own copy of the common sections.

/// A gateway configuration under construction. Sections come out in a fixed order:
/// `[server]`, `[auth]`, `[admin]`, `[state]`, the upstreams, the routes, then whatever
/// [`GatewayToml::section`] appended (plans, breakers, notifiers), in that order.
#[derive(Debug, Clone, Default)]
pub struct GatewayToml {
    server: Vec<String>,
    gateway_keys: Vec<(String, String)>,
    admin_token_env: Option<String>,
    state_path: Option<String>,
    /// `(name, lines)`: each upstream's keys, `base_url` first.
    upstreams: Vec<(String, Vec<String>)>,
    /// `(name, lines)`: each route's keys, `name`, `primary` and `candidate` first.
    routes: Vec<(String, Vec<String>)>,
    sections: Vec<String>,
}

impl GatewayToml {
    pub fn new() -> GatewayToml {
        GatewayToml::default()
    }

    /// Upstreams `primary` and `candidate` at the given base URLs and one route `default`
    /// between them: the shape of almost every test.
    pub fn two_upstreams(primary: &str, candidate: &str) -> GatewayToml {
        GatewayToml::new().upstream("primary", primary).upstream("candidate", candidate).route(
            "default",
            "primary",
            Some("candidate"),
        )
    }

    /// A line of the `[server]` section, e.g. `max_body_mb = 1`.
    pub fn server(mut self, line: &str) -> GatewayToml {
        self.server.push(line.to_owned());
        self
    }

    /// Requires gateway keys: one named `name`, read from `$key_env`.
    pub fn gateway_key(mut self, name: &str, key_env: &str) -> GatewayToml {
        self.gateway_keys.push((name.to_owned(), key_env.to_owned()));
        self
    }

    /// Opens the admin API to the bearer token in `$token_env`.
    pub fn admin_token_env(mut self, token_env: &str) -> GatewayToml {
        self.admin_token_env = Some(token_env.to_owned());
        self
    }

    /// The state file, relative to the config file.
    pub fn state(mut self, path: &str) -> GatewayToml {
        self.state_path = Some(path.to_owned());
        self
    }

    pub fn upstream(mut self, name: &str, base_url: &str) -> GatewayToml {
        self.upstreams.push((name.to_owned(), vec![format!("base_url = \"{base_url}\"")]));
        self
    }

    /// Adds `line` (e.g. `api_key_env = "KEY"`) to the upstream `name`.
    pub fn upstream_line(mut self, name: &str, line: &str) -> GatewayToml {
        let (_, lines) = self
            .upstreams
            .iter_mut()
            .find(|(known, _)| known == name)
            .unwrap_or_else(|| panic!("no upstream {name:?} in the test config"));
        lines.push(line.to_owned());
        self
    }

    /// Adds `line` to every upstream, e.g. the same timeout for all.
    pub fn every_upstream(mut self, line: &str) -> GatewayToml {
        for (_, lines) in &mut self.upstreams {
            lines.push(line.to_owned());
        }
        self
    }

    pub fn route(mut self, name: &str, primary: &str, candidate: Option<&str>) -> GatewayToml {
        let mut lines = vec![format!("name = \"{name}\""), format!("primary = \"{primary}\"")];
        lines.extend(candidate.map(|candidate| format!("candidate = \"{candidate}\"")));
        self.routes.push((name.to_owned(), lines));
        self
    }

    /// Adds `line` (e.g. `sticky = "header:x-user-id"`) to the route `name`.
    pub fn route_line(mut self, name: &str, line: &str) -> GatewayToml {
        let (_, lines) = self
            .routes
            .iter_mut()
            .find(|(known, _)| known == name)
            .unwrap_or_else(|| panic!("no route {name:?} in the test config"));
        lines.push(line.to_owned());
        self
    }

    /// Appends TOML after the routes: a `[routes.rollout]` plan (it belongs to the last
    /// route), an `[upstreams.NAME.breaker]`, `[[notify]]`, …
    pub fn section(mut self, toml: &str) -> GatewayToml {
        self.sections.push(toml.to_owned());
        self
    }

    pub fn build(&self) -> String {
        let mut toml = String::new();
        if !self.server.is_empty() {
            toml += &format!("[server]\n{}\n\n", self.server.join("\n"));
        }
        if !self.gateway_keys.is_empty() {
            let keys: Vec<String> = self
                .gateway_keys
                .iter()
                .map(|(name, key_env)| format!("{{ name = \"{name}\", key_env = \"{key_env}\" }}"))
                .collect();
            toml += &format!("[auth]\nkeys = [{}]\n\n", keys.join(", "));
        }
        if let Some(token_env) = &self.admin_token_env {
            toml += &format!("[admin]\ntoken_env = \"{token_env}\"\n\n");
        }
        if let Some(path) = &self.state_path {
            toml += &format!("[state]\npath = \"{path}\"\n\n");
        }
        for (name, lines) in &self.upstreams {
            toml += &format!("[upstreams.{name}]\n{}\n\n", lines.join("\n"));
        }
        for (_, lines) in &self.routes {
            toml += &format!("[[routes]]\n{}\n\n", lines.join("\n"));
        }
        for section in &self.sections {
            toml += section;
            toml += "\n";
        }
        toml
    }
}

#[test]
fn the_builder_writes_a_config_the_gateway_accepts() {
    let text = GatewayToml::two_upstreams("http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1")
        .server("max_body_mb = 1")
        .gateway_key("app", "GATEWAY_KEY")
        .admin_token_env("ADMIN_TOKEN")
        .state("state.db")
        .upstream_line("candidate", "api_key_env = \"UPSTREAM_KEY\"")
        .every_upstream("idle_timeout = \"500ms\"")
        .route_line("default", "sticky = \"header:x-user-id\"")
        .section("[routes.rollout]\nsteps = [{ weight = 10, min_duration = \"1h\", min_requests = 10 }]\n")
        .build();
    let dir = std::env::temp_dir();
    let config = cutover_config::load_str(&text, &dir, crate::support::env)
        .unwrap_or_else(|problems| panic!("{problems:#?}\n{text}"));
    let shown = config.to_string();
    for expected in ["primary", "candidate", "default", "UPSTREAM_KEY", "app"] {
        assert!(shown.contains(expected), "the loaded config lacks {expected:?}:\n{shown}\nfrom\n{text}");
    }
}
