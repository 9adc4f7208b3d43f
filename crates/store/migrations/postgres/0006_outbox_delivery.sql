-- Delivery through an SMS gateway: when a pending message may be tried next. A failed
-- try pushes it back (backoff); a try in progress holds it (a lease), so two servers on
-- one database do not send it twice. NULL: due now. Keep in step with
-- ../sqlite/0006_outbox_delivery.sql.
ALTER TABLE outbox ADD COLUMN next_attempt_at TIMESTAMPTZ;
