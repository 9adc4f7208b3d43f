-- Members whose record arrived from an organization outside the system (系统外转入), with
-- the letter they brought. Keep in step with ../postgres/0011_arrivals.sql.
CREATE TABLE arrivals (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id      INTEGER NOT NULL REFERENCES members(id),
    org_id         INTEGER NOT NULL REFERENCES organizations(id),
    org_path       TEXT NOT NULL,
    from_org_text  TEXT NOT NULL,
    letter_number  TEXT,
    letter_date    TEXT,
    received_on    TEXT NOT NULL,
    note           TEXT,
    created_by     INTEGER,
    created_at     TEXT NOT NULL
);
CREATE INDEX arrivals_org ON arrivals (org_path);
CREATE INDEX arrivals_member ON arrivals (member_id);
