-- Rosters are uploaded first, their columns checked by the user, then matched in the
-- background with progress, and can be cancelled. The file is kept in parts of a few
-- MiB (a roster of tens of millions of rows is several GiB), until the campaign closes.
-- Keep in step with ../postgres/0014_roster_runs.sql.

-- uploading, uploaded, running, done, failed or cancelled. Earlier rosters were run on upload.
ALTER TABLE screen_rosters ADD COLUMN status TEXT NOT NULL DEFAULT 'done';
-- Which row is the header and what each column feeds (JSON), as detected or as set.
ALTER TABLE screen_rosters ADD COLUMN mapping TEXT;
-- Format, encoding and the first rows with ID numbers masked (JSON), for checking the
-- mapping; cleared when the campaign closes.
ALTER TABLE screen_rosters ADD COLUMN detected TEXT;
ALTER TABLE screen_rosters ADD COLUMN size_bytes INTEGER NOT NULL DEFAULT 0;
-- Why the last run failed (a message code).
ALTER TABLE screen_rosters ADD COLUMN failure TEXT;
ALTER TABLE screen_rosters ADD COLUMN finished_at TEXT;

CREATE TABLE screen_roster_parts (
    roster_id INTEGER NOT NULL REFERENCES screen_rosters(id),
    seq       INTEGER NOT NULL,
    bytes     BLOB NOT NULL,
    PRIMARY KEY (roster_id, seq)
);
INSERT INTO screen_roster_parts (roster_id, seq, bytes)
    SELECT id, 0, content FROM screen_rosters WHERE content IS NOT NULL;
ALTER TABLE screen_rosters DROP COLUMN content;

CREATE INDEX screen_matches_roster ON screen_matches (roster_id);
