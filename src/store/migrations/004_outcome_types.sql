-- Outcome types a tenant registers beyond the built-in ones, each classified for learning: positive
-- outcomes raise an offer's propensity like clicks, negative ones are counted as rejections.

create table outcome_types (
  tenant_id       text not null references tenants (id) on delete cascade,
  id              text not null,
  classification  text not null check (classification in ('positive', 'negative', 'neutral')),
  created_at      timestamptz not null default now(),
  primary key (tenant_id, id)
);

comment on column offer_channel_stats.clicks is 'positive outcomes other than conversions (clicks and tenant-defined positive types)';
