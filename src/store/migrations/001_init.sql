-- Tenants, keys, the offer catalog, decision flows, customer profiles, interactions and decision traces.
-- Every table is keyed by tenant.

create table tenants (
  id          text primary key,
  name        text not null,
  status      text not null default 'active' check (status in ('active', 'suspended')),
  plan        text not null default 'community',
  settings    jsonb not null default '{}',
  created_at  timestamptz not null default now()
);

create table api_keys (
  id            text primary key,
  tenant_id     text not null references tenants (id) on delete cascade,
  key_hash      text not null unique,
  prefix        text not null,
  name          text not null default '',
  scopes        text[] not null default '{decide,admin}',
  created_at    timestamptz not null default now(),
  expires_at    timestamptz,
  revoked_at    timestamptz,
  last_used_at  timestamptz
);
create index api_keys_tenant on api_keys (tenant_id);

create table categories (
  tenant_id   text not null references tenants (id) on delete cascade,
  id          text not null,
  name        text not null,
  fields      jsonb not null default '{}',
  computed    jsonb not null default '{}',
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  primary key (tenant_id, id)
);

create table offers (
  tenant_id       text not null references tenants (id) on delete cascade,
  id              text not null,
  category_id     text not null,
  name            text not null,
  description     text not null default '',
  status          text not null default 'active' check (status in ('active', 'inactive')),
  starts_at       timestamptz,
  ends_at         timestamptz,
  priority        integer not null default 50 check (priority between 0 and 100),
  business_value  double precision not null default 0 check (business_value >= 0),
  weight          integer not null default 100 check (weight between 0 and 100),
  mandatory       boolean not null default false,
  fields          jsonb not null default '{}',
  computed        jsonb not null default '{}',
  qualification   jsonb not null default '{}',
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  primary key (tenant_id, id),
  foreign key (tenant_id, category_id) references categories (tenant_id, id)
);

create table channels (
  tenant_id             text not null references tenants (id) on delete cascade,
  id                    text not null,
  name                  text not null,
  type                  text not null default 'digital',
  implicit_impressions  boolean not null default false,
  created_at            timestamptz not null default now(),
  primary key (tenant_id, id)
);

create table placements (
  tenant_id   text not null,
  channel_id  text not null,
  id          text not null,
  name        text not null,
  primary key (tenant_id, channel_id, id),
  foreign key (tenant_id, channel_id) references channels (tenant_id, id) on delete cascade
);

create table creatives (
  tenant_id     text not null,
  id            text not null,
  offer_id      text not null,
  channel_id    text not null,
  placement_id  text,
  name          text not null,
  status        text not null default 'active' check (status in ('active', 'inactive')),
  content       json not null default '{}',
  created_at    timestamptz not null default now(),
  primary key (tenant_id, id),
  foreign key (tenant_id, offer_id) references offers (tenant_id, id) on delete cascade,
  foreign key (tenant_id, channel_id) references channels (tenant_id, id) on delete cascade
);
create index creatives_offer on creatives (tenant_id, offer_id);

create table experiments (
  tenant_id   text not null references tenants (id) on delete cascade,
  id          text not null,
  offer_id    text not null,
  channel_id  text not null,
  status      text not null default 'draft' check (status in ('draft', 'running', 'stopped')),
  -- [{"variant": "control", "creativeId": "...", "weight": 70}, ...]
  variants    jsonb not null,
  created_at  timestamptz not null default now(),
  primary key (tenant_id, id)
);

create table decision_flows (
  tenant_id   text not null references tenants (id) on delete cascade,
  id          text not null,
  name        text not null,
  is_default  boolean not null default false,
  created_at  timestamptz not null default now(),
  primary key (tenant_id, id)
);
create unique index decision_flows_one_default on decision_flows (tenant_id) where is_default;

create table decision_flow_versions (
  tenant_id     text not null,
  flow_id       text not null,
  version       integer not null,
  status        text not null check (status in ('draft', 'published')),
  definition    jsonb not null,
  created_at    timestamptz not null default now(),
  published_at  timestamptz,
  primary key (tenant_id, flow_id, version),
  foreign key (tenant_id, flow_id) references decision_flows (tenant_id, id) on delete cascade
);

create table customer_profiles (
  tenant_id    text not null references tenants (id) on delete cascade,
  customer_id  text not null,
  attributes   jsonb not null default '{}',
  segments     text[] not null default '{}',
  updated_at   timestamptz not null default now(),
  primary key (tenant_id, customer_id)
);

-- Interactions are partitioned by month; partitions are created ahead of time by the service, and the
-- default partition only catches rows outside them.
create table interactions (
  tenant_id     text not null,
  id            text not null,
  customer_id   text not null,
  offer_id      text not null,
  channel_id    text not null,
  creative_id   text,
  outcome_type  text not null,
  trace_id      text,
  metadata      jsonb not null default '{}',
  recorded_at   timestamptz not null default now(),
  primary key (tenant_id, recorded_at, id)
) partition by range (recorded_at);
create table interactions_default partition of interactions default;
create index interactions_customer on interactions (tenant_id, customer_id, recorded_at desc);
create index interactions_id on interactions (tenant_id, id);

-- Learned behaviour per offer and channel, updated in the same transaction as each interaction.
create table offer_channel_stats (
  tenant_id    text not null,
  offer_id     text not null,
  channel_id   text not null,
  impressions  bigint not null default 0,
  clicks       bigint not null default 0,
  conversions  bigint not null default 0,
  negatives    bigint not null default 0,
  updated_at   timestamptz not null default now(),
  primary key (tenant_id, offer_id, channel_id)
);

create table decision_traces (
  tenant_id         text not null,
  trace_id          text not null,
  customer_id       text not null,
  decision_flow_id  text not null,
  body              json not null,
  created_at        timestamptz not null default now(),
  expires_at        timestamptz not null,
  primary key (tenant_id, trace_id)
);
create index decision_traces_expiry on decision_traces (expires_at);
