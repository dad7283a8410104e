//! `cutover rollout`: the operator's commands against a running gateway, through its
//! admin API with the token the config names; refusals exit 1 and say why.

use serde_json::Value;

use crate::binary::{Gateway, Scratch};
use crate::served::{ADMIN_TOKEN, GATEWAY_ENV, rollout, serve_config, slow_plan, two_mocks};

#[tokio::test]
async fn the_rollout_cli_drives_a_running_gateway_and_explains_refusals() {
    let scratch = Scratch::new("rollout-cli");
    let (primary, candidate) = two_mocks(&scratch, &[]).await;
    let config = serve_config(&primary, &candidate).section(&slow_plan("1h")).build();
    let gateway = Gateway::start(&scratch, &config, &GATEWAY_ENV).await;
    let path = scratch.path().join("cutover.toml").display().to_string();
    let cli = |args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"));
        command.arg("rollout").args(args).args(["-c", &path]).env_clear().env("CUTOVER_ADMIN_TOKEN", ADMIN_TOKEN);
        command.output().expect("cutover rollout runs")
    };
    let paused = cli(&["pause"]);
    assert_eq!(paused.status.code(), Some(1), "pausing a pending rollout is refused");
    assert!(String::from_utf8_lossy(&paused.stderr).contains("409"), "{}", String::from_utf8_lossy(&paused.stderr));
    assert!(cli(&["resume"]).status.success());
    assert!(cli(&["promote"]).status.success());
    let status = cli(&["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("phase progressing") && text.contains("weight 100%"), "{text}");
    assert!(text.contains("step 2/2"), "{text}");
    assert!(
        text.contains("cost over the last") && text.contains("per success"),
        "the status ends with the costs: {text}"
    );
    let json = cli(&["status", "--json"]);
    let views: Value = serde_json::from_slice(&json.stdout).expect("status --json is JSON");
    assert_eq!(views[0]["events"][0]["kind"], "promote");
    assert!(views[0]["events"][0]["actor"].as_str().unwrap().contains("cli"));
    assert!(cli(&["set-weight", "2.5"]).status.success());
    assert_eq!(rollout(&gateway).await["weight"], 2.5);
    assert!(cli(&["abort"]).status.success());
    assert_eq!(rollout(&gateway).await["phase"], "rolled_back");
}
