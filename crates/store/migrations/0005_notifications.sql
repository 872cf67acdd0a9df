-- Notifications (SMS to applicants, 催办 to departments' contacts) and 电子监察's light changes
-- (docs: gateway_cases::notifications, gateway_cases::supervision). Portable SQL only (SQLite
-- and PostgreSQL); times are Unix ms. No phone number is stored in clear: the applicant's is
-- sealed in case_contacts, a department's is read from the config when sent, and a
-- notification keeps only the masked number it went to.

-- The channel notifications go through, while `[notifications]` is configured (one row, written
-- at start-up). Without it no notification is recorded: enabling notifications later does not
-- send a backlog of stale notices.
CREATE TABLE notification_switch (
    id BIGINT PRIMARY KEY,
    channel TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The outbox: one row per (cause, recipient), written in the transaction of its cause (a case
-- event, a light change), sent by one node under a claim with the row's id as the provider's
-- out-id on every attempt.
CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES cases(id),
    step TEXT,
    department TEXT,
    -- received / returned / approved / rejected / withdrawn / yellow / red / escalation
    kind TEXT NOT NULL,
    -- applicant / staff / supervisor
    recipient TEXT NOT NULL,
    -- What caused it: the event id, or `light:<case>:<step>:<light>`.
    source TEXT NOT NULL,
    -- pending / sent / delivered / undeliverable / failed / opted_out / no_contact / skipped
    state TEXT NOT NULL,
    phone_masked TEXT,
    template TEXT,
    -- The provider's id of the message (its receipt's reference).
    reference TEXT,
    attempts BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    claimed_by TEXT,
    claim_until BIGINT,
    message TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    delivered_at BIGINT,
    UNIQUE (source, recipient)
);

CREATE INDEX notifications_due ON notifications (state, due_at);
CREATE INDEX notifications_by_case ON notifications (case_id, created_at);
CREATE INDEX notifications_by_reference ON notifications (reference);

-- Where the applicant of a case is told: the phone number sealed (associated data
-- `case_contacts.phone:<case id>`), its masked form, and whether they opted out.
CREATE TABLE case_contacts (
    case_id TEXT PRIMARY KEY REFERENCES cases(id),
    phone TEXT,
    phone_masked TEXT,
    opt_out BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Each (step, light) change seen by the light scanner, once: a yellow is a 黄牌, a red a
-- 红牌 event of 电子监察. `clerk` is who received the case (JSON), when a clerk did.
CREATE TABLE light_changes (
    case_id TEXT NOT NULL REFERENCES cases(id),
    step TEXT NOT NULL,
    light TEXT NOT NULL,
    matter TEXT NOT NULL,
    department TEXT NOT NULL,
    at BIGINT NOT NULL,
    deadline_at BIGINT NOT NULL,
    clerk TEXT,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (case_id, step, light)
);

CREATE INDEX light_changes_by_time ON light_changes (light, at);
