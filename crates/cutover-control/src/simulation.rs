//! The controller's own error rates, measured by simulation (no network): synthetic
//! requests are recorded into a step's evidence exactly as the request path records them
//! (`StepStats`), and the production decision function (`decide::tick`, the one the
//! controller calls) looks after every simulated minute, with the step's running time
//! advanced by the simulated clock, and its transitions are followed as the controller
//! applies them: a pass advances, `failure_limit` failed checks in a row roll back, the
//! hard ceiling rolls back at once. `cargo test --release --lib simulation -- --nocapture`
//! prints the table published in the README (as markdown, pasted there from this run) and
//! asserts every figure in it: each share within the 99.9% Wilson interval of what the run
//! measured, each median cost within 25% and p90 within 35% of the run's, and the targets.

use std::time::Duration;

use cutover_config::{DERIVED_BUDGET_MARGINS, HarmBudget, OnFailure, OnUndecided, RolloutPlan, RolloutStep};
use cutover_model::{Criteria, Criterion, EventKind, Outcome};
use fastrand::Rng;

use super::analysis::{ControlKind, Inputs, Verdict, evaluate};
use super::decide::{self, Evidence};
use cutover_live::stats::{Arm, ArmSnapshot, SNAPSHOT_FORMAT, Sample, StepSnapshot, StepStats};
use cutover_model::{Phase, RouteState};

/// Requests per arm in one analysis interval (e.g. a 5% step of 4,000 requests a minute).
const PER_INTERVAL: u64 = 200;
const INTERVAL: Duration = Duration::from_secs(60);
const FAILURE_LIMIT: u32 = 3;
/// The control's error rate in every case.
const CONTROL_ERRORS: f64 = 0.01;
/// Latency: log-normal around this median, with this log-spread (p95 ≈ 2.7× the median).
const MEDIAN_MS: f64 = 800.0;
const LOG_SPREAD: f64 = 0.6;

/// Debug builds run a smoke test of every case; the published figures need `--release`.
const FULL: bool = !cfg!(debug_assertions);
const TRIALS: usize = if FULL { 400 } else { 6 };
/// A stage that has neither passed nor failed after this many looks is held.
const MAX_LOOKS: u32 = if FULL { 3000 } else { 300 };

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Advanced,
    RolledBack,
    /// Neither within the look budget, on a step without a `max_duration`.
    Held,
    /// Ended by its `max_duration` undecided (and paused, by the production default).
    Undecided,
}

/// How one arm behaves.
#[derive(Debug, Clone, Copy)]
struct Behaviour {
    errors: f64,
    /// Requests its breaker skipped: recorded as upstream errors with no attempt (0 ms).
    skipped: f64,
    /// Every latency quantile, relative to the control's.
    slower: f64,
    /// Errors in bursts: this share of the minutes fail at `burst_errors` instead.
    bursts: f64,
    burst_errors: f64,
}

const CONTROL: Behaviour =
    Behaviour { errors: CONTROL_ERRORS, skipped: 0.0, slower: 1.0, bursts: 0.0, burst_errors: 0.0 };

fn errors(rate: f64) -> Behaviour {
    Behaviour { errors: rate, ..CONTROL }
}

fn slower(ratio: f64) -> Behaviour {
    Behaviour { slower: ratio, ..CONTROL }
}

/// Who sends the requests.
#[derive(Debug, Clone, Copy)]
enum Users {
    /// No sticky key: every request an independent draw.
    Independent,
    /// This many sticky users per arm, of uneven activity (log-normal weights, σ = 1.5)
    /// and uneven error-proneness (each user's rate is the arm's × a log-normal factor of
    /// mean 1, σ = 1), as real users with their own prompts and clients are.
    Sticky(usize),
    /// This many sticky users per arm whose activity follows Zipf's law (the user of rank
    /// `k` sends ∝ 1/k¹·¹: a few users send most requests), error-proneness as `Sticky`.
    Zipf(usize),
}

struct Case {
    name: &'static str,
    step: RolloutStep,
    candidate: Behaviour,
    users: Users,
    /// From this look on, the candidate behaves so instead (a candidate that degrades
    /// mid-step).
    degrades: Option<(u32, Behaviour)>,
    /// What must happen, checked against the published targets.
    target: Target,
    /// The figures published in the README for this case.
    published: Option<Published>,
}

