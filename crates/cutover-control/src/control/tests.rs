//! The controller over a real state file that can be made to refuse writes (as a full
//! disk would): what takes effect anyway, what does not, and what is saved later.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cutover_config::testing;
use cutover_model::Outcome;

use super::*;
use std::sync::atomic::{AtomicBool, Ordering};

use cutover_live::stats::{Arm, ArmSnapshot, Sample, StepSnapshot};
use cutover_state::{Coordination, StateMode, Store};

/// Route `default` with a two-step plan, an hour per step: nothing moves unless a test says so.
fn config_toml() -> String {
    testing::two_upstreams_toml(
        "",
        "[routes.rollout]\ninterval = \"1h\"\nsteps = [{ weight = 10, min_duration = \"1h\", min_requests = 10 }, \
         { weight = 100, min_duration = \"1h\", min_requests = 10 }]",
    )
}

/// A write on its way to the real store, as a test double sees it.
#[derive(Clone, Copy)]
enum Written<'a> {
    /// A transition of `route`.
    Record { route: &'a str },
    /// A step's evidence.
    Stats,
    /// A route's shadow share.
    ShadowShare,
}

/// What a test double does in front of the real store: it sees each write first and may
/// refuse it (or hold it), and it may answer for a fleet.
trait Interposer: Send + Sync {
    fn before(&self, write: Written<'_>) -> Result<(), StoreError>;

    fn fleet(&self) -> Option<&dyn Coordination> {
        None
    }
}

/// The real state file with `double` in front of its writes; reads go straight through.
struct Interposed<D> {
    inner: Store,
    double: D,
}

impl<D: Interposer> StateStore for Interposed<D> {
    fn load_or_init(&self, routes: &[&str], now_ms: i64) -> Result<Vec<RouteState>, StoreError> {
        self.inner.load_or_init(routes, now_ms)
    }

    fn record(&self, write: Write<'_>) -> Result<Event, StoreError> {
        self.double.before(Written::Record { route: &write.state.route })?;
        StateStore::record(&self.inner, write)
    }

    fn save_stats(
        &self,
        state: &RouteState,
        snapshot: &StepSnapshot,
        baseline: Option<&ArmSnapshot>,
    ) -> Result<(), StoreError> {
        self.double.before(Written::Stats)?;
        self.inner.save_stats(state, snapshot, baseline)
    }

    fn load_stats(&self, state: &RouteState) -> Result<(Option<StepSnapshot>, Option<ArmSnapshot>), StoreError> {
        self.inner.load_stats(state)
    }

    fn events(&self, route: Option<&str>, limit: u32) -> Result<Vec<Event>, StoreError> {
        self.inner.events(route, limit)
    }

    fn shadow_share(&self, route: &str) -> Result<Option<f64>, StoreError> {
        self.inner.shadow_share(route)
    }

    fn save_shadow_share(&self, route: &str, share: Option<f64>) -> Result<(), StoreError> {
        self.double.before(Written::ShadowShare)?;
        self.inner.save_shadow_share(route, share)
    }

    fn fleet(&self) -> Option<&dyn Coordination> {
        self.double.fleet()
    }
}

/// Writes that can be made to fail as a full disk's do.
#[derive(Default)]
struct FullDisk {
    full: AtomicBool,
}

impl FullDisk {
    /// Makes every later write fail like a full disk (`false` heals it).
    fn fail_writes(&self, fail: bool) {
        self.full.store(fail, Ordering::Relaxed);
    }
}

impl Interposer for FullDisk {
    fn before(&self, _: Written<'_>) -> Result<(), StoreError> {
        if !self.full.load(Ordering::Relaxed) {
            return Ok(());
        }
        let full = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL);
        Err(rusqlite::Error::SqliteFailure(full, Some("database or disk is full".into())).into())
    }
}

/// A controller over route `default` and its store, in a directory removed on drop.
struct Controlled {
    control: RolloutControl,
    store: Arc<Interposed<FullDisk>>,
    dir: PathBuf,
}

