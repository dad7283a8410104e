//! The vocabulary every layer of cutover shares and no layer owns: the wire API a client
//! calls or an upstream speaks (`Api`), which arm and how a
//! request ended (`Role`, `Outcome`), what a mirrored pair is compared on (`Dimension`),
//! the rollout's success criteria (`criteria`), the kinds of rollout event and their
//! severity (`event`), a route's rollout phase and persisted state (`rollout`), human
//! durations in the configuration (`duration`), wall-clock time as it is persisted
//! (`time`), the words of alert rules and notifiers (`alert`), what a look at a rollout
//! step found (`evaluation`), and the admin API's view of a rollout (`view`), which the
//! gateway renders and the CLI reads. Route identity (`RouteId`, `PerRoute`) is the
//! configuration's: only its route table hands a `RouteId` out.
//!
//! Types only, with the rules that belong to them (a criterion's unit and range, an
//! event's severity, a duration's syntax); nothing here does I/O or knows the
//! configuration file, a metric's registry or a store.

pub mod alert;
pub mod api;
pub mod criteria;
pub mod dimension;
pub mod duration;
pub mod evaluation;
pub mod event;
pub mod outcome;
pub mod rollout;
pub mod time;
pub mod view;

pub use alert::{AlertMetric, Comparison, NotifierFormat};
pub use api::{Api, anthropic_error_type};
pub use criteria::{Criteria, Criterion, Direction, Latency, Unit};
pub use dimension::Dimension;
pub use event::{EventKind, Severity, UnknownKind};
pub use outcome::{Outcome, Role, ShadowDrop, ShadowOutcome};
pub use rollout::{Phase, RouteState};
pub use time::{unix_millis, utc_fields};
