-- Prefix searches on ID numbers and phones compare byte-wise, whatever the
-- database's default locale (under a linguistic collation '~' may sort before digits).
ALTER TABLE members ALTER COLUMN id_number TYPE TEXT COLLATE "C";
ALTER TABLE members ALTER COLUMN phone TYPE TEXT COLLATE "C";
