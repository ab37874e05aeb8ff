-- A dispatch attempt holds a lease on its job: several relayer instances share one database, and
-- only a job whose lease ran out (its instance died mid-attempt) is put back to waiting.
ALTER TABLE jobs ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
