-- What each decision showed, recorded apart from its trace, so that a response can name the
-- recommendation it answers (recommendation_id) and learning reads the score and propensity it was shown
-- with. One row per decision, its recommendations in `shown` (offerId, creativeId, rank, score, propensity,
-- experimentId, variant); a recommendation id is its decision's id and its rank, so it needs no index of
-- its own. Written in batches after the answer, like traces.
create table decisions (
  tenant_id         text not null,
  decision_id       text not null,
  customer_id       text not null,
  channel_id        text not null,
  placement         text,
  decision_flow_id  text not null,
  flow_version      int not null,
  trace_id          text,
  shown             jsonb not null,
  created_at        timestamptz not null,
  primary key (tenant_id, decision_id)
);
-- Expiry reads by time, erasure by customer, impressions that name only a trace by trace.
create index decisions_created on decisions using brin (created_at);
create index decisions_customer on decisions (tenant_id, customer_id);
create index decisions_trace on decisions (tenant_id, trace_id) where trace_id is not null;

alter table interactions add column recommendation_id text;

-- The transactional outbox: an event is inserted in the transaction of what it reports. Each row carries
-- the id of the transaction that wrote it; the relay reads only rows of transactions older than every
-- transaction still running (the snapshot's xmin), in (xid, seq) order, so no row can appear later behind
-- a position it has passed.
create table outbox_events (
  xid          xid8 not null default pg_current_xact_id(),
  seq          bigserial,
  id           text not null,
  tenant_id    text not null,
  type         text not null,
  customer_id  text not null,
  occurred_at  timestamptz not null,
  body         json not null,
  primary key (xid, seq)
);
-- A webhook reads its tenant's events only (and an erasure a customer's, within its tenant's); expiry by time.
create index outbox_events_tenant on outbox_events (tenant_id, xid, seq);
create index outbox_events_occurred on outbox_events using brin (occurred_at);

-- How far each destination (a webhook, the event stream) has been delivered.
create table event_cursors (
  sink        text primary key,
  xid         xid8 not null,
  seq         bigint not null,
  updated_at  timestamptz not null default now()
);

create table webhooks (
  tenant_id    text not null references tenants (id) on delete cascade,
  id           text not null,
  url          text not null,
  events       text[] not null,
  secret       text not null,
  status       text not null,
  description  text not null default '',
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  primary key (tenant_id, id)
);

-- Events a webhook did not accept after its last retry, kept with their body for redelivery.
create table webhook_dead_letters (
  tenant_id   text not null,
  webhook_id  text not null,
  event_id    text not null,
  event_type  text not null,
  body        json not null,
  attempts    int not null,
  last_error  text not null,
  failed_at   timestamptz not null default now(),
  primary key (tenant_id, webhook_id, event_id),
  foreign key (tenant_id, webhook_id) references webhooks (tenant_id, id) on delete cascade
);
