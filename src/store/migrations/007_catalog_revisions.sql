-- A per-tenant counter of catalog changes, so an instance can ask "did anything change?" with one
-- primary-key read instead of reloading and recompiling the whole catalog when its cache expires. Every
-- write to a table the compiled catalog reads bumps it, whoever wrote (the API, an import, SQL by hand),
-- once per transaction. No foreign key: deleting a tenant deletes its rows by cascade, and those
-- deletes bump the counter of a tenant that is going away.

create table catalog_revisions (
  tenant_id  text primary key,
  revision   bigint not null,
  -- The transaction that last bumped the revision: later rows of the same transaction leave it alone.
  xact       bigint not null
);

create function bump_catalog_revision_of(t text) returns void language sql as $$
  insert into catalog_revisions as r (tenant_id, revision, xact) values (t, 1, txid_current())
  on conflict (tenant_id) do update set revision = r.revision + 1, xact = excluded.xact
  where r.xact <> excluded.xact;
$$;

create function bump_catalog_revision() returns trigger language plpgsql as $$
begin
  if tg_op = 'DELETE' then
    perform bump_catalog_revision_of(old.tenant_id);
  else
    perform bump_catalog_revision_of(new.tenant_id);
    if tg_op = 'UPDATE' and new.tenant_id <> old.tenant_id then
      perform bump_catalog_revision_of(old.tenant_id);
    end if;
  end if;
  return null;
end;
$$;

create function bump_catalog_revision_of_tenant() returns trigger language plpgsql as $$
begin
  perform bump_catalog_revision_of(new.id);
  return null;
end;
$$;

create trigger catalog_revision after insert or update or delete on categories for each row execute function bump_catalog_revision();
create trigger catalog_revision after insert or update or delete on offers for each row execute function bump_catalog_revision();
create trigger catalog_revision after insert or update or delete on channels for each row execute function bump_catalog_revision();
create trigger catalog_revision after insert or update or delete on placements for each row execute function bump_catalog_revision();
create trigger catalog_revision after insert or update or delete on creatives for each row execute function bump_catalog_revision();
create trigger catalog_revision after insert or update or delete on experiments for each row execute function bump_catalog_revision();
create trigger catalog_revision after insert or update or delete on experiment_phases for each row execute function bump_catalog_revision();
create trigger catalog_revision after insert or update or delete on decision_flows for each row execute function bump_catalog_revision();
create trigger catalog_revision after insert or update or delete on decision_flow_versions for each row execute function bump_catalog_revision();
create trigger catalog_revision after insert or update or delete on contact_policies for each row execute function bump_catalog_revision();
create trigger catalog_revision after insert or update or delete on qualification_rules for each row execute function bump_catalog_revision();
create trigger catalog_revision after insert or update or delete on outcome_types for each row execute function bump_catalog_revision();
-- Plan and settings are part of the compiled catalog; a tenant's deletion is not a change anyone reloads.
create trigger catalog_revision after update on tenants for each row execute function bump_catalog_revision_of_tenant();
