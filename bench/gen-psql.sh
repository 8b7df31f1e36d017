#!/usr/bin/env bash
# Writes to stdout the SQL one psql session runs to do, sequentially, what `terraform apply` does for
# N tenants with 3 login users each: the end state is the same catalog (bench/run.sh checks it with
# bench/fingerprint.sql).
#
#   gen-psql.sh tenants  PREFIX COUNT MAINTENANCE_DB [TEMPLATE]   tenants + users
#   gen-psql.sh template TEMPLATE MAINTENANCE_DB                  a template database holding the schema
#
# Per tenant, mirroring crates/tenancy (tenant.rs, roles.rs, database.rs, converge.rs, model.rs, user.rs):
#   - 4 group roles NOLOGIN INHERIT, each with its JSON comment (one transaction per role);
#   - CREATE DATABASE … OWNER <db>_owner TEMPLATE template0 CONNECTION LIMIT 10 (plan starter);
#   - database comment "provisioning";
#   - in the tenant database: schema public given to the owner role, then as the owner role
#     (SET ROLE): the migrations table + every migration + their records in one transaction, then in
#     one transaction PUBLIC's CONNECT/TEMP and schema USAGE revoked, CONNECT and USAGE granted to the
#     3 groups, table/sequence grants per group and table class (the store's data; users read-only
#     below admin; login secrets and the provider's e-mail table for admins only), EXECUTE revoked
#     from PUBLIC, ALTER DEFAULT PRIVILEGES; before that, as the superuser, PUBLIC's EXECUTE on the
#     built-ins that create large objects;
#   - database comment "ready";
#   - 3 login users (admin, developer, customer), each in one transaction: CREATE ROLE … LOGIN with a
#     password, comment "provisioning", GRANT of its group, comment "ready".
# Left out, because one sequential session does not need them: the provider's advisory locks, its
# catalog reads before and after each step (drift detection, read-back for the state).
# Passwords are sent in clear and hashed by the server (password_encryption = scram-sha-256); the
# provider computes the same SCRAM verifier client-side, so the PBKDF2 work is the same.
# Grants use `… ON ALL TABLES/SEQUENCES/ROUTINES IN SCHEMA public` where the provider issues one
# statement per object; the resulting ACLs are identical.
#
# With TEMPLATE, each database is cloned from a prepared template that already holds the schema
# (made by the `template` form, objects owned by the role TEMPLATE_owner); the tenant database
# then gets `REASSIGN OWNED BY TEMPLATE_owner TO <db>_owner` instead of running the migration.
#
# Lines `\echo @phase NAME` mark which step the following statements belong to; with `\timing on`,
# bench/run.sh sums psql's per-statement times by phase.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MIGRATIONS="${MIGRATIONS:-$BENCH/../crates/schema/migrations}"
# Fixed: the server hashes it into a SCRAM verifier, as it would any password.
USER_PASSWORD="${BENCH_USER_PASSWORD:-bench-Pw-0123456789abcdefghijklmn}"
GROUPS_IN_ORDER=(owner admin developer customer)
USER_ROLES=(admin developer customer)

# FNV-1a 64 of the SQL without carriage returns, as crates/schema/src/checksum.rs records it.
# Bash integers are 64-bit and wrap on overflow, which is the arithmetic FNV needs.
# Sets CHECKSUM (no subshell, so the cache survives between tenants).
declare -A CHECKSUMS=()
fnv1a64() {
    if [[ -z "${CHECKSUMS[$1]:-}" ]]; then
        local hash=$((0xcbf29ce484222325)) byte
        for byte in $(od -An -v -tu1 "$1"); do
            ((byte == 13)) && continue
            hash=$(((hash ^ byte) * 0x100000001b3))
        done
        printf -v "CHECKSUMS[$1]" '%016x' "$hash"
    fi
    CHECKSUM="${CHECKSUMS[$1]}"
}

# The migrations the provider embeds: crates/schema/src/migrations.rs lists the files in order.
migration_files() {
    find "$MIGRATIONS" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]_*.sql' | sort
}

q_ident() { printf '"%s"' "${1//\"/\"\"}"; }
q_literal() { printf "'%s'" "${1//\'/\'\'}"; }

