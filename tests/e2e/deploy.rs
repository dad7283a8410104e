//! `deploy/systemd/cutover.service`, checked as far as this machine allows (no systemd
//! runs here): `systemd-analyze verify` accepts it without a warning (an unknown or
//! misspelt key is only a warning there, so any output fails), with its binary path
//! pointing at the binary under test; and what it promises matches the gateway: the
//! config path `serve` reads, SIGHUP for reload, a stop timeout above the drain, and a
//! descriptor limit above what the default budgets need. And
//! `deploy/kubernetes/cutover.yaml`: every document parses, its configuration passes
//! `cutover check`, and every port, probe path, variable and selector it names is one
//! the binary serves or the pods carry.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::binary::{BIN, Scratch};

fn unit() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/systemd/cutover.service");
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The value of `key=` in the unit (the first one).
fn value<'a>(unit: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}=");
    unit.lines().find_map(|line| line.strip_prefix(&prefix)).unwrap_or_else(|| panic!("no {key}= in the unit"))
}

#[test]
fn the_systemd_unit_verifies_without_a_warning() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        panic!("systemd-analyze is missing: apt-get install systemd (.ci/deps/deploy.sh)");
    }
    let scratch = Scratch::new("systemd");
    let file = scratch.write("cutover.service", &unit().replace("/usr/local/bin/cutover", BIN));
    let output = Command::new("systemd-analyze").arg("verify").arg(&file).output().unwrap();
    let said = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && said.trim().is_empty(), "systemd-analyze verify ({}):\n{said}", output.status);
}

