-- Every instance caches API keys with their tenant's status for a few seconds. A change to who may call
-- (a key revoked, expired, rescoped or deleted; a tenant suspended or reactivated) is announced on the
-- kaireon_access channel with the tenant's id, whoever made it (the API, the command line, SQL by hand),
-- and each instance drops that tenant's cached keys at once. The cache's expiry stays the fallback for an
-- instance that missed the notification.

create function notify_access_change() returns trigger language plpgsql as $$
begin
  if tg_table_name = 'tenants' then
    perform pg_notify('kaireon_access', coalesce(new.id, old.id));
  else
    perform pg_notify('kaireon_access', coalesce(new.tenant_id, old.tenant_id));
  end if;
  return null;
end
$$;

create trigger api_keys_access_changed after update of revoked_at, expires_at, scopes, tenant_id on api_keys
  for each row when (old.revoked_at is distinct from new.revoked_at or old.expires_at is distinct from new.expires_at
    or old.scopes is distinct from new.scopes or old.tenant_id is distinct from new.tenant_id)
  execute function notify_access_change();
create trigger api_keys_access_deleted after delete on api_keys
  for each row execute function notify_access_change();
create trigger tenants_access_changed after update of status on tenants
  for each row when (old.status is distinct from new.status)
  execute function notify_access_change();
create trigger tenants_access_deleted after delete on tenants
  for each row execute function notify_access_change();
