-- Application materials (docs/materials.md): files stored once by their SM3 digest, in chunks
-- sealed at rest; drafts (applications in preparation) and the materials uploaded to them; the
-- materials of each case. Portable SQL only (SQLite and PostgreSQL); times are Unix ms.

-- One stored file, by the SM3 of its bytes: the same bytes uploaded twice are stored once.
CREATE TABLE material_blobs (
    sm3 TEXT PRIMARY KEY,
    media_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    -- The chunk size it was written with (every chunk but the last is this long).
    chunk_size BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Its bytes, chunk n at offset n * chunk_size: sealed (`enc1:…`, associated data
-- `material:<sm3>:<n>`) when store encryption is on, else base64.
CREATE TABLE material_chunks (
    sm3 TEXT NOT NULL REFERENCES material_blobs(sm3) ON DELETE CASCADE,
    n BIGINT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (sm3, n)
);

-- An upload in progress: its chunks are written as they arrive, before the digest that names
-- them is known; when the upload completes they become a blob (or are dropped, when the blob
-- is there already). An upload cut off leaves these rows only, which no draft or case names,
-- and which are removed once older than any upload may take.
CREATE TABLE material_uploads (
    id TEXT PRIMARY KEY,
    started_at BIGINT NOT NULL
);

CREATE TABLE material_upload_chunks (
    upload_id TEXT NOT NULL REFERENCES material_uploads(id) ON DELETE CASCADE,
    n BIGINT NOT NULL,
    -- Sealed with associated data `material-upload:<upload id>:<n>`, or base64.
    data TEXT NOT NULL,
    PRIMARY KEY (upload_id, n)
);

-- An application in preparation, owned by the portal client that opened it.
CREATE TABLE drafts (
    id TEXT PRIMARY KEY,
    client TEXT NOT NULL,
    service TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- The last change (an upload, a removal): the draft expires a set time after it.
    updated_at BIGINT NOT NULL
);

CREATE INDEX drafts_by_update ON drafts (updated_at);

CREATE TABLE draft_materials (
    draft_id TEXT NOT NULL REFERENCES drafts(id) ON DELETE CASCADE,
    code TEXT NOT NULL,
    sm3 TEXT NOT NULL REFERENCES material_blobs(sm3),
    uploaded_at BIGINT NOT NULL,
    PRIMARY KEY (draft_id, code)
);

CREATE INDEX draft_materials_by_blob ON draft_materials (sm3);

-- Each material of a case, written with the case: `file` (sm3), `licence` (licence_id; or
-- NULL while a step of the case is still to issue the licence of licence_kind), `promised`
-- (容缺: due, once set).
CREATE TABLE case_materials (
    case_id TEXT NOT NULL REFERENCES cases(id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    sm3 TEXT REFERENCES material_blobs(sm3),
    licence_id TEXT,
    licence_kind TEXT,
    due TEXT,
    PRIMARY KEY (case_id, code)
);

CREATE INDEX case_materials_by_blob ON case_materials (sm3);
