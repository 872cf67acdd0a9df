-- The applicant's status page behind a receipt's QR code (扫码查进度, 扫码评): reached without
-- signing in, by an unguessable token (256 random bits), never by the case id. One per case,
-- made when its receipt is first shown and printed on every copy of it. The token is kept as
-- it is (a reprinted receipt shows the same code); what it opens holds no personal data: the
-- service, the matters' states and dates, and the QR channel's one evaluation.
CREATE TABLE case_status_links (
    token TEXT PRIMARY KEY,
    case_id TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
