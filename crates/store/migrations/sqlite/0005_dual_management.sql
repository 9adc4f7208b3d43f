-- Dual management: the mobility date rule as a column the daily job keeps, and the
-- inflow side's evaluations. Keep in step with ../postgres/0005_dual_management.sql.
ALTER TABLE flows ADD COLUMN mobile BOOLEAN NOT NULL DEFAULT FALSE;
-- Why the flow ended, kept apart from the departure's note.
ALTER TABLE flows ADD COLUMN return_note TEXT;
-- What the daily job looks for: open flows not yet counted as mobile, by departure date.
CREATE INDEX flows_becoming_mobile ON flows (left_on)
    WHERE mobile = FALSE AND status IN ('not_checked_in', 'checked_in', 'lost_contact');

CREATE TABLE inflow_evaluations (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    flow_id        INTEGER NOT NULL REFERENCES flows(id),
    member_id      INTEGER NOT NULL REFERENCES members(id),
    inflow_org_id  INTEGER NOT NULL REFERENCES organizations(id),
    period         TEXT NOT NULL,
    rating         TEXT NOT NULL,
    comment        TEXT,
    evaluated_by   INTEGER REFERENCES users(id),
    version        INTEGER NOT NULL DEFAULT 1,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (flow_id, period)
);
CREATE INDEX inflow_evaluations_member ON inflow_evaluations (member_id, period);
