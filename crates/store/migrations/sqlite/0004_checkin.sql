-- Check-in (报到登记): self-service and counter check-ins, one-time codes, and the
-- outbox through which codes and notices leave. Keep in step with ../postgres/0004_checkin.sql.
ALTER TABLE users ADD COLUMN service_point_id INTEGER REFERENCES service_points(id);

CREATE TABLE checkins (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The client's idempotency key: a retried submission finds its first answer.
    request_key       TEXT NOT NULL UNIQUE,
    channel           TEXT NOT NULL,
    status            TEXT NOT NULL,
    service_point_id  INTEGER REFERENCES service_points(id),
    inflow_org_id     INTEGER NOT NULL REFERENCES organizations(id),
    inflow_path       TEXT NOT NULL,
    member_id         INTEGER REFERENCES members(id),
    name_matches      INTEGER NOT NULL DEFAULT 0,
    home_org_id       INTEGER REFERENCES organizations(id),
    home_path         TEXT,
    home_org_text     TEXT,
    flow_id           INTEGER REFERENCES flows(id),
    name              TEXT NOT NULL,
    id_number         TEXT NOT NULL,
    phone             TEXT NOT NULL,
    division_code     TEXT NOT NULL,
    address           TEXT,
    employer          TEXT,
    occupation        TEXT,
    entered_by        INTEGER REFERENCES users(id),
    decided_by        INTEGER REFERENCES users(id),
    decided_at        TEXT,
    decision_note     TEXT,
    version           INTEGER NOT NULL DEFAULT 1,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
-- One waiting check-in per person: a second submission answers with, or replaces, the first.
CREATE UNIQUE INDEX checkins_one_waiting ON checkins (id_number) WHERE status IN ('pending', 'home_unknown');
CREATE INDEX checkins_home ON checkins (home_path, status);
CREATE INDEX checkins_inflow ON checkins (inflow_path, status);
CREATE INDEX checkins_point ON checkins (service_point_id, status);
CREATE INDEX checkins_member ON checkins (member_id);
CREATE INDEX checkins_id_number ON checkins (id_number);

-- One-time codes sent to a phone; only a hash is kept.
CREATE TABLE one_time_codes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    phone       TEXT NOT NULL,
    code_hash   TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    created_at  TEXT NOT NULL
);
CREATE INDEX one_time_codes_phone ON one_time_codes (phone, id);

-- Messages to send (SMS): written in the transaction that needs them, delivered after.
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    channel     TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    body        TEXT NOT NULL,
    status      TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  TEXT NOT NULL,
    sent_at     TEXT
);
CREATE INDEX outbox_status ON outbox (status, id);

-- Guidance finds organizations by division prefix.
CREATE INDEX organizations_division ON organizations (division_code);