# The migrations table and every migration with its record, in one transaction, as the runner
# does for a fresh database (crates/schema/src/runner.rs).
emit_migrations() {
    cat <<'SQL'
BEGIN;
create table public.usualstore_schema_migrations (
    version integer primary key,
    name text not null,
    checksum text not null,
    applied_at timestamptz not null default now()
);
SQL
    local file base version name
    while read -r file; do
        base="$(basename "$file" .sql)"
        version=$((10#${base%%_*}))
        name="${base#*_}"
        printf '\\i %s\n' "$file"
        fnv1a64 "$file"
        printf "insert into public.usualstore_schema_migrations (version, name, checksum) values (%d, %s, '%s');\n" \
            "$version" "$(q_literal "$name")" "$CHECKSUM"
    done < <(migration_files)
    echo 'COMMIT;'
}

emit_template() {
    local template=$1 maintenance=$2 owner="$1_owner"
    cat <<SQL
\\set ON_ERROR_STOP on
\\echo @phase template
CREATE ROLE $(q_ident "$owner") NOLOGIN;
CREATE DATABASE $(q_ident "$template") TEMPLATE template0;
\\connect $(q_ident "$template")
ALTER SCHEMA public OWNER TO $(q_ident "$owner");
SET ROLE $(q_ident "$owner");
SQL
    emit_migrations
    cat <<SQL
RESET ROLE;
\\connect $(q_ident "$maintenance")
SQL
}

emit_tenant() {
    local db=$1 maintenance=$2 template=$3
    local owner="${db}_owner" admin="${db}_admin" developer="${db}_developer" customer="${db}_customer"
    local tenant_name="Bench tenant $db" kind groups
    groups="$(q_ident "$admin"), $(q_ident "$developer"), $(q_ident "$customer")"

    printf '%s\n' '\echo @phase roles'
    for kind in "${GROUPS_IN_ORDER[@]}"; do
        printf 'BEGIN;\nCREATE ROLE %s NOLOGIN INHERIT;\nCOMMENT ON ROLE %s IS %s;\nCOMMIT;\n' \
            "$(q_ident "${db}_$kind")" "$(q_ident "${db}_$kind")" \
            "$(q_literal "{\"usualstore\":1,\"database\":\"$db\",\"kind\":\"$kind\"}")"
    done

    printf '%s\n' '\echo @phase create_database'
    printf 'CREATE DATABASE %s OWNER %s TEMPLATE %s CONNECTION LIMIT 10;\n' \
        "$(q_ident "$db")" "$(q_ident "$owner")" "$(q_ident "${template:-template0}")"

    printf '%s\n' '\echo @phase comments'
    printf 'COMMENT ON DATABASE %s IS %s;\n' "$(q_ident "$db")" \
        "$(q_literal "{\"usualstore\":1,\"tenant_name\":\"$tenant_name\",\"plan\":\"starter\",\"status\":\"provisioning\"}")"

    printf '\\connect %s\n' "$(q_ident "$db")"
    printf '%s\n' '\echo @phase schema'
    if [[ -n "$template" ]]; then
        printf 'REASSIGN OWNED BY %s TO %s;\n' "$(q_ident "${template}_owner")" "$(q_ident "$owner")"
        printf 'SET ROLE %s;\n' "$(q_ident "$owner")"
    else
        printf 'ALTER SCHEMA public OWNER TO %s;\n' "$(q_ident "$owner")"
        printf 'SET ROLE %s;\n' "$(q_ident "$owner")"
        emit_migrations
    fi
    cat <<SQL
RESET ROLE;
REVOKE EXECUTE ON FUNCTION pg_catalog.lo_create(oid), pg_catalog.lo_creat(integer), pg_catalog.lo_from_bytea(oid, bytea), pg_catalog.lo_import(text), pg_catalog.lo_import(text, oid) FROM PUBLIC;
SET ROLE $(q_ident "$owner");
SQL

    printf '%s\n' '\echo @phase privileges'
    cat <<SQL
BEGIN;
REVOKE ALL ON DATABASE $(q_ident "$db") FROM PUBLIC CASCADE;
GRANT CONNECT ON DATABASE $(q_ident "$db") TO $groups;
REVOKE ALL ON SCHEMA public FROM PUBLIC CASCADE;
GRANT USAGE ON SCHEMA public TO $groups;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO $(q_ident "$admin");
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO $(q_ident "$developer");
GRANT SELECT ON ALL TABLES IN SCHEMA public TO $(q_ident "$customer");
REVOKE INSERT, UPDATE, DELETE ON public.usualstore_schema_migrations FROM $(q_ident "$admin"), $(q_ident "$developer");
REVOKE INSERT, UPDATE, DELETE ON public.users FROM $(q_ident "$developer");
REVOKE ALL ON public.user_credentials, public.tokens, public.sessions, public.usualstore_login_users FROM $(q_ident "$developer"), $(q_ident "$customer");
REVOKE INSERT, UPDATE, DELETE ON public.usualstore_login_users FROM $(q_ident "$admin");
GRANT SELECT, USAGE ON ALL SEQUENCES IN SCHEMA public TO $(q_ident "$admin"), $(q_ident "$developer");
GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO $(q_ident "$customer");
REVOKE USAGE ON SEQUENCE public.users_id_seq FROM $(q_ident "$developer");
REVOKE ALL ON SEQUENCE public.tokens_id_seq FROM $(q_ident "$developer"), $(q_ident "$customer");
REVOKE ALL ON ALL ROUTINES IN SCHEMA public FROM PUBLIC CASCADE;
ALTER DEFAULT PRIVILEGES FOR ROLE $(q_ident "$owner") IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO $(q_ident "$admin");
ALTER DEFAULT PRIVILEGES FOR ROLE $(q_ident "$owner") IN SCHEMA public GRANT SELECT, INSERT, UPDATE ON TABLES TO $(q_ident "$developer");
ALTER DEFAULT PRIVILEGES FOR ROLE $(q_ident "$owner") IN SCHEMA public GRANT SELECT ON TABLES TO $(q_ident "$customer");
ALTER DEFAULT PRIVILEGES FOR ROLE $(q_ident "$owner") IN SCHEMA public GRANT SELECT, USAGE ON SEQUENCES TO $(q_ident "$admin"), $(q_ident "$developer");
ALTER DEFAULT PRIVILEGES FOR ROLE $(q_ident "$owner") IN SCHEMA public GRANT SELECT ON SEQUENCES TO $(q_ident "$customer");
ALTER DEFAULT PRIVILEGES FOR ROLE $(q_ident "$owner") REVOKE ALL ON FUNCTIONS FROM PUBLIC CASCADE;
COMMIT;
RESET ROLE;
SQL
    printf '\\connect %s\n' "$(q_ident "$maintenance")"

    printf '%s\n' '\echo @phase comments'
    printf 'COMMENT ON DATABASE %s IS %s;\n' "$(q_ident "$db")" \
        "$(q_literal "{\"usualstore\":1,\"tenant_name\":\"$tenant_name\",\"plan\":\"starter\",\"status\":\"ready\"}")"

    printf '%s\n' '\echo @phase users'
    local role user
    for role in "${USER_ROLES[@]}"; do
        user="${db}_u_${role:0:3}"
        cat <<SQL
BEGIN;
CREATE ROLE $(q_ident "$user") WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT NOREPLICATION NOBYPASSRLS CONNECTION LIMIT -1 PASSWORD $(q_literal "$USER_PASSWORD");
COMMENT ON ROLE $(q_ident "$user") IS $(q_literal "{\"usualstore\":1,\"database\":\"$db\",\"kind\":\"user\",\"status\":\"provisioning\"}");
GRANT $(q_ident "${db}_$role") TO $(q_ident "$user");
COMMENT ON ROLE $(q_ident "$user") IS $(q_literal "{\"usualstore\":1,\"database\":\"$db\",\"kind\":\"user\",\"status\":\"ready\"}");
COMMIT;
SQL
    done
}

usage() {
    echo "usage: $0 tenants PREFIX COUNT MAINTENANCE_DB [TEMPLATE] | $0 template TEMPLATE MAINTENANCE_DB | $0 checksum FILE" >&2
    exit 2
}

case "${1:-}" in
    tenants)
        [[ $# -ge 4 ]] || usage
        prefix=$2 count=$3 maintenance=$4 template=${5:-}
        echo '\set ON_ERROR_STOP on'
        for ((i = 1; i <= count; i++)); do
            emit_tenant "$(printf '%s_%03d' "$prefix" "$i")" "$maintenance" "$template"
        done
        ;;
    template)
        [[ $# -eq 3 ]] || usage
        emit_template "$2" "$3"
        ;;
    checksum)
        [[ $# -eq 2 ]] || usage
        fnv1a64 "$2"
        echo "$CHECKSUM"
        ;;
    *) usage ;;
esac
