//! How the process logs: which events (`CUTOVER_LOG`, else `RUST_LOG`: a level, or
//! `RUST_LOG`-style directives such as `warn,cutover_proxy=debug`), in which format
//! (`--log-format text|json` or `CUTOVER_LOG_FORMAT`), and where (stderr, or a file for
//! the demo). Text gets ANSI colour only on a terminal (and never with `NO_COLOR`); JSON
//! is one object per line with `timestamp`, `level`, `target` and the event's `fields`
//! (its `message` included), for a log collector. A filter or format that does not
//! parse is refused with a message naming the variable, never read as "info".

use std::io::IsTerminal as _;
use std::path::Path;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

/// How each event is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A logging setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LogSettingError {
    #[error(
        "{variable}={value:?} is not a log filter: {reason} (expected a level such as `info`, or directives such as `warn,cutover_proxy=debug`)"
    )]
    Filter { variable: &'static str, value: String, reason: String },
    #[error("CUTOVER_LOG_FORMAT={0:?} is not a log format (expected `text` or `json`)")]
    Format(String),
    #[error("{variable} is not valid UTF-8")]
    NotUnicode { variable: &'static str },
}

/// What to log and how, read from the command line and the environment.
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub filter: Targets,
    pub format: LogFormat,
}

impl LogSettings {
    /// The settings of this process: `format` from `--log-format` when given, else
    /// `CUTOVER_LOG_FORMAT`, else text; the filter from `CUTOVER_LOG`, else `RUST_LOG`,
    /// else `info`.
    pub fn from_env(format: Option<LogFormat>) -> Result<LogSettings, LogSettingError> {
        let filter = match variable("CUTOVER_LOG")? {
            Some(value) => parse_filter("CUTOVER_LOG", &value)?,
            None => match variable("RUST_LOG")? {
                Some(value) => parse_filter("RUST_LOG", &value)?,
                None => Targets::new().with_default(LevelFilter::INFO),
            },
        };
        let format = match format {
            Some(format) => format,
            None => match variable("CUTOVER_LOG_FORMAT")? {
                Some(value) => parse_format(&value)?,
                None => LogFormat::Text,
            },
        };
        Ok(LogSettings { filter, format })
    }

    /// Installs the process's subscriber, writing to stderr.
    pub fn init_stderr(self) {
        let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        self.init(std::io::stderr, ansi);
    }

    /// Installs the process's subscriber, writing to `path` (truncated); when the file
    /// cannot be created, to stderr at warn level at most.
    pub fn init_file(mut self, path: &Path) {
        match std::fs::File::create(path) {
            Ok(file) => self.init(std::sync::Mutex::new(file), false),
            Err(_) => {
                let level = self.filter.default_level().unwrap_or(LevelFilter::INFO).min(LevelFilter::WARN);
                self.filter = self.filter.clone().with_default(level);
                self.init_stderr();
            }
        }
    }

    fn init<W>(self, writer: W, ansi: bool)
    where
        W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
    {
        let registry = tracing_subscriber::registry().with(self.filter);
        match self.format {
            LogFormat::Text => registry
                .with(tracing_subscriber::fmt::layer().with_target(false).with_ansi(ansi).with_writer(writer))
                .init(),
            LogFormat::Json => {
                registry.with(tracing_subscriber::fmt::layer().json().flatten_event(false).with_writer(writer)).init()
            }
        }
    }
}

/// An environment variable that is set and not empty.
fn variable(name: &'static str) -> Result<Option<String>, LogSettingError> {
    match std::env::var(name) {
        Ok(value) if value.trim().is_empty() => Ok(None),
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(LogSettingError::NotUnicode { variable: name }),
    }
}

/// A level (`debug`) or `RUST_LOG`-style directives (`warn,cutover_proxy=debug`).
/// A bare word that is not a level would be read as a target name and silence every other
/// target, so it is refused rather than taken for one.
pub fn parse_filter(variable: &'static str, value: &str) -> Result<Targets, LogSettingError> {
    let refuse = |reason: String| LogSettingError::Filter { variable, value: value.to_owned(), reason };
    for directive in value.split(',').map(str::trim).filter(|directive| !directive.is_empty()) {
        if !directive.contains('=') && directive.parse::<LevelFilter>().is_err() {
            return Err(refuse(format!(
                "`{directive}` is neither a level (trace, debug, info, warn, error, off) nor target=level"
            )));
        }
    }
    value.trim().parse::<Targets>().map_err(|error| refuse(error.to_string()))
}

pub fn parse_format(value: &str) -> Result<LogFormat, LogSettingError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(LogSettingError::Format(value.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_level_or_directives_filter_by_target() {
        let filter = parse_filter("CUTOVER_LOG", "warn,cutover_proxy=debug").unwrap();
        assert!(filter.would_enable("cutover_proxy::service", &tracing::Level::DEBUG));
        assert!(!filter.would_enable("cutover::rollout", &tracing::Level::INFO));
        assert!(filter.would_enable("cutover::rollout", &tracing::Level::WARN));
        let level = parse_filter("RUST_LOG", "debug").unwrap();
        assert!(level.would_enable("hyper", &tracing::Level::DEBUG));
    }

    #[test]
    fn a_filter_that_does_not_parse_is_refused_naming_the_variable() {
        let error = parse_filter("CUTOVER_LOG", "verbose=loud").unwrap_err().to_string();
        assert!(error.starts_with("CUTOVER_LOG=\"verbose=loud\" is not a log filter"), "{error}");
        let typo = parse_filter("RUST_LOG", "infoo").unwrap_err().to_string();
        assert!(typo.contains("`infoo` is neither a level"), "{typo}");
        assert!(parse_format("yaml").unwrap_err().to_string().contains("CUTOVER_LOG_FORMAT=\"yaml\""));
        assert_eq!(parse_format(" JSON ").unwrap(), LogFormat::Json);
    }
}
