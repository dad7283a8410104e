-- cutover's fleet state, version 1: what SQLite keeps for one gateway (each route's
-- rollout, the audit log, the judged evidence) plus what a fleet needs (a version per
-- route row for compare-and-set, each instance's evidence, the leader's lease, the
-- instances' reports). Applied in one transaction by `cutover serve`.

CREATE TABLE rollout_state (
    route TEXT PRIMARY KEY,
    phase TEXT NOT NULL,
    step INTEGER NOT NULL,
    weight_bp INTEGER NOT NULL,
    step_started_at BIGINT NOT NULL,
    consecutive_failures INTEGER NOT NULL,
    active_ms BIGINT NOT NULL DEFAULT 0,
    step_backs INTEGER NOT NULL DEFAULT 0,
    -- Raised by every write: a write names the version it was decided on.
    version BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    route TEXT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    from_phase TEXT NOT NULL,
    to_phase TEXT NOT NULL,
    weight_bp INTEGER NOT NULL,
    reason TEXT NOT NULL,
    -- The gateway that wrote it.
    instance TEXT NOT NULL
);
CREATE INDEX events_by_route ON events (route, id);

-- The evidence the leader last judged, and the primary baseline of a 100% step.
CREATE TABLE step_stats (
    route TEXT PRIMARY KEY,
    step INTEGER NOT NULL,
    step_started_at BIGINT NOT NULL,
    snapshot TEXT NOT NULL,
    baseline TEXT
);

-- Each instance's evidence of a step: its running total, replaced by every flush.
CREATE TABLE step_evidence (
    route TEXT NOT NULL,
    step INTEGER NOT NULL,
    step_started_at BIGINT NOT NULL,
    instance TEXT NOT NULL,
    requests BIGINT NOT NULL,
    snapshot TEXT NOT NULL,
    flushed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (route, step, step_started_at, instance)
);

-- The leader's lease: one row. `epoch` rises at every change of holder (fencing).
CREATE TABLE fleet_lease (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    holder TEXT,
    epoch BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
INSERT INTO fleet_lease (id, holder, epoch, expires_at) VALUES (1, NULL, 0, now());

-- What each instance last reported: when, and the weights it applies.
CREATE TABLE fleet_instances (
    instance TEXT PRIMARY KEY,
    started_at TIMESTAMPTZ NOT NULL,
    last_report TIMESTAMPTZ NOT NULL,
    applied TEXT NOT NULL,
    buffered_requests BIGINT NOT NULL DEFAULT 0
);
