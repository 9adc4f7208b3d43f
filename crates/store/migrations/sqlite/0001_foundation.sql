-- Kite foundation schema (SQLite). Keep in step with ../postgres/0001_foundation.sql:
-- same tables, columns and indexes; only types and identity columns differ.

CREATE TABLE organizations (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    code           TEXT NOT NULL UNIQUE,
    parent_id      INTEGER REFERENCES organizations(id),
    -- Materialized path: ancestors' ids then own id, 10 digits each.
    path           TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    level          TEXT NOT NULL,
    kind           TEXT NOT NULL,
    division_code  TEXT NOT NULL,
    address        TEXT,
    phone          TEXT,
    status         TEXT NOT NULL DEFAULT 'active',
    -- Counters of this organization alone; subtree totals are a range sum over path.
    member_count   INTEGER NOT NULL DEFAULT 0,
    outflow_count  INTEGER NOT NULL DEFAULT 0,
    inflow_count   INTEGER NOT NULL DEFAULT 0,
    version        INTEGER NOT NULL DEFAULT 1,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX organizations_parent ON organizations (parent_id, code);
CREATE INDEX organizations_counts ON organizations (path, status, member_count, outflow_count, inflow_count);

CREATE TABLE members (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    name                TEXT NOT NULL,
    -- Simplified, space-free form of the name for search.
    name_key            TEXT NOT NULL,
    gender              TEXT NOT NULL,
    ethnicity           TEXT NOT NULL,
    birth_date          TEXT NOT NULL,
    id_number           TEXT NOT NULL UNIQUE,
    phone               TEXT,
    education           TEXT,
    joined_on           TEXT NOT NULL,
    category            TEXT NOT NULL,
    org_id              INTEGER NOT NULL REFERENCES organizations(id),
    -- Copy of the formal organization's path, so scope filters are one index range.
    org_path            TEXT NOT NULL,
    residence_division  TEXT,
    residence_address   TEXT,
    employer            TEXT,
    occupation          TEXT,
    mobility            TEXT NOT NULL DEFAULT 'resident',
    version             INTEGER NOT NULL DEFAULT 1,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
CREATE INDEX members_name ON members (name_key, id);
CREATE INDEX members_phone ON members (phone);
CREATE INDEX members_org_path ON members (org_path, id);
CREATE INDEX members_org ON members (org_id);

-- One period away from home. Check-in, dual management and transfer columns are
-- here from the start; their workflows come with later capabilities.
CREATE TABLE flows (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id             INTEGER NOT NULL REFERENCES members(id),
    outflow_org_id        INTEGER NOT NULL REFERENCES organizations(id),
    outflow_path          TEXT NOT NULL,
    inflow_org_id         INTEGER REFERENCES organizations(id),
    inflow_path           TEXT,
    destination_division  TEXT NOT NULL,
    destination_address   TEXT,
    reason                TEXT NOT NULL,
    left_on               TEXT NOT NULL,
    expected_months       INTEGER,
    contact_phone         TEXT,
    status                TEXT NOT NULL,
    checked_in_at         TEXT,
    ended_on              TEXT,
    note                  TEXT,
    created_by            INTEGER,
    version               INTEGER NOT NULL DEFAULT 1,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL
);
-- At most one open flow per member, enforced by the database.
CREATE UNIQUE INDEX flows_one_open ON flows (member_id)
    WHERE status IN ('not_checked_in', 'checked_in', 'lost_contact');
CREATE INDEX flows_member ON flows (member_id, left_on);
CREATE INDEX flows_outflow ON flows (outflow_path, status);
CREATE INDEX flows_inflow ON flows (inflow_path, status);
CREATE INDEX flows_outflow_org ON flows (outflow_org_id);
CREATE INDEX flows_inflow_org ON flows (inflow_org_id);

CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    username       TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL,
    org_id         INTEGER REFERENCES organizations(id),
    member_id      INTEGER REFERENCES members(id),
    display_name   TEXT,
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

-- Browser sessions and API tokens; only a hash of the secret is stored.
CREATE TABLE sessions (
    token_hash    TEXT PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id),
    kind          TEXT NOT NULL,
    csrf_token    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Failed logins per key (user name, client address) for throttling.
CREATE TABLE login_throttle (
    key           TEXT PRIMARY KEY,
    failures      INTEGER NOT NULL,
    locked_until  TEXT,
    updated_at    TEXT NOT NULL
);

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    user_id      INTEGER,
    username     TEXT,
    client       TEXT,
    action       TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    target_type  TEXT,
    target_id    TEXT,
    before_data  TEXT,
    after_data   TEXT
);
CREATE INDEX audit_log_target ON audit_log (target_type, target_id, id);
CREATE INDEX audit_log_user ON audit_log (user_id, id);
