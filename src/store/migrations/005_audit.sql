-- Who changed what, and when: one row per admin write (customer upserts, imports and erasures). The
-- table is append-only: the service only inserts, and a trigger refuses updates and deletes.

create table audit_log (
  id             bigserial primary key,
  tenant_id      text not null,
  actor_key_id   text not null,
  action         text not null,
  resource_type  text not null,
  resource_id    text not null,
  details        jsonb not null default '{}',
  at             timestamptz not null default now()
);
create index audit_log_tenant_at on audit_log (tenant_id, at);

create function audit_log_append_only() returns trigger language plpgsql as $$
begin
  raise exception 'audit_log is append-only';
end;
$$;
create trigger audit_log_append_only before update or delete on audit_log
  for each row execute function audit_log_append_only();

-- An erasure request deletes a customer's decision traces by customer.
create index decision_traces_customer on decision_traces (tenant_id, customer_id);
