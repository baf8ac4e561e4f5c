-- The admin API: every catalog resource carries a version for optimistic concurrency (an update names
-- the version it read; a stale one is refused) and is deleted softly, because interactions, traces and
-- experiment results keep referring to it. A create on the id of a deleted row brings that row back.
-- Tenant-wide contact policies and qualification rules join the catalog.

alter table categories add column version integer not null default 1;
alter table categories add column deleted_at timestamptz;

alter table offers add column version integer not null default 1;
alter table offers add column deleted_at timestamptz;

alter table channels add column version integer not null default 1;
alter table channels add column updated_at timestamptz not null default now();
alter table channels add column deleted_at timestamptz;

alter table placements add column version integer not null default 1;
alter table placements add column created_at timestamptz not null default now();
alter table placements add column updated_at timestamptz not null default now();
alter table placements add column deleted_at timestamptz;

alter table creatives add column version integer not null default 1;
alter table creatives add column updated_at timestamptz not null default now();
alter table creatives add column deleted_at timestamptz;

alter table experiments add column version integer not null default 1;
alter table experiments add column deleted_at timestamptz;

alter table decision_flows add column version integer not null default 1;
alter table decision_flows add column updated_at timestamptz not null default now();
alter table decision_flows add column deleted_at timestamptz;
-- A deleted flow cannot stay the default, and the default is unique among live flows.
drop index decision_flows_one_default;
create unique index decision_flows_one_default on decision_flows (tenant_id) where is_default and deleted_at is null;

alter table outcome_types add column version integer not null default 1;
alter table outcome_types add column updated_at timestamptz not null default now();
alter table outcome_types add column deleted_at timestamptz;

alter table tenants add column version integer not null default 1;
alter table tenants add column updated_at timestamptz not null default now();

-- Contact policies that apply to every decision flow of the tenant, beside each flow's own.
create table contact_policies (
  tenant_id   text not null references tenants (id) on delete cascade,
  id          text not null,
  name        text not null,
  status      text not null default 'active' check (status in ('active', 'inactive')),
  -- The policy as a flow's definition writes it: {"type": "frequency_cap", "scope": "offer", ...}.
  definition  jsonb not null,
  version     integer not null default 1,
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  deleted_at  timestamptz,
  primary key (tenant_id, id)
);

-- Qualification rules that apply to a set of offers (by id or category; none named means all of them),
-- beside each offer's own qualification.
create table qualification_rules (
  tenant_id   text not null references tenants (id) on delete cascade,
  id          text not null,
  name        text not null,
  status      text not null default 'active' check (status in ('active', 'inactive')),
  -- {"offerIds": [...], "categoryIds": [...], "segment": "...", "condition": "...", "minPropensity": 0.2}
  definition  jsonb not null,
  version     integer not null default 1,
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  deleted_at  timestamptz,
  primary key (tenant_id, id)
);

-- The admin API lists a tenant's keys page by page, and finds one by id within its tenant.
create index api_keys_tenant_id on api_keys (tenant_id, id);

-- The audit log is read newest first, for a tenant or one of its resources.
create index audit_log_tenant_id on audit_log (tenant_id, id);
create index audit_log_tenant_resource on audit_log (tenant_id, resource_type, resource_id, id);
