-- A per-tenant counter of catalog changes, so an instance can ask "did anything change?" with one
-- primary-key read instead of reloading and recompiling the whole catalog when its cache expires. Every
-- write to a table the compiled catalog reads bumps it, whoever wrote (the API, an import, SQL by hand),
-- once per transaction. No foreign keys: deleting a tenant deletes its rows by cascade, and those
-- deletes bump the counter of a tenant that is going away.

create table catalog_revisions (
  tenant_id  text primary key,
  revision   bigint not null,
  -- The transaction that last bumped the revision: later rows of the same transaction leave it alone.
  xact       bigint not null
);

-- What changed at each revision, by table and row id, so that an instance a few revisions behind can
-- reload just those rows. Kept for an hour (housekeeping deletes older rows); an instance further behind,
-- or one that finds a revision missing here, reloads the whole catalog.
create table catalog_changes (
  tenant_id   text not null,
  revision    bigint not null,
  kind        text not null,
  id          text not null,
  changed_at  timestamptz not null default now(),
  primary key (tenant_id, revision, kind, id)
);
create index catalog_changes_changed_at on catalog_changes (changed_at);

-- Bumps the tenant's revision once per transaction and answers the transaction's revision.
create function bump_catalog_revision_of(t text) returns bigint language plpgsql as $$
declare
  r bigint;
begin
  insert into catalog_revisions as c (tenant_id, revision, xact) values (t, 1, txid_current())
  on conflict (tenant_id) do update set revision = c.revision + 1, xact = excluded.xact
  where c.xact <> excluded.xact
  returning revision into r;
  if r is null then
    select revision into r from catalog_revisions where tenant_id = t;
  end if;
  return r;
end;
$$;

create function record_catalog_change(t text, kind text, id text) returns void language sql as $$
  insert into catalog_changes (tenant_id, revision, kind, id) values (t, bump_catalog_revision_of(t), kind, coalesce(id, ''))
  on conflict do nothing;
$$;

-- Takes the tenant's revision row lock without bumping it. A catalog write takes it first, before any
-- row of the catalog: every writer of a tenant's catalog then queues at one lock, in one order, instead
-- of holding some rows and waiting for the revision (and deadlocking with a writer that holds it).
create function lock_catalog_revision(t text) returns void language plpgsql as $$
begin
  insert into catalog_revisions (tenant_id, revision, xact) values (t, 0, 0) on conflict do nothing;
  perform 1 from catalog_revisions where tenant_id = t for update;
end;
$$;

-- Rows are named by their own columns, never by a conversion of the whole row (to_jsonb refuses values
-- that a json column holds, such as an escaped NUL).
create function bump_catalog_revision() returns trigger language plpgsql as $$
begin
  if tg_op = 'DELETE' then
    perform record_catalog_change(old.tenant_id, tg_table_name, old.id);
  else
    perform record_catalog_change(new.tenant_id, tg_table_name, new.id);
    if tg_op = 'UPDATE' and (new.tenant_id <> old.tenant_id or new.id <> old.id) then
      perform record_catalog_change(old.tenant_id, tg_table_name, old.id);
    end if;
  end if;
  return null;
end;
$$;

-- For tables whose rows are not one id (a flow's versions, an experiment's phases): a change there is
-- logged without one, which makes a reload read the whole catalog.
create function bump_catalog_revision_keyless() returns trigger language plpgsql as $$
begin
  if tg_op = 'DELETE' then
    perform record_catalog_change(old.tenant_id, tg_table_name, '');
  else
    perform record_catalog_change(new.tenant_id, tg_table_name, '');
    if tg_op = 'UPDATE' and new.tenant_id <> old.tenant_id then
      perform record_catalog_change(old.tenant_id, tg_table_name, '');
    end if;
  end if;
  return null;
end;
$$;

create function bump_catalog_revision_of_tenant() returns trigger language plpgsql as $$
begin
  perform record_catalog_change(new.id, 'tenants', new.id);
  return null;
end;
$$;

create trigger catalog_revision after insert or update or delete on categories for each row execute function bump_catalog_revision();
create trigger catalog_revision after insert or update or delete on offers for each row execute function bump_catalog_revision();
create trigger catalog_revision after insert or update or delete on channels for each row execute function bump_catalog_revision();
create trigger catalog_revision after insert or update or delete on placements for each row execute function bump_catalog_revision();
create trigger catalog_revision after insert or update or delete on creatives for each row execute function bump_catalog_revision();
create trigger catalog_revision after insert or update or delete on experiments for each row execute function bump_catalog_revision();
create trigger catalog_revision after insert or update or delete on experiment_phases for each row execute function bump_catalog_revision_keyless();
create trigger catalog_revision after insert or update or delete on decision_flows for each row execute function bump_catalog_revision();
create trigger catalog_revision after insert or update or delete on decision_flow_versions for each row execute function bump_catalog_revision_keyless();
create trigger catalog_revision after insert or update or delete on contact_policies for each row execute function bump_catalog_revision();
create trigger catalog_revision after insert or update or delete on qualification_rules for each row execute function bump_catalog_revision();
create trigger catalog_revision after insert or update or delete on outcome_types for each row execute function bump_catalog_revision();
-- Plan and settings are part of the compiled catalog; a tenant's deletion is not a change anyone reloads.
create trigger catalog_revision after update on tenants for each row execute function bump_catalog_revision_of_tenant();

-- The catalog is read a page at a time in the order the engine keeps it (byte order, as JavaScript
-- compares ids), whatever the database's collation.
create index offers_tenant_id_bytes on offers (tenant_id, (id collate "C"));
create index creatives_tenant_id_bytes on creatives (tenant_id, (id collate "C"));
