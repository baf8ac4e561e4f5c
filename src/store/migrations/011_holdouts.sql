-- Holdout groups: a decision records whether its customer was held out, and decisions of flows with a
-- holdout are recorded even when they showed nothing, so the uplift report can count both groups.
alter table decisions add column held_out boolean not null default false;
