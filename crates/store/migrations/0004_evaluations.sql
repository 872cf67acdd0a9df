-- 好差评 (GB/T 39734 / 39735): evaluations of decided cases, the rectifications (整改) a bad one
-- opens, and the outbox of reports to the national evaluation system. Portable SQL only
-- (SQLite and PostgreSQL); times are Unix ms, JSON is text. Personal data is stored masked
-- only (the evaluator's name and identity number, the comment), never in the clear.

-- One evaluation of a case on one channel (一事一评): a second on the same channel is refused
-- by the unique index, also when two arrive at once.
CREATE TABLE evaluations (
    id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES cases(id),
    -- window (即时评), qr (扫码评), online, card (评价卡).
    channel TEXT NOT NULL,
    -- 满意度 as GB/T 39046: 1 非常满意 … 5 非常不满意.
    level BIGINT NOT NULL,
    -- The standard's indicators for the channel, each 1-5 (JSON object).
    indicators TEXT NOT NULL,
    -- 1: anonymous (no evaluator recorded or reported).
    anonymous BIGINT NOT NULL,
    -- Masked: the evaluator's name and identity number (named evaluations only).
    evaluator_name TEXT,
    evaluator_id_number TEXT,
    -- Masked free comment.
    comment TEXT,
    service TEXT NOT NULL,
    -- The clerk who received the case (JSON, as on the `received` event), if a clerk did.
    clerk TEXT,
    -- The clerk's id alone, for statistics by clerk.
    clerk_id TEXT,
    -- The portal client that evaluated (the case's owner).
    client TEXT,
    created_at BIGINT NOT NULL
);

CREATE UNIQUE INDEX evaluations_one_per_channel ON evaluations (case_id, channel);
CREATE INDEX evaluations_by_time ON evaluations (created_at);

-- The matters (and their departments) an evaluation is attached to: every step of its case.
CREATE TABLE evaluation_matters (
    evaluation_id TEXT NOT NULL REFERENCES evaluations(id),
    step TEXT NOT NULL,
    matter TEXT NOT NULL,
    department TEXT NOT NULL,
    PRIMARY KEY (evaluation_id, step)
);

-- A rectification (整改) opened by a 不满意 / 非常不满意 evaluation, in its transaction: its
-- limit in working days (the deadline is computed on read from the calendar in force, as for
-- steps), the return visit (回访), the fix, the supervisor's close. Notes are masked.
CREATE TABLE rectifications (
    id TEXT PRIMARY KEY,
    evaluation_id TEXT NOT NULL UNIQUE REFERENCES evaluations(id),
    case_id TEXT NOT NULL REFERENCES cases(id),
    opened_at BIGINT NOT NULL,
    limit_days BIGINT NOT NULL,
    visited_at BIGINT,
    visited_by TEXT,
    visit_note TEXT,
    fixed_at BIGINT,
    fixed_by TEXT,
    fix_note TEXT,
    closed_at BIGINT,
    closed_by TEXT,
    close_note TEXT
);

CREATE INDEX rectifications_open ON rectifications (closed_at, opened_at);

-- The outbox of reports to the national system, written in the evaluation's transaction: one
-- row per evaluation (its id is the idempotency key on every attempt), claimed by one node at
-- a time, retried with back-off, `failed` after the last attempt.
CREATE TABLE evaluation_reports (
    evaluation_id TEXT PRIMARY KEY REFERENCES evaluations(id),
    department TEXT NOT NULL,
    payload TEXT NOT NULL,
    -- pending, reported, failed.
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_by TEXT,
    claim_until BIGINT,
    -- The national system's id for the report, once reported.
    reference TEXT,
    message TEXT,
    updated_at BIGINT NOT NULL
);

CREATE INDEX evaluation_reports_due ON evaluation_reports (state, next_attempt_at);
