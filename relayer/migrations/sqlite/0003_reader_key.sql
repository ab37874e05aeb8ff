-- The reader key a client names with its sealed input: only reads signed with it (or the
-- operator token) see the job's status and stream.
ALTER TABLE sealed_inputs ADD COLUMN reader_key TEXT;
