-- The service network (服务网络): 市级中心 › 区镇驿站 › 村社窗口 › 小区点位, each
-- run by an organization. Keep in step with ../postgres/0003_service_points.sql.
CREATE TABLE service_points (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    code           TEXT NOT NULL UNIQUE,
    parent_id      INTEGER REFERENCES service_points(id),
    name           TEXT NOT NULL,
    level          TEXT NOT NULL,
    org_id         INTEGER NOT NULL REFERENCES organizations(id),
    division_code  TEXT NOT NULL,
    address        TEXT,
    hotline        TEXT,
    opening_hours  TEXT,
    status         TEXT NOT NULL DEFAULT 'active',
    version        INTEGER NOT NULL DEFAULT 1,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX service_points_org ON service_points (org_id);
CREATE INDEX service_points_parent ON service_points (parent_id);
CREATE INDEX service_points_division ON service_points (division_code);
