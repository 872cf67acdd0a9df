-- The store as it was before versioned migrations, every table of it. A store created by that
-- gateway already has these tables (IF NOT EXISTS leaves them as they are); its two columns added
-- after the first release are added by `Store::open` before this runs.
-- Portable SQL only: one file serves SQLite and PostgreSQL. Times are Unix milliseconds, JSON
-- is text.

CREATE TABLE IF NOT EXISTS cases (
    id TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    form TEXT NOT NULL,
    lookups TEXT NOT NULL,
    idempotency_key TEXT,
    request_digest TEXT,
    created_at BIGINT NOT NULL,
    -- The portal client that applied: the case's owner.
    client TEXT
);

-- A repeated POST with the same Idempotency-Key finds the first case; NULLs do not collide.
CREATE UNIQUE INDEX IF NOT EXISTS cases_by_idempotency_key ON cases (idempotency_key);

CREATE TABLE IF NOT EXISTS steps (
    case_id TEXT NOT NULL REFERENCES cases(id),
    step TEXT NOT NULL,
    matter TEXT NOT NULL,
    department TEXT NOT NULL,
    state TEXT NOT NULL,
    reference TEXT,
    outputs TEXT NOT NULL,
    message TEXT,
    input TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    idempotency_key TEXT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    next_poll_at BIGINT NOT NULL,
    claimed_by TEXT,
    claim_until BIGINT,
    updated_at BIGINT NOT NULL,
    -- The credit codes the (possibly sealed) input names, for the 企业码 view.
    input_codes TEXT,
    PRIMARY KEY (case_id, step)
);

CREATE INDEX IF NOT EXISTS steps_by_reference ON steps (department, reference);
CREATE INDEX IF NOT EXISTS steps_by_state ON steps (state, next_attempt_at);

CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES cases(id),
    at BIGINT NOT NULL,
    step TEXT,
    department TEXT,
    kind TEXT NOT NULL,
    clerk TEXT,
    state TEXT,
    message TEXT
);

CREATE INDEX IF NOT EXISTS events_by_case ON events (case_id, id);

-- A department may call back before its answer to the submission reached the gateway.
CREATE TABLE IF NOT EXISTS early_callbacks (
    department TEXT NOT NULL,
    reference TEXT NOT NULL,
    report TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (department, reference)
);

-- Every portal lookup: who asked, why, for which case or clerk, and how it ended.
CREATE TABLE IF NOT EXISTS lookup_records (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    client TEXT NOT NULL,
    lookup TEXT NOT NULL,
    purpose TEXT NOT NULL,
    case_id TEXT,
    clerk TEXT,
    outcome TEXT NOT NULL
);

-- Electronic licences (电子证照) issued by approved steps: one per step at most.
CREATE TABLE IF NOT EXISTS licences (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    number TEXT NOT NULL,
    holder_kind TEXT NOT NULL,
    holder_id TEXT NOT NULL,
    holder_name TEXT,
    issuer TEXT NOT NULL,
    case_id TEXT NOT NULL REFERENCES cases(id),
    step TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (case_id, step)
);

CREATE INDEX IF NOT EXISTS licences_by_holder ON licences (holder_kind, holder_id);

-- Adapter versions (the component itself as base64 text), each department's route, and the
-- history of changes: the choice every node serves.
CREATE TABLE IF NOT EXISTS adapter_versions (
    digest TEXT PRIMARY KEY,
    department TEXT NOT NULL,
    adapter_version TEXT NOT NULL,
    contract_version TEXT NOT NULL,
    description TEXT NOT NULL,
    size BIGINT NOT NULL,
    signed_by TEXT,
    source TEXT NOT NULL,
    loaded_by TEXT NOT NULL,
    loaded_at BIGINT NOT NULL,
    component TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS adapter_routes (
    department TEXT PRIMARY KEY,
    active TEXT NOT NULL,
    candidate TEXT,
    percent BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS adapter_history (
    id TEXT PRIMARY KEY,
    department TEXT NOT NULL,
    action TEXT NOT NULL,
    digest TEXT,
    operator TEXT NOT NULL,
    at BIGINT NOT NULL,
    detail TEXT
);

CREATE INDEX IF NOT EXISTS adapter_history_by_department ON adapter_history (department, id);

-- The audit log: one hash chain per node. `at` and `department` repeat the record's own
-- fields so that reading by them needs no JSON; verify checks they agree with the record.
CREATE TABLE IF NOT EXISTS audit_log (
    node TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    department TEXT,
    record TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (node, seq)
);

CREATE INDEX IF NOT EXISTS audit_log_by_department ON audit_log (department, at);

CREATE TABLE IF NOT EXISTS audit_seals (
    node TEXT NOT NULL,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    at BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    public_key TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (node, seq)
);
