-- An outbox row keeps only the event's data in `body`: the rest of the event (id, type, tenantId,
-- occurredAt) is already in the row's own columns, and the relay writes the event's JSON from them. Rows
-- written before hold the whole event in `body` (data_only false), and are sent as they are.
alter table outbox_events add column data_only boolean not null default false;
