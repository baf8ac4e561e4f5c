-- Experiment phases: changing the weights of a running experiment starts a new phase, and results are
-- counted per phase (re-weighting in place would mix two splits into one result).

alter table experiments add column goal text not null default 'conversion';
alter table experiments add column updated_at timestamptz not null default now();

create table experiment_phases (
  tenant_id      text not null,
  experiment_id  text not null,
  phase          integer not null,
  variants       jsonb not null,
  started_at     timestamptz not null default now(),
  ended_at       timestamptz,
  primary key (tenant_id, experiment_id, phase),
  foreign key (tenant_id, experiment_id) references experiments (tenant_id, id) on delete cascade
);

insert into experiment_phases (tenant_id, experiment_id, phase, variants, started_at)
select tenant_id, id, 1, variants, created_at from experiments;

-- Experiment results and per-offer reporting count interactions by offer and channel over a time range.
create index interactions_offer_channel on interactions (tenant_id, offer_id, channel_id, recorded_at);
