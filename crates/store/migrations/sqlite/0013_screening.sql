-- Screening campaigns (动态排查): rosters from other departments matched against a region's
-- registry, and the matches under review. When a campaign closes its rosters are deleted,
-- and of the matches only the accepted ones keep the roster's data.
-- Keep in step with ../postgres/0013_screening.sql.
CREATE TABLE screen_campaigns (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL,
    org_id       INTEGER NOT NULL REFERENCES organizations(id),
    scope_path   TEXT NOT NULL,
    -- The place the rosters come from (an organization's area; the region itself if none):
    -- a member found is known there, or a candidate for it to contact.
    place_org_id INTEGER REFERENCES organizations(id),
    place_path   TEXT,
    starts_on    TEXT NOT NULL,
    ends_on      TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_by   INTEGER,
    created_at   TEXT NOT NULL,
    closed_at    TEXT,
    version      INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX screen_campaigns_scope ON screen_campaigns (scope_path);

CREATE TABLE screen_rosters (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id  INTEGER NOT NULL REFERENCES screen_campaigns(id),
    file_name    TEXT NOT NULL,
    source       TEXT,
    rows_read    INTEGER NOT NULL,
    unreadable   INTEGER NOT NULL,
    matched      INTEGER NOT NULL,
    to_review    INTEGER NOT NULL,
    uploaded_by  INTEGER,
    uploaded_at  TEXT NOT NULL,
    -- Unreadable rows, each with its line and reason (JSON, the first thousand).
    errors       TEXT,
    -- The file itself, until the campaign closes.
    content      BLOB
);
CREATE INDEX screen_rosters_campaign ON screen_rosters (campaign_id);

CREATE TABLE screen_matches (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id   INTEGER NOT NULL REFERENCES screen_campaigns(id),
    roster_id     INTEGER NOT NULL REFERENCES screen_rosters(id),
    line          INTEGER NOT NULL,
    -- The roster row as read (JSON), cleared at close unless accepted.
    row_data      TEXT,
    member_id     INTEGER NOT NULL REFERENCES members(id),
    score         REAL NOT NULL,
    band          TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    -- Which fields agreed (JSON), for the reviewer.
    explanation   TEXT,
    decision      TEXT,
    decided_by    INTEGER,
    decided_at    TEXT,
    note          TEXT,
    version       INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX screen_matches_campaign ON screen_matches (campaign_id, decision);