impl Drop for Controlled {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Controlled {
    fn new() -> Controlled {
        let dir = std::env::temp_dir().join(format!("cutover-control-{}-{}", std::process::id(), fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let config = Arc::new(testing::load(&config_toml(), Path::new(&dir), |_| None));
        let inner = Store::open(&config.state_path, StateMode::Keep).unwrap();
        let store = Arc::new(Interposed { inner, double: FullDisk::default() });
        let states = config.routes.zip_ordered(store.load_or_init(&["default"], unix_millis()).unwrap()).unwrap();
        let live = Arc::new(LiveState::new(&states));
        let metrics = Arc::new(Metrics::new(&config));
        let control = RolloutControl::new(config, metrics, live, store.clone(), &states, None).unwrap();
        Controlled { control, store, dir }
    }

    fn id(&self) -> RouteId {
        self.control.route_id("default").unwrap()
    }

    fn weight_bp(&self) -> u32 {
        self.control.live.route(self.id()).weight_bp()
    }

    fn view(&self) -> RolloutView {
        self.control.get("default").unwrap()
    }

    fn write_failures(&self) -> u64 {
        self.control.metrics.route(self.id()).state_write_failures()
    }

    /// The newest event in the state file.
    fn last_saved(&self) -> EventKind {
        self.store.inner.events(Some("default"), 1).unwrap()[0].kind
    }

    /// `count` candidate requests that all failed, in the current step's evidence.
    fn candidate_failures(&self, count: usize) {
        let stats = self.control.live.route(self.id()).stats();
        let failed =
            Sample { outcome: Outcome::UpstreamError, duration: Duration::from_millis(5), ttft: None, user: None };
        (0..count).for_each(|_| stats.record(Arm::Candidate, failed));
    }
}

#[test]
fn an_abort_takes_effect_at_once_when_the_state_file_refuses_it_and_is_saved_by_a_later_tick() {
    let controlled = Controlled::new();
    controlled.control.command("default", Command::SetWeight(50.0), "alice").unwrap();
    controlled.store.double.fail_writes(true);
    let refused = controlled.control.command("default", Command::Abort, "alice").unwrap_err();
    assert!(matches!(refused, ControlError::Unsaved { kind: EventKind::Abort, .. }), "{refused}");
    assert!(refused.to_string().starts_with("abort is in effect (candidate weight 0%) but not saved"), "{refused}");
    assert_eq!(controlled.weight_bp(), 0, "the candidate lost its users at once");
    let view = controlled.view();
    assert_eq!((view.phase, view.unsaved_transitions), (Phase::RolledBack, 1));
    assert_eq!(controlled.write_failures(), 1);
    assert_eq!(controlled.last_saved(), EventKind::SetWeight, "the file does not have it yet");

    let more = controlled.control.command("default", Command::SetWeight(10.0), "alice").unwrap_err();
    assert!(matches!(more, ControlError::Store(_)), "nothing is written before the unsaved abort: {more}");
    assert_eq!(controlled.weight_bp(), 0, "a change that adds exposure waits for the file");
    assert!(controlled.control.tick(controlled.id(), false).is_err(), "still refused");
    assert_eq!(controlled.write_failures(), 3);

    controlled.store.double.fail_writes(false);
    controlled.control.tick(controlled.id(), false).unwrap();
    assert_eq!(controlled.last_saved(), EventKind::Abort);
    let view = controlled.view();
    assert_eq!((view.unsaved_transitions, view.events[0].kind), (0, EventKind::Abort));
    let saved = controlled.store.load_or_init(&["default"], 0).unwrap().remove(0);
    assert_eq!((saved.phase, saved.weight_bp), (Phase::RolledBack, 0));
}

#[test]
fn a_change_that_adds_exposure_is_not_published_when_the_state_file_refuses_it() {
    let controlled = Controlled::new();
    controlled.store.double.fail_writes(true);
    let refused = controlled.control.command("default", Command::SetWeight(20.0), "alice").unwrap_err();
    assert!(matches!(refused, ControlError::Store(_)), "{refused}");
    assert_eq!(controlled.weight_bp(), 0);
    assert_eq!(controlled.view().phase, Phase::Pending);
    assert_eq!(controlled.write_failures(), 1);
}

#[test]
fn the_hard_ceiling_rolls_back_a_paused_rollout_even_when_the_disk_is_full() {
    let controlled = Controlled::new();
    controlled.control.command("default", Command::SetWeight(50.0), "alice").unwrap();
    controlled.candidate_failures(30);
    controlled.store.double.fail_writes(true);
    let refused = controlled.control.tick(controlled.id(), false).unwrap_err();
    assert!(matches!(refused, ControlError::Unsaved { kind: EventKind::Rollback, .. }), "{refused}");
    assert_eq!(controlled.weight_bp(), 0);
    controlled.store.double.fail_writes(false);
    controlled.control.tick(controlled.id(), false).unwrap();
    assert_eq!(controlled.last_saved(), EventKind::Rollback);
}

/// `config_toml()` with `from` replaced by `to`, as a reload would read it in `controlled`'s
/// directory.
fn reloaded(controlled: &Controlled, from: &str, to: &str) -> Arc<Config> {
    let toml = config_toml();
    assert!(toml.contains(from), "{from:?} is not in the test config");
    Arc::new(testing::load(&toml.replacen(from, to, 1), Path::new(&controlled.dir), |_| None))
}

#[test]
fn a_reload_that_changes_the_running_steps_weight_pauses_it_as_a_plan_edit_at_start_up_does() {
    let controlled = Controlled::new();
    controlled.control.tick(controlled.id(), true).unwrap();
    assert_eq!((controlled.view().phase, controlled.weight_bp()), (Phase::Progressing, 1000));

    controlled.control.reload(reloaded(&controlled, "weight = 10,", "weight = 20,")).unwrap();
    assert_eq!(controlled.view().phase, Phase::Paused, "{:?}", controlled.view());
    assert_eq!(controlled.weight_bp(), 1000, "a pause keeps the weight until an operator acts");
    assert_eq!(controlled.last_saved(), EventKind::PlanChanged);
}

#[test]
fn a_reload_that_keeps_the_running_step_lets_it_run_on_the_new_plan() {
    let controlled = Controlled::new();
    controlled.control.tick(controlled.id(), true).unwrap();
    let edited = reloaded(&controlled, "interval = \"1h\"", "interval = \"2h\"");
    controlled.control.reload(edited).unwrap();
    assert_eq!(controlled.view().phase, Phase::Progressing, "{:?}", controlled.view());
    assert_eq!(controlled.control.watched(), [(controlled.id(), Some(Duration::from_secs(7200)))]);
}

#[test]
fn a_plan_pause_the_state_file_refused_at_reload_is_made_by_the_next_tick() {
    let controlled = Controlled::new();
    controlled.control.tick(controlled.id(), true).unwrap();
    controlled.store.double.fail_writes(true);
    let refused = controlled.control.reload(reloaded(&controlled, "weight = 10,", "weight = 20,"));
    assert!(matches!(refused, Err(ControlError::Store(_))), "{refused:?}");
    assert_eq!(controlled.view().phase, Phase::Progressing, "a pause is not published unsaved");

    controlled.store.double.fail_writes(false);
    controlled.control.tick(controlled.id(), false).unwrap();
    assert_eq!(controlled.view().phase, Phase::Paused, "{:?}", controlled.view());
    assert_eq!(controlled.last_saved(), EventKind::PlanChanged);
}

#[test]
fn the_undecided_mark_is_rebuilt_from_the_events_by_the_rule_the_transitions_follow() {
    let event = |at: i64, kind: EventKind, to: Phase| Event {
        id: at,
        at,
        route: "default".to_owned(),
        kind,
        actor: "controller".to_owned(),
        from_phase: Phase::Progressing.as_str().to_owned(),
        to_phase: to.as_str().to_owned(),
        weight_percent: 10.0,
        reason: String::new(),
    };
    let paused = RouteState { phase: Phase::Paused, ..RouteState::initial("default", 0) };
    // Newest first, as the store returns them.
    let undecided = [event(3, EventKind::CheckFailed, Phase::Paused), event(2, EventKind::Undecided, Phase::Paused)];
    assert_eq!(undecided_since(&paused, &undecided), Some(2), "a failed check beside the pause keeps it");
    let resumed_and_paused = [event(4, EventKind::Pause, Phase::Paused), undecided[0].clone(), undecided[1].clone()];
    assert_eq!(undecided_since(&paused, &resumed_and_paused), None, "an operator's pause is not undecided");
    let running = RouteState { phase: Phase::Progressing, ..paused.clone() };
    assert_eq!(undecided_since(&running, &undecided), None, "only a paused route is undecided");
}

mod held;
