-- Transfers of the formal record (转接组织关系): the request, its letter and receipt, and
-- every step as history. Keep in step with ../postgres/0008_transfers.sql.
ALTER TABLE organizations ADD COLUMN transfer_two_levels INTEGER NOT NULL DEFAULT 0;

CREATE TABLE transfers (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id         INTEGER NOT NULL REFERENCES members(id),
    -- The flow the transfer ends, if the member is away.
    flow_id           INTEGER REFERENCES flows(id),
    from_org_id       INTEGER NOT NULL REFERENCES organizations(id),
    from_path         TEXT NOT NULL,
    -- The receiving organization: in the system (id and path) or named only.
    to_org_id         INTEGER REFERENCES organizations(id),
    to_path           TEXT,
    to_org_text       TEXT,
    initiator         TEXT NOT NULL,
    status            TEXT NOT NULL,
    two_levels        INTEGER NOT NULL,
    reason            TEXT,
    letter_number     TEXT UNIQUE,
    letter_issued_on  TEXT,
    letter_until      TEXT,
    received_on       TEXT,
    receipt_on        TEXT,
    -- The last reason given for returning or refusing.
    note              TEXT,
    requested_by      INTEGER,
    version           INTEGER NOT NULL DEFAULT 1,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
-- One transfer in progress per member.
CREATE UNIQUE INDEX transfers_one_open ON transfers (member_id)
    WHERE status NOT IN ('done', 'refused', 'withdrawn');
CREATE INDEX transfers_from ON transfers (from_path, status);
CREATE INDEX transfers_to ON transfers (to_path, status);

CREATE TABLE transfer_steps (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    transfer_id  INTEGER NOT NULL REFERENCES transfers(id),
    step         TEXT NOT NULL,
    from_status  TEXT,
    to_status    TEXT NOT NULL,
    user_id      INTEGER,
    username     TEXT,
    note         TEXT,
    at           TEXT NOT NULL
);
CREATE INDEX transfer_steps_transfer ON transfer_steps (transfer_id, id);

-- Letter numbers: a sequence per sending organization and year.
CREATE TABLE letter_counters (
    org_id  INTEGER NOT NULL REFERENCES organizations(id),
    year    INTEGER NOT NULL,
    last    INTEGER NOT NULL,
    PRIMARY KEY (org_id, year)
);
