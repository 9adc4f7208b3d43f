-- Subtrees are ranges of paths (path >= p AND path < p || '~'), which hold in byte order
-- only: under a linguistic collation '~' sorts before the digits. Every other path column
-- is already COLLATE "C". Keep in step with ../sqlite/0012_path_collation.sql.
ALTER TABLE checkins ALTER COLUMN inflow_path TYPE TEXT COLLATE "C";
ALTER TABLE checkins ALTER COLUMN home_path TYPE TEXT COLLATE "C";
ALTER TABLE transfers ALTER COLUMN from_path TYPE TEXT COLLATE "C";
ALTER TABLE transfers ALTER COLUMN to_path TYPE TEXT COLLATE "C";
