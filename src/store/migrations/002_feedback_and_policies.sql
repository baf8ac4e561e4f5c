-- Contact-policy state, idempotent responds, and what each impression was shown with.

-- A customer who opted out of a channel gets nothing more on it until the opt-out is cleared.
create table contact_opt_outs (
  tenant_id    text not null,
  customer_id  text not null,
  channel_id   text not null,
  created_at   timestamptz not null default now(),
  primary key (tenant_id, customer_id, channel_id)
);

-- Respond with an Idempotency-Key: the first result is kept so a retry returns it without a second write.
create table idempotency_keys (
  tenant_id       text not null,
  key             text not null,
  request_hash    text not null,
  interaction_id  text not null,
  response        jsonb not null,
  created_at      timestamptz not null default now(),
  primary key (tenant_id, key)
);
create index idempotency_keys_created on idempotency_keys (created_at);

-- The propensity and score an impression was shown with, for offline evaluation of the policy.
alter table interactions add column propensity double precision;
alter table interactions add column score double precision;
