-- The month the member's dues are paid up to, as the introduction letter states it (YYYY-MM).
ALTER TABLE transfers ADD COLUMN dues_paid_until TEXT;
