-- Decision traces partitioned by the day they expire, so that expiry drops whole partitions instead of
-- deleting rows. The service creates the partitions ahead (store/partitions.ts); the default partition
-- catches traces that expire beyond them and is emptied into each new partition as it is created.
-- The primary key must hold the partition key; a trace id is still unique in practice (random, and a
-- retried write carries the same expiry, so it lands on the same row).

alter table decision_traces rename to decision_traces_unpartitioned;
alter index decision_traces_pkey rename to decision_traces_unpartitioned_pkey;
drop index decision_traces_expiry;
drop index decision_traces_customer;

create table decision_traces (
  tenant_id         text not null,
  trace_id          text not null,
  customer_id       text not null,
  decision_flow_id  text not null,
  body              json not null,
  created_at        timestamptz not null default now(),
  expires_at        timestamptz not null,
  primary key (tenant_id, trace_id, expires_at)
) partition by range (expires_at);
create table decision_traces_default partition of decision_traces default;
create index decision_traces_customer on decision_traces (tenant_id, customer_id, created_at desc);

insert into decision_traces (tenant_id, trace_id, customer_id, decision_flow_id, body, created_at, expires_at)
  select tenant_id, trace_id, customer_id, decision_flow_id, body, created_at, expires_at
  from decision_traces_unpartitioned where expires_at > now();
drop table decision_traces_unpartitioned;

-- Who runs a periodic task now: one row per task, held until `expires_at`, so that one instance at a time
-- runs it, each of its steps in a short transaction of its own.
create table maintenance_leases (
  name        text primary key,
  holder      text not null,
  expires_at  timestamptz not null
);