/// One row of the README's table: percent of stages rolled back, advanced, held and ended
/// undecided, the candidate requests to a rollback and to an advance (median, p90), and
/// the mean excess failures per stage.
#[derive(Debug, Clone, Copy)]
struct Published {
    shares: [f64; 4],
    to_roll_back: Option<(u64, u64)>,
    to_advance: Option<(u64, u64)>,
    harm: f64,
}

/// How far the request counts may drift from the published figures before the test
/// fails: the median of 400 stages moves by a few percent with the seed, its p90 by more,
/// a regression by more than either.
const MEDIAN_TOLERANCE: f64 = 0.25;
const P90_TOLERANCE: f64 = 0.35;

#[derive(Debug, Clone, Copy)]
enum Target {
    /// A healthy candidate: rolled back in at most 1% of stages.
    Advance,
    /// A candidate at or past the margin: advanced in at most 5% of stages.
    NeverAdvance,
    /// A clear regression: caught (rolled back) in at least 99% of stages.
    Catch,
    /// A regression past the margin but close to it: advanced in at most 5%.
    RollBack,
    /// No target of its own: the published figures (and the harm budget) only.
    Published,
}

/// Every case's step ends undecided at the end of the look budget (at the latest): the
/// production rule, with the derived harm budget that `max_duration` brings.
fn step(criteria: Criteria, min_duration: Duration) -> RolloutStep {
    RolloutStep {
        weight_bp: 500,
        shadow: 0.0,
        min_duration,
        max_duration: Some(min_duration.max(INTERVAL * MAX_LOOKS)),
        min_requests: 1000,
        min_users: 0,
        criteria,
    }
}

fn error_step() -> RolloutStep {
    let criteria = Criteria::default().with(Criterion::MaxErrorRate, 5.0).with(Criterion::MaxErrorRateIncrease, 0.5);
    step(criteria, Duration::ZERO)
}

fn latency_step(criterion: Criterion, ratio: f64) -> RolloutStep {
    step(Criteria::default().with(criterion, ratio), Duration::ZERO)
}

/// A published row: shares in percent (rolled back, advanced, held, undecided), the
/// requests to a rollback and to an advance as (median, p90), `None` where no stage ended
/// so, and the mean excess failures per stage.
const fn row(
    shares: [f64; 4],
    to_roll_back: Option<(u64, u64)>,
    to_advance: Option<(u64, u64)>,
    harm: f64,
) -> Option<Published> {
    Some(Published { shares, to_roll_back, to_advance, harm })
}

