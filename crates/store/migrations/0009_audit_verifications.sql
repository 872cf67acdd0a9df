-- Verifications of the audit chains run from the operators' console (as `gateway audit verify`
-- does): kept here rather than in a node's memory, so the console shows the last one after a
-- restart and on every node of a PostgreSQL deployment. Portable SQL only; times are Unix ms,
-- flags 0 or 1. Each run is a row (the last one is shown); `problems` is a JSON array of
-- `{node, seq, what}`.
CREATE TABLE audit_verifications (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    -- The node whose console ran it, and the operator who asked.
    node TEXT NOT NULL,
    operator TEXT NOT NULL,
    ok BIGINT NOT NULL,
    chains BIGINT NOT NULL,
    records BIGINT NOT NULL,
    seals BIGINT NOT NULL,
    -- Records the newest seals did not cover yet.
    unsealed BIGINT NOT NULL,
    signatures_checked BIGINT NOT NULL,
    problems TEXT NOT NULL
);

CREATE INDEX audit_verifications_by_time ON audit_verifications (at);
