-- SMS unsubscribe (退订): an applicant's reply "TD" / "退订" to the notification channel opts
-- the number out of every case it is registered on, and of cases it is registered on later.
-- Portable SQL only (SQLite and PostgreSQL); times are Unix ms. The number is never stored in
-- clear: it is found by a keyed digest (`<key id>:<hex HMAC-SM3>`, the key derived from the
-- store's payload key; see gateway_store::notifications), kept beside its sealed value.

-- The digest of the case's number (written with the number), and who opted the case out:
-- `portal` (PUT /api/v1/cases/{id}/notifications) or `reply` (the applicant's SMS reply).
ALTER TABLE case_contacts ADD COLUMN phone_digest TEXT;
ALTER TABLE case_contacts ADD COLUMN opted_out_by TEXT;

CREATE INDEX case_contacts_by_phone_digest ON case_contacts (phone_digest);

-- Numbers whose owner replied 退订: one row per number (its digest), with the masked number,
-- the channel and the provider's id of the reply.
CREATE TABLE phone_opt_outs (
    phone_digest TEXT PRIMARY KEY,
    phone_masked TEXT NOT NULL,
    channel TEXT NOT NULL,
    reference TEXT,
    created_at BIGINT NOT NULL
);
