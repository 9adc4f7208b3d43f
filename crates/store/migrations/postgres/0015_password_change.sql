-- An account whose password an administrator set (created or reset) must change it at
-- its next login: the administrator knows it. Keep in step with ../sqlite/0015_password_change.sql.
ALTER TABLE users ADD COLUMN must_change_password BOOLEAN NOT NULL DEFAULT FALSE;