fn cases() -> Vec<Case> {
    let day = Duration::from_secs(24 * 3600);
    let long = || step(error_step().criteria, day);
    let hours = |hours: u64| step(error_step().criteria, Duration::from_secs(hours * 3600));
    let third = || step(error_step().criteria, INTERVAL * (MAX_LOOKS / 3));
    let budgeted = |count: f64| {
        let mut step = error_step();
        step.criteria.set(Criterion::MaxExcessFailures, Some(count));
        step
    };
    let case = |name, step, candidate, users, target, published| Case {
        name,
        step,
        candidate,
        users,
        degrades: None,
        target,
        published,
    };
    let independent = Users::Independent;
    let breaker = Behaviour { skipped: 0.31, slower: 1.46, ..CONTROL };
    let bursts = Behaviour { bursts: 0.05, burst_errors: 0.21, ..CONTROL };
    let p95 = Criterion::MaxLatencyP95Ratio;
    let (sticky, zipf) = (Users::Sticky, Users::Zipf);
    use Target::{Advance, Catch, NeverAdvance, Published, RollBack};
    vec![
        case(
            "healthy (1% vs 1%)",
            error_step(),
            errors(0.01),
            independent,
            Advance,
            row([0.0, 100.0, 0.0, 0.0], None, Some((6_800, 13_400)), 0.0),
        ),
        case(
            "within the margin (1.4% vs 1%)",
            error_step(),
            errors(0.014),
            independent,
            Advance,
            row([0.0, 95.8, 0.0, 4.2], None, Some((218_200, 419_800)), 950.0),
        ),
        case(
            "at the margin (1.5% vs 1%)",
            error_step(),
            errors(0.015),
            independent,
            NeverAdvance,
            row([0.0, 2.2, 0.0, 97.8], None, Some((18_200, 77_000)), 2_936.0),
        ),
        case(
            "past the margin (1.75% vs 1%)",
            error_step(),
            errors(0.0175),
            independent,
            RollBack,
            row([100.0, 0.0, 0.0, 0.0], Some((55_800, 108_400)), None, 466.0),
        ),
        case(
            "doubled (2% vs 1%)",
            error_step(),
            errors(0.02),
            independent,
            Catch,
            row([100.0, 0.0, 0.0, 0.0], Some((17_000, 28_000)), None, 177.0),
        ),
        // Bursts 20 minutes apart on average go unseen by a step that can pass in half an
        // hour: a min_duration of several burst periods is what catches them.
        case(
            "doubled in bursts (5% of minutes at 21%)",
            error_step(),
            bursts,
            independent,
            Published,
            row([73.2, 26.8, 0.0, 0.0], Some((5_800, 30_600)), Some((4_200, 10_400)), 110.0),
        ),
        case(
            "doubled in bursts, min_duration 2 h",
            hours(2),
            bursts,
            independent,
            RollBack,
            row([97.2, 2.8, 0.0, 0.0], Some((9_800, 47_400)), Some((24_000, 31_200)), 200.0),
        ),
        // The harm budget's price: 300 very uneven users cannot bound a healthy candidate's
        // excess below 2 × the margin by the end of the step in some stages, which then roll
        // back late (instead of ending undecided) — the one place a healthy candidate is
        // rolled back more than 1% of the time, so these publish their figures, no target.
        case(
            "healthy, 300 sticky users per arm",
            error_step(),
            errors(0.01),
            sticky(300),
            Published,
            row([4.0, 72.8, 0.0, 23.2], Some((517_400, 583_800)), Some((7_200, 39_400)), 0.0),
        ),
        case(
            "healthy, 3,000 sticky users per arm",
            error_step(),
            errors(0.01),
            sticky(3000),
            Advance,
            row([0.0, 99.8, 0.0, 0.2], None, Some((7_000, 17_800)), 0.0),
        ),
        case(
            "healthy, 300 Zipf users per arm",
            error_step(),
            errors(0.01),
            zipf(300),
            Published,
            row([22.8, 38.8, 0.0, 38.5], Some((484_200, 573_000)), Some((6_400, 28_400)), 0.0),
        ),
        // 300 users this uneven weigh like ~30 independent ones: a 0.5 pp margin cannot be
        // judged (the bounds never narrow below the users' own spread), so the promise is
        // only that it is not advanced, and the harm budget that it does not run on.
        case(
            "doubled, 300 sticky users per arm",
            error_step(),
            errors(0.02),
            sticky(300),
            NeverAdvance,
            row([99.8, 0.0, 0.0, 0.2], Some((352_200, 463_400)), None, 3_327.0),
        ),
        case(
            "doubled, 300 Zipf users per arm",
            error_step(),
            errors(0.02),
            zipf(300),
            NeverAdvance,
            row([98.5, 0.0, 0.0, 1.5], Some((288_200, 422_200)), None, 2_728.0),
        ),
        case(
            "tripled (3% vs 1%), 300 sticky users per arm",
            error_step(),
            errors(0.03),
            sticky(300),
            RollBack,
            row([100.0, 0.0, 0.0, 0.0], Some((10_000, 165_000)), None, 799.0),
        ),
        // 3,000 such users weigh like ~300: mostly caught within 3,000 looks.
        case(
            "doubled, 3,000 sticky users per arm",
            error_step(),
            errors(0.02),
            sticky(3000),
            RollBack,
            row([99.5, 0.0, 0.0, 0.5], Some((25_000, 99_400)), None, 615.0),
        ),
        // Healthy for a sixth of the look budget, then 4%, on a step whose min_duration
        // (a third of the budget) keeps it from passing before it degrades.
        Case {
            degrades: Some((MAX_LOOKS / 6, errors(0.04))),
            ..case(
                "healthy, then 4% mid-step, 300 sticky users",
                third(),
                errors(0.01),
                sticky(300),
                RollBack,
                row([100.0, 0.0, 0.0, 0.0], Some((200_600, 247_200)), None, 3_012.0),
            )
        },
        // The price of a tight budget: fewer excess failures, more healthy candidates
        // rolled back, where the traffic cannot tell them apart.
        case(
            "doubled, 300 sticky users, max_excess_failures 1,000",
            budgeted(1000.0),
            errors(0.02),
            sticky(300),
            NeverAdvance,
            row([100.0, 0.0, 0.0, 0.0], Some((58_200, 76_400)), None, 563.0),
        ),
        case(
            "healthy, 300 sticky users, max_excess_failures 1,000",
            budgeted(1000.0),
            errors(0.01),
            sticky(300),
            Published,
            row([27.3, 72.8, 0.0, 0.0], Some((150_600, 178_200)), Some((7_400, 36_000)), 0.0),
        ),
        case(
            "healthy, 24 h step (1,440 looks)",
            long(),
            errors(0.01),
            independent,
            Advance,
            row([0.0, 100.0, 0.0, 0.0], None, Some((288_000, 288_000)), 0.0),
        ),
        case(
            "at the margin, 24 h step",
            long(),
            errors(0.015),
            independent,
            NeverAdvance,
            row([0.0, 0.0, 0.0, 100.0], None, None, 3_000.0),
        ),
        case(
            "p95 +10%, limit 1.2×",
            latency_step(p95, 1.2),
            slower(1.1),
            independent,
            Advance,
            row([0.0, 100.0, 0.0, 0.0], None, Some((11_800, 19_800)), 0.0),
        ),
        case(
            "p95 +15%, limit 1.2×",
            latency_step(p95, 1.2),
            slower(1.15),
            independent,
            Advance,
            row([0.0, 100.0, 0.0, 0.0], None, Some((55_400, 95_600)), 0.0),
        ),
        case(
            "p95 +10%, limit 1.05×",
            latency_step(p95, 1.05),
            slower(1.1),
            independent,
            RollBack,
            row([100.0, 0.0, 0.0, 0.0], Some((89_600, 137_600)), None, 0.0),
        ),
        case(
            "breaker skips 31%, p50 1.46×, limit 1.2×",
            latency_step(Criterion::MaxLatencyP50Ratio, 1.2),
            breaker,
            independent,
            Catch,
            row([100.0, 0.0, 0.0, 0.0], Some((1_600, 2_200)), None, 519.0),
        ),
    ]
}

