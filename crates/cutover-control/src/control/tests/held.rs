//! No route waits for another's store call, and nothing waits for a fleet read: a store
//! call made to hang (as a stalled database would) holds up only the decision that made
//! it, while the view, `acts` and the other routes' commands answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;

use super::*;
use cutover_live::stats::StepSnapshot;

/// How long a call that should not wait may take before the test calls it blocked: far
/// above any honest answer on a loaded machine, far below the test harness's patience.
const NOT_BLOCKED: Duration = Duration::from_secs(20);

/// Two routes, `slow` (model `slow`) and `other` (every other model), each with a
/// candidate and a one-step plan.
fn two_routes_toml() -> String {
    let route = |name: &str, models: &str| {
        format!(
            "[[routes]]\nname = \"{name}\"\n{models}primary = \"primary\"\ncandidate = \"candidate\"\n\
             [routes.rollout]\ninterval = \"1h\"\nsteps = [{{ weight = 10, min_duration = \"1h\", min_requests = 10 }}]\n"
        )
    };
    format!(
        "[upstreams.primary]\nbase_url = \"http://127.0.0.1:9/v1\"\n[upstreams.candidate]\n\
         base_url = \"http://127.0.0.1:9/v1\"\n{}{}",
        route("slow", "models = [\"slow\"]\n"),
        route("other", "")
    )
}

/// Which store call of route `slow` hangs.
#[derive(Clone, Copy, PartialEq)]
enum Hung {
    /// The fleet's evidence read of a tick.
    Evidence,
    /// A transition's write.
    Record,
}

/// One call of route `slow` that hangs until released, in front of the real state file.
struct Stalling {
    hung: Hung,
    armed: AtomicBool,
    entered: SyncSender<()>,
    release: Mutex<Receiver<()>>,
}

impl Stalling {
    /// Hangs the first call of kind `hung` on route `slow`: says it entered, waits for the
    /// release (or for the test to end).
    fn stall(&self, hung: Hung, route: &str) {
        if hung == self.hung && route == "slow" && self.armed.swap(false, Ordering::SeqCst) {
            let _ = self.entered.send(());
            let _ = self.release.lock().unwrap_or_else(PoisonError::into_inner).recv();
        }
    }
}

impl Interposer for Stalling {
    fn before(&self, write: Written<'_>) -> Result<(), StoreError> {
        if let Written::Record { route } = write {
            self.stall(Hung::Record, route);
        }
        Ok(())
    }

    fn fleet(&self) -> Option<&dyn Coordination> {
        Some(self)
    }
}

/// A fleet of one that always leads, so that the evidence is read through the store.
impl Coordination for Stalling {
    fn catching_up(&self) -> bool {
        false
    }

    fn leads(&self) -> bool {
        true
    }

    fn cut_off(&self) -> bool {
        false
    }

    fn changed(&self) -> Result<Vec<RouteState>, StoreError> {
        Ok(Vec::new())
    }

    fn merged_evidence(&self, state: &RouteState, local: StepSnapshot) -> Result<StepSnapshot, StoreError> {
        self.stall(Hung::Evidence, &state.route);
        Ok(local)
    }
}

/// A controller over `slow` and `other` whose store hangs `hung`, in a directory removed
/// on drop; `entered` says the call hangs now, `release` lets it go on.
struct Stalled {
    control: Arc<RolloutControl>,
    entered: Receiver<()>,
    release: SyncSender<()>,
    dir: PathBuf,
}

