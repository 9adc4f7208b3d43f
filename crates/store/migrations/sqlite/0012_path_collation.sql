-- SQLite compares text in byte order already (BINARY): nothing to change here. Kept so that
-- both backends number their migrations alike; see ../postgres/0012_path_collation.sql.
SELECT 1;
