"""The ledger's tables, and the migrations that bring an older ledger up to date.

The schema is versioned with ``PRAGMA user_version``; each migration runs in
one transaction after a copy of the ledger was kept beside it.
"""

from __future__ import annotations

SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    command TEXT NOT NULL,
    engagement_id INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    exit_code INTEGER,
    settings TEXT NOT NULL
);
CREATE TABLE sources (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    engagement_id INTEGER NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    sheet TEXT NOT NULL,
    header TEXT NOT NULL,
    complete INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sources_fingerprint ON sources(sha256, sheet, engagement_id);
CREATE TABLE run_sources (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    source_id INTEGER NOT NULL REFERENCES sources(id),
    PRIMARY KEY (run_id, source_id)
);
CREATE TABLE rows (
    id INTEGER PRIMARY KEY,
    source_id INTEGER NOT NULL REFERENCES sources(id),
    run_id INTEGER NOT NULL REFERENCES runs(id),
    engagement_id INTEGER NOT NULL,
    row_number INTEGER NOT NULL,
    status TEXT NOT NULL,
    identity TEXT,
    phone TEXT,
    contact_id INTEGER,
    reason TEXT NOT NULL DEFAULT '',
    reuse INTEGER NOT NULL DEFAULT 0,
    payload TEXT,
    cells TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (source_id, row_number)
);
CREATE INDEX rows_status ON rows(status, engagement_id);
CREATE INDEX rows_identity ON rows(engagement_id, identity);
CREATE TABLE attempts (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    batch TEXT NOT NULL,
    started_at TEXT NOT NULL,
    status_code INTEGER,
    kind TEXT NOT NULL,
    duration REAL NOT NULL,
    reuse INTEGER NOT NULL,
    row_count INTEGER NOT NULL,
    message TEXT NOT NULL
);
"""

# Each entry upgrades the schema from version N to N + 1.
MIGRATIONS: dict[int, str] = {
    0: _SCHEMA,
    # 2: which run last recorded or sent each row (a retry's rows, a night's own rows),
    # and each run's row counts as they stood when it finished.
    1: """
    ALTER TABLE rows ADD COLUMN last_run_id INTEGER;
    UPDATE rows SET last_run_id = run_id;
    CREATE INDEX rows_last_run ON rows(last_run_id);
    ALTER TABLE runs ADD COLUMN counts TEXT
    """,
    # 3: the ledger knows people. One subscription per person and engagement; a file's
    # versions hold their rows through spans (row numbers -> row ids), so a new version
    # of a cumulative export records only what is new or changed and refers to the rest.
    2: """
    CREATE TABLE subscriptions (
        id INTEGER PRIMARY KEY,
        engagement_id INTEGER NOT NULL,
        identity TEXT NOT NULL,
        contact_id INTEGER,
        subscribed_at TEXT NOT NULL,
        run_id INTEGER REFERENCES runs(id),
        row_id INTEGER REFERENCES rows(id),
        UNIQUE (engagement_id, identity)
    );
    CREATE TABLE spans (
        source_id INTEGER NOT NULL REFERENCES sources(id),
        first_row INTEGER NOT NULL,
        row_count INTEGER NOT NULL,
        first_id INTEGER NOT NULL,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        PRIMARY KEY (source_id, first_row)
    ) WITHOUT ROWID;
    CREATE INDEX spans_rows ON spans(first_id);
    ALTER TABLE sources ADD COLUMN base_id INTEGER REFERENCES sources(id);
    CREATE INDEX sources_file ON sources(path, sheet, engagement_id);
    INSERT INTO spans (source_id, first_row, row_count, first_id, run_id)
        SELECT source_id, min(row_number), count(*), min(id), min(run_id) FROM (
            SELECT source_id, row_number, id, run_id,
                   id - row_number() OVER (PARTITION BY source_id ORDER BY id) AS by_id,
                   row_number - row_number() OVER (PARTITION BY source_id ORDER BY id) AS by_row
            FROM rows)
        GROUP BY source_id, by_id, by_row;
    INSERT OR IGNORE INTO subscriptions
        (engagement_id, identity, contact_id, subscribed_at, run_id, row_id)
        SELECT engagement_id, identity, contact_id, updated_at, last_run_id, id FROM rows
        WHERE status = 'subscribed' AND identity IS NOT NULL ORDER BY id DESC
    """,
}
