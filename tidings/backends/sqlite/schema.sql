CREATE TABLE IF NOT EXISTS verifications (
    id TEXT PRIMARY KEY,
    to_addr TEXT NOT NULL,
    channel TEXT NOT NULL,
    status TEXT NOT NULL,
    sealed_code BLOB NOT NULL,
    locale TEXT NOT NULL,
    app_name TEXT NOT NULL,
    template TEXT,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    send_count INTEGER NOT NULL,
    check_count INTEGER NOT NULL,
    delivered_count INTEGER NOT NULL,
    max_checks INTEGER NOT NULL,
    max_sends INTEGER NOT NULL,
    last_sent_at REAL NOT NULL,
    is_test INTEGER NOT NULL,
    country TEXT
);
CREATE INDEX IF NOT EXISTS verifications_by_address ON verifications (to_addr, channel, created_at);
CREATE INDEX IF NOT EXISTS verifications_by_age ON verifications (updated_at);
-- The list (GET /v1/verifications), newest first: one range per status, merged for a list of all; by address,
-- verifications_by_address finds the few. One index, as every write of a verification updates each.
CREATE INDEX IF NOT EXISTS verifications_by_status ON verifications (status, created_at, id);

CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    ref TEXT NOT NULL,
    lane TEXT NOT NULL,
    priority INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    run_at REAL NOT NULL,
    expires_at REAL,
    payload TEXT NOT NULL,
    leased INTEGER NOT NULL DEFAULT 0
);
-- A leased job's run_at is when its lease runs out: then it is due again, so "due" is one indexed column.
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (lane, priority, run_at);
CREATE INDEX IF NOT EXISTS jobs_by_time ON jobs (run_at);

CREATE TABLE IF NOT EXISTS attempts (
    job_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    ref TEXT NOT NULL,
    provider TEXT NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_by_ref ON attempts (ref, at);

CREATE TABLE IF NOT EXISTS rate_limits (
    key TEXT PRIMARY KEY,
    tat REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
);

CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    body BLOB NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS subscribers (
    id TEXT PRIMARY KEY,
    record TEXT NOT NULL,          -- JSON; webhook secrets and Web Push auth secrets sealed
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS subscribers_by_creation ON subscribers (created_at, id);

CREATE TABLE IF NOT EXISTS subscriber_topics (
    topic TEXT NOT NULL,
    subscriber_id TEXT NOT NULL,
    PRIMARY KEY (topic, subscriber_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS subscriber_topics_by_subscriber ON subscriber_topics (subscriber_id);

CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    recipients INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_expiry ON messages (expires_at);
CREATE INDEX IF NOT EXISTS messages_by_creation ON messages (created_at, id);

CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY,       -- the paging cursor
    id TEXT NOT NULL UNIQUE,
    message_id TEXT NOT NULL,
    subscriber_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    target TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_by_message ON deliveries (message_id, status, seq);
CREATE INDEX IF NOT EXISTS deliveries_by_status ON deliveries (status, seq);

-- The message cache of the live streams: what each subscriber's stream was sent, in order, for replay.
CREATE TABLE IF NOT EXISTS stream_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS stream_events_by_subscriber ON stream_events (subscriber_id, seq);
CREATE INDEX IF NOT EXISTS stream_events_by_time ON stream_events (at);

-- Counts per time bucket (core/stats.py): per minute for a day, per hour for a month.
CREATE TABLE IF NOT EXISTS stats (
    resolution INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    name TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (resolution, bucket, name)
) WITHOUT ROWID;
