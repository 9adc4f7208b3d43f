-- Co-management agreements (共建共管协议) and their attached files. Keep in step with
-- ../postgres/0007_agreements.sql. A party is an organization in the system (org_id) or a
-- name; one party at least is in the system. Paths are read through the join, so that
-- moving an organization needs no copy here.
CREATE TABLE agreements (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    title                  TEXT NOT NULL,
    number                 TEXT,
    outflow_org_id         INTEGER REFERENCES organizations(id),
    outflow_name           TEXT,
    outflow_contact_name   TEXT,
    outflow_contact_phone  TEXT,
    inflow_org_id          INTEGER REFERENCES organizations(id),
    inflow_name            TEXT,
    inflow_contact_name    TEXT,
    inflow_contact_phone   TEXT,
    signed_on              TEXT,
    starts_on              TEXT NOT NULL,
    ends_on                TEXT,
    org_building           TEXT,
    member_management      TEXT,
    consultation           TEXT,
    consultation_cycle     TEXT,
    funding                TEXT,
    funding_outflow_yuan   INTEGER,
    funding_inflow_yuan    INTEGER,
    activities             TEXT,
    note                   TEXT,
    created_by             INTEGER REFERENCES users(id),
    version                INTEGER NOT NULL DEFAULT 1,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL,
    CHECK (outflow_org_id IS NOT NULL OR inflow_org_id IS NOT NULL)
);
CREATE INDEX agreements_outflow ON agreements (outflow_org_id);
CREATE INDEX agreements_inflow ON agreements (inflow_org_id);

CREATE TABLE agreement_files (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    agreement_id   INTEGER NOT NULL REFERENCES agreements(id),
    file_name      TEXT NOT NULL,
    content_type   TEXT NOT NULL,
    size_bytes     INTEGER NOT NULL,
    sha256         TEXT NOT NULL,
    content        BLOB NOT NULL,
    uploaded_by    INTEGER REFERENCES users(id),
    uploaded_at    TEXT NOT NULL
);
CREATE INDEX agreement_files_agreement ON agreement_files (agreement_id);
