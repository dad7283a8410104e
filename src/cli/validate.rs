//! `cutover validate --upstream NAME [--compare NAME] [--model M] [--require LIST] [--json]
//! [-c cutover.toml]`: runs the conformance and honesty suite (`crate::validate`) against
//! a configured upstream and prints the table (or JSON). Exit status: 0 when every
//! required check passed, 1 when one did not, 2 when the suite could not run (bad
//! configuration, unknown upstream, bad `--require`).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use cutover_validate::{Options, Requirement, validate};

/// Checks an upstream's OpenAI compatibility and honesty, live.
#[derive(Debug, Clone, clap::Args)]
pub struct ValidateArgs {
    /// The upstream to validate (a name under `[upstreams]`).
    #[arg(long, value_name = "NAME")]
    pub upstream: String,
    /// Also validate this upstream and print a parity table (what `--upstream` lacks).
    #[arg(long, value_name = "NAME")]
    pub compare: Option<String>,
    /// The model, as clients name it (the upstream's alias map applies); default: the
    /// first exact model of the first route that uses the upstream.
    #[arg(long, value_name = "M")]
    pub model: Option<String>,
    /// Checks that must pass, comma-separated: check ids, groups (`tools`), `all`, `none`
    /// (default: every check but the quality notes).
    #[arg(long, value_name = "LIST")]
    pub require: Option<String>,
    /// Print JSON (stable keys) instead of the tables.
    #[arg(long)]
    pub json: bool,
    #[arg(short, long, default_value = "cutover.toml")]
    pub config: PathBuf,
}

/// Runs the command; the exit status is the verdict.
pub fn main(args: ValidateArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return usage_error(&format!("cannot start the async runtime: {error}")),
    };
    let config = match cutover_config::load_file(&args.config) {
        Ok(config) => config,
        Err(errors) => return usage_error(&errors.to_string()),
    };
    let require = match args.require.as_deref().map(Requirement::parse).transpose() {
        Ok(require) => require.unwrap_or_default(),
        Err(error) => return usage_error(&error.to_string()),
    };
    let options = Options { upstream: args.upstream, compare: args.compare, model: args.model, require };
    let validation = match runtime.block_on(validate(&config, &options)) {
        Ok(validation) => validation,
        Err(error) => return usage_error(&error.to_string()),
    };
    let text = if args.json {
        serde_json::to_string_pretty(&validation.to_json()).unwrap_or_default()
    } else {
        validation.render()
    };
    // A closed pipe (`| head`) is not worth a panic.
    let _ = writeln!(std::io::stdout().lock(), "{}", text.trim_end());
    if validation.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn usage_error(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr().lock(), "error: {message}");
    ExitCode::from(2)
}
