-- Activity certificates (流动党员活动证): issued by the outflow side's basic-level committee,
-- asked for in reverse by the inflow side, checked at check-in, verified publicly.
-- Keep in step with ../postgres/0009_certificates.sql.
CREATE TABLE certificates (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Given at issue; a reverse request has none until then.
    number                TEXT UNIQUE,
    member_id             INTEGER NOT NULL REFERENCES members(id),
    issuer_org_id         INTEGER NOT NULL REFERENCES organizations(id),
    issuer_path           TEXT NOT NULL,
    -- The inflow organization that asked, for a certificate issued in reverse.
    requester_org_id      INTEGER REFERENCES organizations(id),
    requester_path        TEXT,
    destination_division  TEXT NOT NULL,
    destination           TEXT,
    reason                TEXT NOT NULL,
    valid_from            TEXT NOT NULL,
    valid_until           TEXT NOT NULL,
    status                TEXT NOT NULL,
    -- The last reason given for refusing or revoking.
    note                  TEXT,
    -- The certificate this one replaces (re-issued when lost).
    replaces_id           INTEGER REFERENCES certificates(id),
    issued_on             TEXT,
    -- A decision on a reverse request the requesting side has not opened yet.
    answer_unseen         INTEGER NOT NULL DEFAULT 0,
    created_by            INTEGER,
    version               INTEGER NOT NULL DEFAULT 1,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL
);
-- One certificate in force or asked for per member.
CREATE UNIQUE INDEX certificates_one_open ON certificates (member_id) WHERE status IN ('requested', 'issued');
CREATE INDEX certificates_issuer ON certificates (issuer_path, status);
CREATE INDEX certificates_requester ON certificates (requester_path, status);

CREATE TABLE certificate_steps (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    certificate_id  INTEGER NOT NULL REFERENCES certificates(id),
    step            TEXT NOT NULL,
    from_status     TEXT,
    to_status       TEXT NOT NULL,
    user_id         INTEGER,
    username        TEXT,
    note            TEXT,
    at              TEXT NOT NULL
);
CREATE INDEX certificate_steps_certificate ON certificate_steps (certificate_id, id);

CREATE TABLE certificate_photos (
    certificate_id  INTEGER PRIMARY KEY REFERENCES certificates(id),
    content_type    TEXT NOT NULL,
    content         BLOB NOT NULL
);

-- Certificate numbers: a sequence per issuing committee and year.
CREATE TABLE certificate_counters (
    org_id  INTEGER NOT NULL REFERENCES organizations(id),
    year    INTEGER NOT NULL,
    last    INTEGER NOT NULL,
    PRIMARY KEY (org_id, year)
);

-- The certificate the inflow side checked at check-in, and who checked it when.
ALTER TABLE checkins ADD COLUMN certificate_number TEXT;
ALTER TABLE checkins ADD COLUMN certificate_in_system INTEGER;
ALTER TABLE checkins ADD COLUMN certificate_checked_at TEXT;
ALTER TABLE checkins ADD COLUMN certificate_checked_by TEXT;
