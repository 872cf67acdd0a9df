-- The case lifecycle after delivery: 补正 (a department returns a matter, the
-- applicant supplements it), 撤回 (the applicant withdraws the case), 容缺 (a material promised
-- at application, supplied later). Portable SQL only (SQLite and PostgreSQL); times are Unix ms.

-- What the department asks the applicant to supplement while the step is returned: JSON text
-- (fields with reasons, materials with reasons, due), masked, sealed like the step's input
-- (associated data `steps.requested:<case>:<step>`). Kept after the supplement, for the record.
ALTER TABLE steps ADD COLUMN requested TEXT;
-- When the step was last returned to the applicant: its clock is paused from then.
ALTER TABLE steps ADD COLUMN returned_at BIGINT;
-- Working days the step spent returned, added to its limit (matter `supplement_clock =
-- "resume"`): the working days after each return day up to and including its supplement's day.
ALTER TABLE steps ADD COLUMN paused_days BIGINT NOT NULL DEFAULT 0;
-- With `supplement_clock = "restart"`: the limit counts again from the supplement's arrival.
ALTER TABLE steps ADD COLUMN clock_from BIGINT;

-- The applicant withdrew the case (撤回): when, and the reason (sealed, `cases.withdrawal:<id>`).
ALTER TABLE cases ADD COLUMN withdrawn_at BIGINT;
ALTER TABLE cases ADD COLUMN withdrawal_reason TEXT;

-- 容缺: when the applicant's commitment to provide a deferrable material falls due
-- (`YYYY-MM-DD`, the last working day) is `case_materials.due`; who signed it:
ALTER TABLE case_materials ADD COLUMN committed_by TEXT;

-- The outbox of actions on a step already at its department: a supplement (fields and
-- materials, or a promised material supplied later) or a withdrawal. Written in the transaction
-- that caused it; one node delivers it under a claim, with the same idempotency key on every
-- attempt, backing off, failing for good after the department's max attempts.
CREATE TABLE step_actions (
    id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES cases(id),
    step TEXT NOT NULL,
    -- supplement / withdrawal
    kind TEXT NOT NULL,
    -- supplement: the changed fields (JSON object text); withdrawal: the reason. Sealed
    -- (`step_actions.payload:<id>`).
    payload TEXT NOT NULL,
    -- The material codes handed with a supplement (JSON array text).
    materials TEXT NOT NULL,
    -- What the department sees on every attempt.
    idempotency_key TEXT NOT NULL,
    -- The portal's Idempotency-Key of the request that made it, and the request's digest.
    request_key TEXT,
    request_digest TEXT,
    -- pending (due at next_attempt_at) / waiting (for the step's reference: it is still being
    -- submitted) / delivered / failed / cancelled
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_by TEXT,
    claim_until BIGINT,
    message TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX step_actions_due ON step_actions (state, next_attempt_at);
CREATE INDEX step_actions_by_step ON step_actions (case_id, step);
CREATE UNIQUE INDEX step_actions_by_request ON step_actions (case_id, request_key);
