-- What a tenant is, as the catalog says, with the tenant's name replaced by D: owners, ACLs, default
-- privileges, comments, the tenant's roles and users, the recorded migrations. Run inside a tenant
-- database (psql -X -At -d DB -f fingerprint.sql); two tenants built the same way print the same
-- lines. bench/run.sh compares a Terraform-made tenant with the psql-made ones to show that the
-- psql baseline does the same work.
create function pg_temp.norm(t text) returns text
language sql immutable as $$ select replace(t, current_database(), 'D') $$;

create function pg_temp.acl(a aclitem[]) returns text
language sql stable as $$
    select coalesce(
        (select string_agg(pg_temp.norm(x::text), ' ' order by pg_temp.norm(x::text)) from unnest(a) x),
        'default')
$$;

select line from (
    select format('database owner=%s connlimit=%s acl=%s comment=%s',
                  pg_temp.norm(pg_get_userbyid(datdba)), datconnlimit, pg_temp.acl(datacl),
                  pg_temp.norm(shobj_description(oid, 'pg_database'))) as line
    from pg_database where datname = current_database()
    union all
    select format('schema %s owner=%s acl=%s', nspname, pg_temp.norm(pg_get_userbyid(nspowner)),
                  pg_temp.acl(nspacl))
    from pg_namespace where nspname = 'public'
    union all
    select format('relation %s kind=%s owner=%s acl=%s', relname, relkind,
                  pg_temp.norm(pg_get_userbyid(relowner)), pg_temp.acl(relacl))
    from pg_class where relnamespace = 'public'::regnamespace
    union all
    select format('routine %s owner=%s acl=%s', oid::regprocedure,
                  pg_temp.norm(pg_get_userbyid(proowner)), pg_temp.acl(proacl))
    from pg_proc where pronamespace = 'public'::regnamespace
       or (pronamespace = 'pg_catalog'::regnamespace
           and proname in ('lo_create', 'lo_creat', 'lo_from_bytea', 'lo_import'))
    union all
    select format('default-privileges for=%s schema=%s type=%s acl=%s',
                  pg_temp.norm(pg_get_userbyid(defaclrole)),
                  coalesce(defaclnamespace::regnamespace::text, '-'), defaclobjtype,
                  pg_temp.acl(defaclacl))
    from pg_default_acl
    union all
    select format('role %s login=%s inherit=%s super=%s createdb=%s createrole=%s connlimit=%s '
                  'password=%s member_of=%s comment=%s',
                  pg_temp.norm(r.rolname), r.rolcanlogin, r.rolinherit, r.rolsuper, r.rolcreatedb,
                  r.rolcreaterole, r.rolconnlimit,
                  coalesce(split_part(a.rolpassword, '$', 1), 'none'),
                  coalesce((select string_agg(pg_temp.norm(g.rolname), ',' order by g.rolname)
                            from pg_auth_members m join pg_roles g on g.oid = m.roleid
                            where m.member = r.oid), ''),
                  pg_temp.norm(shobj_description(r.oid, 'pg_authid')))
    from pg_roles r join pg_authid a on a.oid = r.oid
    where shobj_description(r.oid, 'pg_authid') like '%"database":"' || current_database() || '"%'
    union all
    select format('migrations %s',
                  string_agg(format('%s:%s:%s', version, name, checksum), ',' order by version))
    from public.usualstore_schema_migrations
) lines
order by line;
