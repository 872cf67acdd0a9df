-- Sessions of the hall's screens (clerks, supervisors, operators), kept here so that every node
-- of a PostgreSQL deployment knows a session signed in on another. Portable SQL only; times are
-- Unix ms. The session id (256 random bits, in the browser's cookie) is never stored: only its
-- SHA-256, so a copy of the store signs no one in.
CREATE TABLE screen_sessions (
    id_sha256 TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    role TEXT NOT NULL,
    -- The display name, window and hall at sign-in (a JSON object; an OIDC user has no config
    -- entry to read them from again).
    profile TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX screen_sessions_by_expiry ON screen_sessions (expires_at);
