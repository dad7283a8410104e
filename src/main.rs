//! The `cutover` command line.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// `cutover --version`: the crate's version and the commit it was built from (`build.rs`).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("CUTOVER_COMMIT"), ")");

#[derive(Parser)]
#[command(
    name = "cutover",
    version = VERSION,
    about = "Move LLM traffic from one OpenAI-compatible upstream to another, safely."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines are written (default: `CUTOVER_LOG_FORMAT`, else text). Which
    /// events: `CUTOVER_LOG`, else `RUST_LOG` (a level or `warn,cutover_proxy=debug`).
    #[arg(long, global = true, value_enum)]
    log_format: Option<cutover::logging::LogFormat>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (proxy port + admin port).
    Serve {
        #[arg(short, long, default_value = "cutover.toml")]
        config: PathBuf,
        /// Start over: move the existing state file aside (renamed with a UTC timestamp
        /// suffix, never deleted) and begin every route at pending 0%.
        #[arg(long)]
        reset_state: bool,
    },
    /// Validate the configuration and print the resolved plan; exit 2 on error.
    Check {
        #[arg(short, long, default_value = "cutover.toml")]
        config: PathBuf,
    },
    /// Run a simulated OpenAI-compatible upstream.
    Mock(cutover::mock::MockArgs),
    /// Drive a running gateway's rollout through its admin API.
    Rollout {
        #[command(subcommand)]
        verb: RolloutVerb,
        /// The route (default: every route for status, the first route otherwise).
        #[arg(long, global = true)]
        route: Option<String>,
        #[arg(short, long, global = true, default_value = "cutover.toml")]
        config: PathBuf,
        /// Print the gateway's JSON answer instead of a summary.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Alert rules: their state on a running gateway, a test notification, an export.
    Alerts {
        #[command(subcommand)]
        verb: AlertsVerb,
        #[arg(short, long, global = true, default_value = "cutover.toml")]
        config: PathBuf,
        /// Print the gateway's JSON answer instead of a summary.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Spend per arm of a running gateway, and the monthly projection all on the candidate.
    Cost {
        /// One route (default: every route).
        #[arg(long)]
        route: Option<String>,
        /// The span to report, up to 24h.
        #[arg(long, default_value = "24h")]
        since: String,
        #[arg(short, long, default_value = "cutover.toml")]
        config: PathBuf,
        /// Print the gateway's JSON answer instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// The shadow comparison of a running gateway.
    Shadow {
        #[command(subcommand)]
        verb: ShadowVerb,
        #[arg(short, long, global = true, default_value = "cutover.toml")]
        config: PathBuf,
        /// Print the gateway's JSON answer instead of a summary.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Check what an upstream can and cannot do, and whether it is honest (exit 1 unless
    /// every required check passes).
    Validate(cutover::cli::validate::ValidateArgs),
    /// The fleet of gateways sharing a PostgreSQL state: leader, instances, reports.
    Fleet {
        #[command(subcommand)]
        verb: FleetVerb,
        #[arg(short, long, global = true, default_value = "cutover.toml")]
        config: PathBuf,
        /// Print the gateway's JSON answer instead of a summary.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Gateway + two simulated upstreams + load: a whole rollout in a few minutes.
    Demo {
        /// A candidate that fails 20% of its requests: watch the automatic rollback.
        #[arg(long)]
        bad_candidate: bool,
        /// Keep the gateway, the upstreams and the load running after the verdict, for the
        /// dashboard, until Ctrl-C.
        #[arg(long)]
        hold: bool,
    },
}

#[derive(Subcommand)]
enum AlertsVerb {
    /// Every rule instance with its state (firing, pending, ok, resolved, no data) and value.
    Status,
    /// Send a test notification and report each receiver's answer (exit 1 if one failed).
    Test {
        /// Only this notifier (default: every notifier).
        #[arg(long)]
        notifier: Option<String>,
    },
    /// Write the rules in force as a Prometheus rule file (to stdout, or `--output`).
    Export {
        #[arg(long, value_parser = ["prometheus"], default_value = "prometheus")]
        format: String,
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum FleetVerb {
    /// The leader and its lease, each instance's last report and applied weights.
    Status,
}

#[derive(Subcommand)]
enum ShadowVerb {
    /// The disagreeing pairs the gateway kept (`shadow_keep_diffs`), newest first.
    Diff {
        /// One route (default: every route with a candidate).
        #[arg(long)]
        route: Option<String>,
        /// Only pairs that disagreed on this dimension (outcome, tool_calls, model, …).
        #[arg(long)]
        dimension: Option<String>,
    },
}

#[derive(Subcommand)]
enum RolloutVerb {
    /// Phase, step, weight, evidence per arm, every criterion, what is missing, last events.
    Status,
    Pause,
    Resume,
    /// Next step without waiting for the analysis (`--full`: straight to 100%, promoted).
    Promote {
        #[arg(long)]
        full: bool,
    },
    /// Weight 0, rolled back.
    Abort,
    /// Start again from the first step after a rollback (after the cool-down).
    Retry,
    /// Set the candidate's share by hand (pauses the plan).
    SetWeight {
        percent: f64,
    },
    /// Set the share of primary requests mirrored to the candidate, in percent (kept in
    /// the state file, over the configuration's until set again).
    SetShadow {
        percent: f64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let logging = match cutover::logging::LogSettings::from_env(cli.log_format) {
        Ok(logging) => logging,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    match &cli.command {
        // The demo's terminal is for its progress lines: the gateway logs to a file.
        Command::Demo { .. } => logging.init_file(&cutover::demo::log_path()),
        _ => logging.init_stderr(),
    }
    match cli.command {
        Command::Check { config } => check(&config),
        Command::Serve { config, reset_state } => run(serve(config, reset_state)),
        Command::Mock(args) => run(mock(args)),
        Command::Rollout { verb, route, config, json } => run(rollout(verb, route, config, json)),
        Command::Alerts { verb, config, json } => run(alerts(verb, config, json)),
        Command::Cost { route, since, config, json } => run(cost(route, since, config, json)),
        Command::Shadow { verb, config, json } => run(shadow(verb, config, json)),
        Command::Validate(args) => cutover::cli::validate::main(args),
        Command::Fleet { verb: FleetVerb::Status, config, json } => run(fleet_status(config, json)),
        Command::Demo { bad_candidate, hold } => run(async move { Ok(cutover::demo::run(bad_candidate, hold).await?) }),
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    match cutover_config::load_file(path) {
        Ok(config) => {
            #[allow(clippy::print_stdout)]
            {
                println!("{}: ok\n\n{config}", path.display());
                for warning in cutover_config::unpriced_models(&config) {
                    println!("warning: {warning}");
                }
                for line in cutover_control::analysis::plan_resolution(&config) {
                    println!("{line}");
                }
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::from(2)
        }
    }
}

fn run(job: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = std::env::var("CUTOVER_WORKERS").ok().and_then(|workers| workers.parse().ok()) {
        builder.worker_threads(workers);
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(job) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(path: PathBuf, reset_state: bool) -> anyhow::Result<()> {
    let config = cutover_config::load_file(&path).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    if config.gateway_keys.is_empty() {
        tracing::warn!("no [auth] keys: the gateway is open to anyone who can reach {}", config.server.listen);
    }
    for warning in cutover_config::unpriced_models(&config) {
        tracing::warn!("{warning}");
    }
    // Before serving: from here on a SIGHUP (a terminal closing, an operator expecting a
    // reload) can no longer kill the process and cut its streams short, and a SIGTERM that
    // arrives while the gateway is still starting drains it instead of killing it.
    let hangups = hangups()?;
    let shutdown = shutdown_signal()?;
    let state = if reset_state { cutover_state::StateMode::Reset } else { cutover_state::StateMode::Keep };
    let running = cutover::server::start(config, state).await?;
    tracing::info!(proxy = %running.proxy_addr, admin = %running.admin_addr, "cutover is serving");
    reload_on_hangup(hangups, running.reloader(), path);
    running.stop_on(shutdown);
    running.wait().await;
    tracing::info!("drained; bye");
    Ok(())
}

async fn rollout(verb: RolloutVerb, route: Option<String>, path: PathBuf, json: bool) -> anyhow::Result<()> {
    use cutover::cli::rollout::{Verb, render, send};
    let config = cutover_config::load_file(&path).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let verb = match verb {
        RolloutVerb::Status => Verb::Status,
        RolloutVerb::Pause => Verb::Pause,
        RolloutVerb::Resume => Verb::Resume,
        RolloutVerb::Promote { full } => Verb::Promote { full },
        RolloutVerb::Abort => Verb::Abort,
        RolloutVerb::Retry => Verb::Retry,
        RolloutVerb::SetWeight { percent } => Verb::SetWeight(percent),
        RolloutVerb::SetShadow { percent } => Verb::SetShadow(percent),
    };
    let answer = send(&config, &verb, route.as_deref()).await?;
    let mut text = if json {
        serde_json::to_string_pretty(&answer)?
    } else {
        render(&answer).map_err(|error| anyhow::anyhow!("the gateway's answer is not a rollout view: {error}"))?
    };
    // The status ends with what each arm costs, when the gateway can say (the same table
    // as `cutover cost`); a gateway without it still gives its status.
    if matches!(verb, Verb::Status)
        && !json
        && let Ok(report) = cutover::cli::cost::fetch(&config, route.as_deref(), "24h").await
    {
        text = format!("{}\n\n{}", text.trim_end(), cutover_cost::render(&report));
    }
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    Ok(())
}

async fn alerts(verb: AlertsVerb, path: PathBuf, json: bool) -> anyhow::Result<()> {
    use cutover::cli::alerts::{render_status, render_test, status, test};
    let config = cutover_config::load_file(&path).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let text = match verb {
        AlertsVerb::Status => {
            let answer = status(&config).await?;
            if json { serde_json::to_string_pretty(&answer)? } else { render_status(&answer) }
        }
        AlertsVerb::Test { notifier } => {
            let answer = test(&config, notifier.as_deref()).await?;
            let (text, delivered) = render_test(&answer);
            let text = if json { serde_json::to_string_pretty(&answer)? } else { text };
            if !delivered {
                anyhow::bail!("{text}");
            }
            text
        }
        AlertsVerb::Export { format: _, output } => {
            let rules = cutover_alerts::prometheus_rules(&config);
            match output {
                Some(output) => {
                    std::fs::write(&output, rules).with_context(|| format!("cannot write {}", output.display()))?;
                    return Ok(());
                }
                None => rules.trim_end().to_owned(),
            }
        }
    };
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    Ok(())
}

async fn shadow(verb: ShadowVerb, path: PathBuf, json: bool) -> anyhow::Result<()> {
    let config = cutover_config::load_file(&path).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let ShadowVerb::Diff { route, dimension } = verb;
    let answers = cutover::cli::shadow::diffs(&config, route.as_deref(), dimension.as_deref()).await?;
    let text = if json { serde_json::to_string_pretty(&answers)? } else { cutover::cli::shadow::render(&answers) };
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    Ok(())
}

async fn cost(route: Option<String>, since: String, path: PathBuf, json: bool) -> anyhow::Result<()> {
    let config = cutover_config::load_file(&path).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let report = cutover::cli::cost::fetch(&config, route.as_deref(), &since).await?;
    let text = if json { serde_json::to_string_pretty(&report)? } else { cutover_cost::render(&report) };
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    Ok(())
}

async fn fleet_status(path: PathBuf, json: bool) -> anyhow::Result<()> {
    let config = cutover_config::load_file(&path).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let answer = cutover::cli::fleet::status(&config).await?;
    let text = if json { serde_json::to_string_pretty(&answer)? } else { cutover::cli::fleet::render_status(&answer) };
    let _ = writeln!(std::io::stdout().lock(), "{}", text.trim_end());
    Ok(())
}

async fn mock(args: cutover::mock::MockArgs) -> anyhow::Result<()> {
    let listen = args.listen;
    let config = args.into_config()?;
    let shutdown = shutdown_signal()?;
    let listener =
        tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(address = %listener.local_addr()?, name = %config.name, "mock upstream is serving");
    cutover::mock::run(listener, config, shutdown).await;
    Ok(())
}

/// SIGHUPs, handled from now on (a SIGHUP before the reloader runs waits for it).
#[cfg(unix)]
fn hangups() -> anyhow::Result<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::hangup()).context("cannot handle SIGHUP")
}

/// On each SIGHUP, reloads the configuration file; the reloader logs what it applied or
/// why it refused (the running configuration then stays).
#[cfg(unix)]
fn reload_on_hangup(mut hangups: tokio::signal::unix::Signal, reloader: cutover::reload::Reloader, path: PathBuf) {
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!(path = %path.display(), "SIGHUP: reloading the configuration");
            let _ = reloader.reload_file(&path).await;
        }
    });
}

#[cfg(not(unix))]
fn hangups() -> anyhow::Result<()> {
    Ok(())
}

#[cfg(not(unix))]
fn reload_on_hangup(_hangups: (), _reloader: cutover::reload::Reloader, _path: PathBuf) {}

/// A future that resolves on SIGTERM or SIGINT. The handlers are installed when this is
/// called, not when the future is first polled: from here on a signal that arrives while
/// the gateway is still starting waits for the future instead of killing the process by
/// the default action.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!("shutdown requested; draining in-flight requests");
    })
}

/// A future that resolves on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested; draining in-flight requests");
    })
}
