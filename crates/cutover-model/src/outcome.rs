//! Which arm a request went to and how it ended: the labels the metrics, the rollout's
//! evidence, the shadow comparison and the admin API share.

/// Which side of the split a request was sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Primary = 0,
    Candidate = 1,
    /// A mirrored copy of a primary request sent to the candidate.
    Shadow = 2,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Primary, Role::Candidate, Role::Shadow];

    /// The role a configuration names (`primary`, `candidate`, `shadow`).
    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Candidate => "candidate",
            Role::Shadow => "shadow",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one attempt on one upstream ended, for `cutover_requests_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok = 0,
    /// A 4xx other than 408/429: tracked per arm, since a candidate rejecting what the
    /// primary accepts is a regression.
    ClientError = 1,
    /// Connect error, timeout, 5xx, 429, 408, or a stream broken midway.
    UpstreamError = 2,
    /// The client went away before the answer ended: neither the upstream's success nor
    /// its failure, and its duration is the client's choice, so it is counted apart and
    /// kept out of latency and of the rollout's evidence.
    Cancelled = 3,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [Outcome::Ok, Outcome::ClientError, Outcome::UpstreamError, Outcome::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ClientError => "client_error",
            Outcome::UpstreamError => "upstream_error",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// What became of a mirrored request, for `cutover_shadow_requests_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShadowOutcome {
    Mirrored = 0,
    /// No free slot: the copy was not sent.
    Dropped = 1,
    Failed = 2,
}

impl ShadowOutcome {
    pub const ALL: [ShadowOutcome; 3] = [ShadowOutcome::Mirrored, ShadowOutcome::Dropped, ShadowOutcome::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            ShadowOutcome::Mirrored => "mirrored",
            ShadowOutcome::Dropped => "dropped",
            ShadowOutcome::Failed => "failed",
        }
    }
}

/// Why a mirror was not sent, for `cutover_shadow_dropped_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShadowDrop {
    /// Every slot busy with earlier mirrors (a slow candidate): evidence against it.
    Full = 0,
    /// Above `shadow_max_rps` or `shadow_max_usd_per_hour`.
    Cap = 1,
    /// Every pair slot held, mostly by pairs waiting for the primary's answer (a slow
    /// primary or a slowly read answer): no evidence either way.
    Waiting = 2,
}

impl ShadowDrop {
    pub const ALL: [ShadowDrop; 3] = [ShadowDrop::Full, ShadowDrop::Cap, ShadowDrop::Waiting];

    pub fn as_str(self) -> &'static str {
        match self {
            ShadowDrop::Full => "full",
            ShadowDrop::Cap => "cap",
            ShadowDrop::Waiting => "waiting",
        }
    }
}
