-- Less written per interaction, for bulk respond.
--
-- A retry's answer is rebuilt instead of stored: the retry is the same request (its hash says so), and
-- what its answer holds besides the request is the first write's interaction id and its recorded_at (the
-- creative an answer names comes from the request or from the recommendation it names, which does not
-- change). Keys stored before keep their whole answer in `response`, which is replayed as it was.
alter table idempotency_keys alter column response drop not null;
alter table idempotency_keys add column recorded_at timestamptz;

-- No query looks an interaction up by its id alone, and each row paid for this index.
drop index interactions_id;
