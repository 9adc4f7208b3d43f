-- SQLite compares text byte-wise already; the PostgreSQL twin of this migration sets
-- that collation on members.id_number and members.phone. Kept so both backends share
-- one numbering.
SELECT 1;