#[test]
fn the_systemd_unit_starts_reloads_and_stops_the_gateway_as_it_expects() {
    let unit = unit();
    assert_eq!(value(&unit, "ExecStart"), "/usr/local/bin/cutover serve -c /etc/cutover/cutover.toml");
    assert_eq!(value(&unit, "ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(value(&unit, "KillSignal"), "SIGTERM");
    let stop: u64 = value(&unit, "TimeoutStopSec").trim_end_matches('s').parse().unwrap();
    assert!(stop > 30, "TimeoutStopSec={stop}s must exceed the default drain_timeout (30 s)");
    let files: u64 = value(&unit, "LimitNOFILE").parse().unwrap();
    assert!(files >= 2 * 1024 + 64 + 64, "LimitNOFILE={files} is under what the default budgets need");
    // The config path is the one `serve` is given: the binary takes the flags as written.
    let help = Command::new(BIN).args(["serve", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("--config"), "serve has no --config");
}

/// The documents of `deploy/kubernetes/cutover.yaml`, read by PyYAML (a YAML parser we
/// did not write), as JSON.
fn kubernetes_documents() -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/cutover.yaml");
    let script = "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))";
    let output = Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .output()
        .unwrap_or_else(|error| panic!("cannot run python3: {error}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} does not parse (or PyYAML is missing: pip install pyyaml):\n{stderr}",
        path.display()
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn document<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    documents.iter().find(|document| document["kind"] == kind).unwrap_or_else(|| panic!("no {kind} document"))
}

/// The port of `listen = "HOST:PORT"`-style `key` in the TOML text.
fn toml_port(toml: &str, key: &str) -> u64 {
    let prefix = format!("{key} = \"");
    let address = toml.lines().find_map(|line| line.trim().strip_prefix(&prefix)).unwrap_or_else(|| panic!("no {key}"));
    address.trim_end_matches('"').rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_kubernetes_manifests_name_only_ports_paths_and_settings_the_binary_serves() {
    let documents = kubernetes_documents();
    let kinds: Vec<&str> = documents.iter().filter_map(|document| document["kind"].as_str()).collect();
    assert_eq!(kinds, ["ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "ServiceMonitor"]);

    // The configuration is one `cutover check` accepts, given the variables it names.
    let toml = document(&documents, "ConfigMap")["data"]["cutover.toml"].as_str().unwrap().to_owned();
    let scratch = Scratch::new("kubernetes");
    let config = scratch.write("cutover.toml", &toml);
    let variables: Vec<&str> =
        toml.lines().filter_map(|line| line.split("_env = \"").nth(1)?.split('"').next()).collect();
    let mut env: Vec<(&str, &str)> = variables.iter().map(|name| (*name, "sk-placeholder")).collect();
    env.retain(|(name, _)| *name != "CUTOVER_DATABASE_URL");
    env.push(("CUTOVER_DATABASE_URL", "postgres://cutover:secret@db:5432/cutover"));
    let checked = crate::check::check(&config, &env);
    assert!(checked.status.success(), "cutover check: {}", String::from_utf8_lossy(&checked.stderr));
    for variable in &variables {
        assert!(
            include_str!("../../deploy/kubernetes/cutover.yaml").contains(&format!("{variable}=")),
            "the Secret command lacks {variable}"
        );
    }

    let deployment = document(&documents, "Deployment");
    let pod = &deployment["spec"]["template"];
    let container = &pod["spec"]["containers"][0];
    assert_eq!(container["image"], format!("localhost/cutover:{}", env!("CARGO_PKG_VERSION")));
    assert_eq!(container["args"], serde_json::json!(["serve", "-c", "/etc/cutover/cutover.toml"]));
    let port_of = |name: &str| {
        container["ports"].as_array().unwrap().iter().find(|port| port["name"] == name).unwrap()["containerPort"]
            .as_u64()
    };
    assert_eq!(port_of("proxy"), Some(toml_port(&toml, "listen")));
    assert_eq!(port_of("admin"), Some(toml_port(&toml, "admin_listen")));
    assert_eq!(container["livenessProbe"]["httpGet"], serde_json::json!({"path": "/healthz", "port": "admin"}));
    assert_eq!(container["readinessProbe"]["httpGet"], serde_json::json!({"path": "/readyz", "port": "admin"}));
    for variable in container["env"].as_array().unwrap() {
        assert_eq!(
            variable["name"], "CUTOVER_LOG_FORMAT",
            "an environment variable the binary does not read: {variable}"
        );
    }
    let grace = pod["spec"]["terminationGracePeriodSeconds"].as_u64().unwrap();
    let pause = container["lifecycle"]["preStop"]["sleep"]["seconds"].as_u64().unwrap();
    assert!(grace > pause + 30, "terminationGracePeriodSeconds {grace} ≤ preStop {pause} s + drain_timeout 30 s");
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["spec"]["securityContext"]["runAsUser"], 65532, "the image's user (Containerfile)");
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(container["securityContext"]["allowPrivilegeEscalation"], false);
    assert!(container["resources"]["requests"].is_object() && container["resources"]["limits"].is_object());

    // Selectors find the pods; the Service and the ServiceMonitor use the ports by name.
    let labels = &pod["metadata"]["labels"];
    assert_eq!(&deployment["spec"]["selector"]["matchLabels"], labels);
    assert_eq!(&document(&documents, "Service")["spec"]["selector"], labels);
    assert_eq!(&document(&documents, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"], labels);
    let monitor = document(&documents, "ServiceMonitor");
    assert_eq!(&monitor["spec"]["selector"]["matchLabels"], labels);
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "admin");
    for port in document(&documents, "Service")["spec"]["ports"].as_array().unwrap() {
        assert!(port_of(port["targetPort"].as_str().unwrap()).is_some(), "Service targets an unknown port: {port}");
    }

    // The binary serves every path the probes and the monitor name, on the admin port.
    let mock = crate::binary::Mock::start(&scratch, "primary", &[], &[]).await;
    let config = crate::configs::GatewayToml::new()
        .upstream("primary", &mock.base_url())
        .route("default", "primary", None)
        .build();
    let gateway = crate::binary::Gateway::start(&scratch, &config, &[]).await;
    for path in ["/healthz", "/readyz", monitor["spec"]["endpoints"][0]["path"].as_str().unwrap()] {
        let reply = crate::binary::get(&gateway.admin_url(path), &[]).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    }
}