/// One arm's synthetic users: cumulative activity weights and each user's error factor.
struct Population {
    ids: Vec<u64>,
    cumulative: Vec<f64>,
    proneness: Vec<f64>,
}

impl Population {
    fn new(rng: &mut Rng, users: Users) -> Option<Population> {
        let count = match users {
            Users::Independent => return None,
            Users::Sticky(count) | Users::Zipf(count) => count,
        };
        let mut total = 0.0;
        let mut cumulative = Vec::with_capacity(count);
        for rank in 0..count {
            total += match users {
                Users::Zipf(_) => 1.0 / ((rank + 1) as f64).powf(1.1),
                _ => (1.5 * normal(rng)).exp(),
            };
            cumulative.push(total);
        }
        let proneness = (0..count).map(|_| (normal(rng) - 0.5).exp()).collect();
        Some(Population { ids: (0..count).map(|_| rng.u64(..)).collect(), cumulative, proneness })
    }

    /// A user drawn by activity: (sticky key, error factor).
    fn draw(&self, rng: &mut Rng) -> (u64, f64) {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let index = self.cumulative.partition_point(|sum| *sum < rng.f64() * total).min(self.ids.len() - 1);
        (self.ids[index], self.proneness[index])
    }
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut Rng) -> f64 {
    let (u, v) = (1.0 - rng.f64(), rng.f64());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// One request of an arm behaving so, with the chance it fails beyond the chance the
/// control would have failed it (its excess, which the harm column sums).
fn sample(rng: &mut Rng, behaviour: Behaviour, population: Option<&Population>) -> (Sample, f64) {
    let (user, proneness) = match population {
        Some(population) => {
            let (id, proneness) = population.draw(rng);
            (Some(id), proneness)
        }
        None => (None, 1.0),
    };
    let latency = MEDIAN_MS * behaviour.slower * (LOG_SPREAD * normal(rng)).exp();
    let failing = (behaviour.errors * proneness).min(1.0);
    let (outcome, millis) = if rng.f64() < behaviour.skipped {
        (Outcome::UpstreamError, 0.0)
    } else if rng.f64() < failing {
        (Outcome::UpstreamError, latency / 4.0)
    } else {
        (Outcome::Ok, latency)
    };
    let fails = behaviour.skipped + (1.0 - behaviour.skipped) * failing;
    let excess = fails - (CONTROL.errors * proneness).min(1.0);
    (Sample { outcome, duration: Duration::from_secs_f64(millis / 1000.0), ttft: None, user }, excess)
}

/// The plan a case runs: its one step, with the production rule around it.
fn plan(case: &Case) -> RolloutPlan {
    RolloutPlan {
        interval: INTERVAL,
        failure_limit: FAILURE_LIMIT,
        on_failure: OnFailure::Rollback,
        on_undecided: OnUndecided::Pause,
        dry_run: false,
        cooldown: Duration::from_secs(600),
        require_validation: false,
        steps: vec![case.step.clone()],
    }
}

/// The step's evidence as the controller snapshots it (no primary or shadow traffic here:
/// at 5% the comparison is with the control slice).
fn snapshot(stats: &StepStats) -> StepSnapshot {
    let arms = vec![ArmSnapshot::default(), stats.arm_snapshot(Arm::Control), stats.arm_snapshot(Arm::Candidate)];
    StepSnapshot { format: SNAPSHOT_FORMAT, arms, ..StepSnapshot::default() }
}

/// One stage: both arms accumulate requests minute by minute, and the controller's own
/// decision function looks after each minute with the step's running time so far; its
/// transitions are followed until one ends the stage.
fn run_stage(rng: &mut Rng, case: &Case, plan: &RolloutPlan) -> Stage {
    let stats = StepStats::default();
    let candidate_users = Population::new(rng, case.users);
    let control_users = Population::new(rng, case.users);
    let minute_ms = INTERVAL.as_millis() as u64;
    let mut state =
        RouteState { phase: Phase::Progressing, weight_bp: case.step.weight_bp, ..RouteState::initial("simulated", 0) };
    let mut harm = 0.0;
    for look in 1..=u64::from(MAX_LOOKS) {
        let mut candidate = match case.degrades {
            Some((from, degraded)) if look > u64::from(from) => degraded,
            _ => case.candidate,
        };
        if candidate.bursts > 0.0 && rng.f64() < candidate.bursts {
            candidate.errors = candidate.burst_errors;
        }
        for _ in 0..PER_INTERVAL {
            let (request, excess) = sample(rng, candidate, candidate_users.as_ref());
            stats.record(Arm::Candidate, request);
            harm += excess;
            stats.record(Arm::Control, sample(rng, CONTROL, control_users.as_ref()).0);
        }
        state.active_ms = look * minute_ms;
        let snapshot = snapshot(&stats);
        let evidence = Evidence { snapshot: &snapshot, baseline: None };
        let decision = decide::tick(&state, plan, evidence, true, (look * minute_ms) as i64);
        let Some(transition) = decision.transition else { continue };
        let requests = snapshot.arm(Arm::Candidate).requests();
        let ending = match transition.kind {
            EventKind::Advance | EventKind::Promoted => Ending::Advanced,
            EventKind::Rollback => Ending::RolledBack,
            EventKind::Undecided => Ending::Undecided,
            EventKind::CheckFailed | EventKind::CheckInconclusive => {
                state = transition.next;
                continue;
            }
            other => panic!("a running step's tick made a {other} transition"),
        };
        return Stage { ending, requests, harm };
    }
    Stage { ending: Ending::Held, requests: u64::from(MAX_LOOKS) * PER_INTERVAL, harm }
}

/// How one stage ended, after how many candidate requests, with how many excess failures
/// (the sum of each candidate request's chance to fail beyond the control's for its user).
#[derive(Debug, Clone, Copy)]
struct Stage {
    ending: Ending,
    requests: u64,
    harm: f64,
}

/// The excess failures a stage of this step may cause: its `max_excess_failures`, or the
/// derived budget at the simulated traffic (`PER_INTERVAL` a minute to `max_duration`).
fn budget(step: &RolloutStep) -> Option<f64> {
    Some(match step.harm_budget()? {
        HarmBudget::Fixed(count) => count,
        HarmBudget::Projected { margin, horizon } => {
            let projected = PER_INTERVAL as f64 * horizon.as_secs_f64() / INTERVAL.as_secs_f64();
            DERIVED_BUDGET_MARGINS * margin * projected
        }
    })
}

/// What a case's stages did.
struct Tally {
    stages: Vec<Stage>,
    budget: Option<f64>,
}

impl Tally {
    fn count(&self, ending: Ending) -> usize {
        self.stages.iter().filter(|stage| stage.ending == ending).count()
    }

    fn share(&self, ending: Ending) -> f64 {
        self.count(ending) as f64 / self.stages.len() as f64 * 100.0
    }

    /// Candidate requests to reach `ending`: (median, p90), or `None` if it never did.
    fn requests(&self, ending: Ending) -> Option<(u64, u64)> {
        let mut values: Vec<u64> =
            self.stages.iter().filter(|stage| stage.ending == ending).map(|stage| stage.requests).collect();
        values.sort_unstable();
        let at = |q: f64| values[((values.len() as f64 - 1.0) * q).round() as usize];
        (!values.is_empty()).then(|| (at(0.5), at(0.9)))
    }

    /// Mean excess failures per stage.
    fn harm(&self) -> f64 {
        self.stages.iter().map(|stage| stage.harm).sum::<f64>() / self.stages.len().max(1) as f64
    }

    /// Stages whose excess failures passed the budget.
    fn over_budget(&self) -> usize {
        self.budget.map_or(0, |budget| self.stages.iter().filter(|stage| stage.harm > budget).count())
    }

    fn max_harm(&self) -> f64 {
        self.stages.iter().map(|stage| stage.harm).fold(0.0, f64::max)
    }

    /// The case's row of the README's table, in markdown.
    fn row(&self, name: &str) -> String {
        let requests = |ending| match self.requests(ending) {
            Some((median, p90)) => format!("{} / {}", thousands(median), thousands(p90)),
            None => "—".to_owned(),
        };
        let budget = self.budget.map_or("—".to_owned(), |budget| thousands(budget as u64));
        format!(
            "| {name} | {} / {} / {} / {} | {} | {} | {} / {} | {budget} |",
            percent(self.share(Ending::RolledBack)),
            percent(self.share(Ending::Advanced)),
            percent(self.share(Ending::Held)),
            percent(self.share(Ending::Undecided)),
            requests(Ending::RolledBack),
            requests(Ending::Advanced),
            thousands(self.harm().max(0.0).round() as u64),
            thousands(self.max_harm().round() as u64),
        )
    }
}

/// `12345` as `12,345`.
fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A share as the table shows it: `0`, `2.2`, `100`.
fn percent(share: f64) -> String {
    let text = format!("{share:.1}");
    text.strip_suffix(".0").map_or(text.clone(), str::to_owned)
}

/// The 99.9% Wilson interval (two-sided, z = 3.29) of `count` of `trials`, as shares.
/// The tolerance that keeps a published share from failing the test by chance while a
/// regression still does.
fn wilson(count: usize, trials: usize, z: f64) -> (f64, f64) {
    let n = trials as f64;
    let p = count as f64 / n;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / (1.0 + z * z / n);
    (centre - half, centre + half)
}

/// Whether `count` of `trials` is credibly above `limit` (a share): the 99.9% one-sided
/// Wilson lower bound of the observed share exceeds it.
fn credibly_above(count: usize, trials: usize, limit: f64) -> bool {
    wilson(count, trials, 3.09).0 > limit
}

fn check_target(case: &Case, tally: &Tally) -> Result<(), String> {
    let trials = tally.stages.len();
    let (rolled_back, advanced) = (tally.count(Ending::RolledBack), tally.count(Ending::Advanced));
    let caught_too_rarely = credibly_above(trials - rolled_back, trials, 0.01);
    let broken = match case.target {
        Target::Advance => credibly_above(rolled_back, trials, 0.01),
        Target::NeverAdvance | Target::RollBack => credibly_above(advanced, trials, 0.05),
        // Catching needs the full look budget: the debug smoke test checks the safe side only.
        Target::Catch => FULL && caught_too_rarely,
        Target::Published => false,
    };
    if broken {
        return Err(format!("{}: misses its target {:?}: {}", case.name, case.target, tally.row(case.name)));
    }
    // The budget's promise: the excess failures stay within it (the bound is at the 5%
    // level; the stage runs up to `failure_limit − 1` looks past the first breach).
    if credibly_above(tally.over_budget(), trials, 0.05) {
        return Err(format!(
            "{}: {} of {trials} stages past the harm budget: {}",
            case.name,
            tally.over_budget(),
            tally.row(case.name)
        ));
    }
    Ok(())
}

/// Every published figure of the case against this run: each share inside the run's
/// 99.9% Wilson interval, each request count within its tolerance, the mean harm within
/// `MEDIAN_TOLERANCE` (or 50 failures, for cases whose harm is about nothing).
fn check_published(case: &Case, tally: &Tally) -> Vec<String> {
    let Some(published) = case.published else { return Vec::new() };
    let trials = tally.stages.len();
    let mut misses = Vec::new();
    let endings = [Ending::RolledBack, Ending::Advanced, Ending::Held, Ending::Undecided];
    for (ending, share) in endings.into_iter().zip(published.shares) {
        let (low, high) = wilson(tally.count(ending), trials, 3.29);
        if !(low * 100.0..=high * 100.0).contains(&share) {
            misses.push(format!("{}: {ending:?} published {share}%, measured {:.1}%", case.name, tally.share(ending)));
        }
    }
    let counts = [(Ending::RolledBack, published.to_roll_back), (Ending::Advanced, published.to_advance)];
    for (ending, figures) in counts {
        let measured = tally.requests(ending);
        let drifted = |published: u64, measured: u64, tolerance: f64| {
            (measured as f64 / published.max(1) as f64 - 1.0).abs() > tolerance
        };
        let wrong = match (figures, measured) {
            (Some((median, p90)), Some((m, p))) => {
                drifted(median, m, MEDIAN_TOLERANCE) || drifted(p90, p, P90_TOLERANCE)
            }
            // A handful of stages ending so is within the shares' tolerance either way.
            (None, Some(_)) | (Some(_), None) => tally.count(ending) * 100 > trials * 2,
            (None, None) => false,
        };
        if wrong {
            misses.push(format!("{}: requests to {ending:?} published {figures:?}, measured {measured:?}", case.name));
        }
    }
    let harm = tally.harm().max(0.0);
    if (harm - published.harm).abs() > (published.harm * MEDIAN_TOLERANCE).max(50.0) {
        misses.push(format!("{}: mean excess failures published {}, measured {harm:.0}", case.name, published.harm));
    }
    misses
}

#[test]
fn the_published_error_rates_of_the_controller_hold() {
    let mut rng = Rng::with_seed(20261126);
    println!(
        "simulation through decide::tick: {TRIALS} stages per case, {PER_INTERVAL} requests per arm per 1-min look, \
         up to {MAX_LOOKS} looks (max_duration), min_requests 1,000, failure limit {FAILURE_LIMIT}; control 1% errors, \
         p50 {MEDIAN_MS} ms"
    );
    println!(
        "| case | % rolled back / advanced / held / undecided | requests to roll back (median / p90) | \
         to advance (median / p90) | excess failures per stage (mean / max) | harm budget |"
    );
    println!("|---|---|---|---|---|---|");
    let mut misses = Vec::new();
    for case in cases() {
        let plan = plan(&case);
        let stages = (0..TRIALS).map(|_| run_stage(&mut rng, &case, &plan)).collect();
        let tally = Tally { stages, budget: budget(&case.step) };
        println!("{}", tally.row(case.name));
        if let Err(miss) = check_target(&case, &tally) {
            misses.push(miss);
        }
        // The published figures are those of the release run (the debug one is a smoke test).
        if FULL {
            misses.extend(check_published(&case, &tally));
        }
    }
    assert!(misses.is_empty(), "{}", misses.join("\n"));
}

/// The status's "detectable increase with 80% power" (`Check::detectable`), checked by
/// simulation: after `n` requests per arm of a healthy candidate the status names an
/// increase; candidates that far above the control, seen after the same `n` requests, fail
/// the check at the fail level about 80% of the time.
#[test]
fn the_status_detectable_increase_is_caught_with_the_power_it_claims() {
    let mut rng = Rng::with_seed(80);
    let step = error_step();
    let trials = if FULL { 1000 } else { 200 };
    let mut report = Vec::new();
    for per_arm in [1_000u64, 5_000, 20_000] {
        let judge = |candidate: &ArmSnapshot, control: &ArmSnapshot| {
            let inputs = Inputs {
                step: &step,
                elapsed: INTERVAL,
                candidate,
                control,
                control_kind: ControlKind::EqualSlice,
                weight_bp: step.weight_bp,
                agreement: None,
            };
            let checks = evaluate(&inputs).checks;
            checks.into_iter().find(|check| check.criterion == Criterion::MaxErrorRateIncrease)
        };
        // What the status shows when both arms measured exactly 1%.
        let exact = ArmSnapshot { ok: per_arm - per_arm / 100, upstream_errors: per_arm / 100, ..Default::default() };
        let claimed = judge(&exact, &exact).and_then(|check| check.detectable).unwrap_or_default();
        let at_claim = errors(CONTROL_ERRORS + claimed / 100.0);
        let failed = (0..trials)
            .filter(|_| {
                let stats = StepStats::default();
                for _ in 0..per_arm {
                    stats.record(Arm::Candidate, sample(&mut rng, at_claim, None).0);
                    stats.record(Arm::Control, sample(&mut rng, CONTROL, None).0);
                }
                let (candidate, control) = (stats.arm_snapshot(Arm::Candidate), stats.arm_snapshot(Arm::Control));
                judge(&candidate, &control).is_some_and(|check| check.verdict == Verdict::Fail)
            })
            .count();
        let (low, high) = wilson(failed, trials, 3.29);
        report.push(format!(
            "{per_arm} per arm: claims {claimed:.2} pp, fails {:.1}% of {trials} (99.9% interval {:.1}–{:.1}%)",
            failed as f64 / trials as f64 * 100.0,
            low * 100.0,
            high * 100.0
        ));
        // At least about the claimed 80% (75%, beyond chance), and not so far above it
        // that the claim is useless (95%).
        if FULL && (high < 0.75 || low > 0.95) {
            report.push("  ^ not the power the status claims".to_owned());
        }
    }
    println!("{}", report.join("\n"));
    assert!(!report.iter().any(|line| line.starts_with("  ^")), "{}", report.join("\n"));
}

/// The tolerance check itself: a run agrees with figures read off it, and not with
/// figures a regression would produce.
#[test]
fn published_figures_are_checked_against_the_run_within_their_tolerance() {
    let stage = |ending, requests, harm| Stage { ending, requests, harm };
    let mut stages = vec![stage(Ending::Advanced, 1000, 0.0); 380];
    stages.extend([stage(Ending::RolledBack, 5000, 300.0); 8]);
    stages.extend([stage(Ending::Undecided, 600_000, 4000.0); 12]);
    stages[0].requests = 900;
    stages[1..61].iter_mut().for_each(|stage| stage.harm = 500.0);
    let tally = Tally { stages, budget: Some(6000.0) };
    let case = |published| Case {
        name: "synthetic",
        step: error_step(),
        candidate: CONTROL,
        users: Users::Independent,
        degrades: None,
        target: Target::Advance,
        published,
    };
    let read_off = row([2.0, 95.0, 0.0, 3.0], Some((5000, 5000)), Some((1000, 1000)), 201.0);
    assert_eq!(check_published(&case(read_off), &tally), Vec::<String>::new());
    let worse = row([8.0, 89.0, 0.0, 3.0], Some((5000, 5000)), Some((1000, 1000)), 201.0);
    assert_eq!(check_published(&case(worse), &tally).len(), 2, "rolled back 2% is not 8%, advanced 95% not 89%");
    let dearer = row([2.0, 95.0, 0.0, 3.0], Some((5000, 5000)), Some((1400, 1000)), 201.0);
    assert_eq!(check_published(&case(dearer), &tally).len(), 1, "a median 40% off");
    let harmless = row([2.0, 95.0, 0.0, 3.0], Some((5000, 5000)), Some((1000, 1000)), 10.0);
    assert_eq!(check_published(&case(harmless), &tally).len(), 1, "201 excess failures a stage are not 10");
    assert_eq!(
        tally.row("synthetic"),
        "| synthetic | 2 / 95 / 0 / 3 | 5,000 / 5,000 | 1,000 / 1,000 | 201 / 4,000 | 6,000 |"
    );
    assert_eq!(tally.over_budget(), 0);
    let within = Tally { budget: Some(3000.0), stages: tally.stages.clone() };
    assert!(check_target(&case(None), &within).is_ok(), "3% of stages past a budget at the 5% level");
    assert!(check_target(&case(None), &Tally { budget: Some(250.0), ..tally }).is_err(), "20% of stages past it");
}