impl Drop for Stalled {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Stalled {
    fn new(hung: Hung) -> Stalled {
        let dir = std::env::temp_dir().join(format!("cutover-held-{}-{}", std::process::id(), fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let config = Arc::new(testing::load(&two_routes_toml(), Path::new(&dir), |_| None));
        let (entered_tx, entered) = mpsc::sync_channel(1);
        let (release, release_rx) = mpsc::sync_channel(1);
        let store = Arc::new(Interposed {
            inner: Store::open(&config.state_path, StateMode::Keep).unwrap(),
            double: Stalling {
                hung,
                armed: AtomicBool::new(true),
                entered: entered_tx,
                release: Mutex::new(release_rx),
            },
        });
        let states = config.routes.zip_ordered(store.load_or_init(&["slow", "other"], unix_millis()).unwrap()).unwrap();
        let live = Arc::new(LiveState::new(&states));
        let metrics = Arc::new(Metrics::new(&config));
        let control = Arc::new(RolloutControl::new(config, metrics, live, store, &states, None).unwrap());
        Stalled { control, entered, release, dir }
    }

    /// Starts a full tick of `slow` on a thread of its own and waits until its store call hangs.
    fn tick_slow_until_it_hangs(&self) -> thread::JoinHandle<Result<(), ControlError>> {
        let control = self.control.clone();
        let slow = control.route_id("slow").unwrap();
        let ticking = thread::spawn(move || control.tick(slow, true));
        self.entered.recv_timeout(NOT_BLOCKED).expect("the tick reached the store call that hangs");
        ticking
    }

    /// What `call` answers, failing the test if it waits behind the hung call.
    fn answered<T: Send + 'static>(&self, what: &str, call: impl FnOnce(&RolloutControl) -> T + Send + 'static) -> T {
        let control = self.control.clone();
        let (tx, rx) = mpsc::sync_channel(1);
        thread::spawn(move || tx.send(call(&control)));
        rx.recv_timeout(NOT_BLOCKED).unwrap_or_else(|_| panic!("{what} waited for another route's store call"))
    }

    fn weight_bp(&self, route: &str) -> u32 {
        self.control.live.route(self.control.route_id(route).unwrap()).weight_bp()
    }
}

#[test]
fn a_tick_waiting_for_the_fleets_evidence_holds_no_turn_and_a_step_changed_meanwhile_is_judged_next_tick() {
    let stalled = Stalled::new(Hung::Evidence);
    let ticking = stalled.tick_slow_until_it_hangs();

    stalled
        .answered("a command on the same route", |control| control.command("slow", Command::Abort, "alice"))
        .unwrap();
    stalled
        .answered("a command on another route", |control| control.command("other", Command::SetWeight(30.0), "bob"))
        .unwrap();
    assert!(stalled.answered("acts", RolloutControl::acts));
    assert_eq!(stalled.answered("the view", RolloutControl::list).len(), 2);

    stalled.release.send(()).unwrap();
    ticking.join().unwrap().unwrap();
    let slow = stalled.control.get("slow").unwrap();
    assert_eq!((slow.phase, stalled.weight_bp("slow")), (Phase::RolledBack, 0), "{slow:?}");
    assert_eq!(stalled.weight_bp("other"), 3000);
}

#[test]
fn a_write_that_hangs_holds_its_own_route_alone() {
    let stalled = Stalled::new(Hung::Record);
    // A full tick of the pending `slow` starts its plan: a transition, whose write hangs.
    let ticking = stalled.tick_slow_until_it_hangs();

    stalled
        .answered("a command on another route", |control| control.command("other", Command::SetWeight(30.0), "bob"))
        .unwrap();
    let other = stalled.control.route_id("other").unwrap();
    stalled.answered("a tick of another route", move |control| control.tick(other, true)).unwrap();
    assert!(stalled.answered("acts", RolloutControl::acts));
    let slow = stalled.answered("the view of the hung route", |control| control.get("slow")).unwrap();
    assert_eq!(slow.phase, Phase::Pending, "nothing takes effect before its write: {slow:?}");

    stalled.release.send(()).unwrap();
    ticking.join().unwrap().unwrap();
    assert_eq!((stalled.control.get("slow").unwrap().phase, stalled.weight_bp("slow")), (Phase::Progressing, 1000));
    assert_eq!(stalled.weight_bp("other"), 3000);
}
