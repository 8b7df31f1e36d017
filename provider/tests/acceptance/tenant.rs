//! Acceptance tests for `usualstore_tenant`: the real `terraform` binary (1.11.x and 1.0.3) drives
//! the provider against the throwaway PostgreSQL cluster of `usualstore_testpg`.
//!
//! Every scenario runs once per Terraform version, as `tf1_11::NAME` and `tf1_0::NAME`; a
//! version this machine lacks is skipped with a loud note (see `crate::support::terraform`).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::hcl;
use crate::support::pg::{self, Db};
use crate::support::process::run_with_timeout;
use crate::support::workdir::PROVIDER_VERSION;
use crate::support::{Output, Plan, Terraform, Workdir};

/// One `resource "usualstore_tenant"` block; `None` leaves the attribute out of the config.
#[derive(Clone)]
struct Tenant<'a> {
    label: &'a str,
    database_name: &'a str,
    tenant_name: &'a str,
    plan: Option<&'a str>,
    deletion_protection: Option<bool>,
}

impl Tenant<'_> {
    fn hcl(&self) -> String {
        let mut block = format!(
            "resource \"usualstore_tenant\" \"{}\" {{\n  database_name = {}\n  tenant_name   = {}\n",
            self.label,
            hcl::string(self.database_name),
            hcl::string(self.tenant_name),
        );
        if let Some(plan) = self.plan {
            block.push_str(&format!("  plan          = {}\n", hcl::string(plan)));
        }
        if let Some(protection) = self.deletion_protection {
            block.push_str(&format!("  deletion_protection = {protection}\n"));
        }
        block.push_str("}\n");
        block
    }
}

/// A configuration whose provider takes its connection from the PG* environment.
fn config(tenants: &[Tenant<'_>]) -> String {
    let mut text = hcl::provider_config("");
    for tenant in tenants {
        text.push('\n');
        text.push_str(&tenant.hcl());
    }
    text
}

fn unprotected<'a>(label: &'a str, database_name: &'a str, tenant_name: &'a str) -> Tenant<'a> {
    Tenant {
        label,
        database_name,
        tenant_name,
        plan: Some("professional"),
        deletion_protection: Some(false),
    }
}

/// `Changes` with its text, or a failed test.
fn expect_changes(plan: Plan, what: &str) -> String {
    match plan {
        Plan::Changes(stdout) => stdout,
        Plan::NoChanges => panic!("expected the plan to propose changes: {what}"),
    }
}

fn assert_tenant_gone(database: &str) {
    assert!(
        !pg::database_exists(database),
        "database {database} still exists"
    );
    let roles = pg::existing_tenant_roles(database);
    assert!(
        roles.is_empty(),
        "roles left behind for {database}: {roles:?}"
    );
}

fn assert_contains(haystack: &str, needle: &str, context: &str) {
    assert!(
        haystack.contains(needle),
        "{context}: expected to find {needle:?} in:\n{haystack}"
    );
}

// ---------------------------------------------------------------------------------------------
// The harness itself, without the provider: proves both Terraform binaries, the CLI config and
// the command runner work, so a failure elsewhere points at the provider.

fn harness_runs_a_config_without_providers(terraform: &Terraform) {
    let workdir = Workdir::without_cluster(terraform, "output \"x\" {\n  value = 1\n}\n");
    workdir.init();
    workdir.apply(&[]);
    assert_eq!(workdir.output_json()["x"]["value"], 1);
    workdir.assert_no_changes();
    let state = workdir.show_json();
    assert_eq!(state["terraform_version"], terraform.version.as_str());
    assert_eq!(state["values"]["outputs"]["x"]["value"], 1);

    workdir.set_config("output \"x\" {\n  value = 2\n}\n");
    let changes = expect_changes(workdir.plan_detailed(), "the output changed");
    assert_contains(&changes, "x = 1 -> 2", "plan of a changed output");
    workdir.apply(&[]);
    assert_eq!(workdir.output_json()["x"]["value"], 2);

    // A failing command's message carries its output.
    let failed = workdir.run_expect_failure(&["plan", "-no-color", "-no-such-flag"]);
    assert_eq!(failed.code, Some(1), "{failed}");
    let message = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        workdir.run(&["plan", "-no-color", "-no-such-flag"]);
    }))
    .expect_err("run() must fail on a non-zero exit");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert_contains(&message, "no-such-flag", "failure message of run()");

    workdir.destroy();
}

#[test]
fn harness_kills_commands_that_hang() {
    let mut command = Command::new("sh");
    command.args(["-c", "echo started; sleep 30 & wait"]);
    let started = Instant::now();
    let output = run_with_timeout(command, Duration::from_millis(500));
    assert!(output.timed_out, "{output}");
    assert!(!output.success(), "{output}");
    assert_eq!(output.stdout.trim(), "started", "{output}");
    // The background `sleep` holds the pipes too: it must have been killed with its group.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn hcl_strings_reach_terraform_unchanged() {
    assert_eq!(hcl::string("plain"), "\"plain\"");
    assert_eq!(hcl::string("a\"b\\c"), "\"a\\\"b\\\\c\"");
    assert_eq!(hcl::string("${x} %{y} $z"), "\"$${x} %%{y} $z\"");
}

// ---------------------------------------------------------------------------------------------
// Create, read, update in place, import, deletion protection, delete.

fn lifecycle(terraform: &Terraform) {
    let database = pg::unique_name("lc");
    let mut tenant = unprotected("t", &database, "Acme Inc.");
    let workdir = Workdir::new(terraform, &config(std::slice::from_ref(&tenant)));
    workdir.init();
    workdir.apply(&[]);

    assert!(
        pg::database_exists(&database),
        "apply did not create {database}"
    );
    assert_eq!(pg::connection_limit(&database), 25, "professional plan");
    let roles = pg::existing_tenant_roles(&database);
    assert_eq!(roles.len(), 4, "group roles of {database}: {roles:?}");
    let values = workdir.resource_values("usualstore_tenant.t");
    assert_eq!(values["id"], database.as_str());
    assert_eq!(values["database_name"], database.as_str());
    assert_eq!(values["tenant_name"], "Acme Inc.");
    assert_eq!(values["plan"], "professional");
    assert_eq!(values["connection_limit"], 25);
    for (attribute, suffix) in [
        ("owner_role", "_owner"),
        ("admin_role", "_admin"),
        ("developer_role", "_developer"),
        ("customer_role", "_customer"),
    ] {
        assert_eq!(values[attribute], format!("{database}{suffix}").as_str());
    }
    workdir.assert_no_changes();

    // Data written by the application must survive in-place updates.
    {
        let tenant_db = Db::connect(&database);
        pg::insert_sample_rows(&tenant_db, "public", "widgets", 3);
    }

    tenant.tenant_name = "Acme Renamed";
    tenant.plan = Some("enterprise");
    workdir.set_config(&config(std::slice::from_ref(&tenant)));
    let changes = expect_changes(workdir.plan_detailed(), "tenant_name and plan changed");
    assert_contains(&changes, "1 to change, 0 to destroy", "in-place update");
    assert_contains(&changes, "updated in-place", "in-place update");
    workdir.apply(&[]);
    let widgets: i64 = Db::connect(&database)
        .query_one("SELECT count(*) FROM public.widgets", &[])
        .get(0);
    assert_eq!(widgets, 3, "rows of public.widgets after the update");
    assert_eq!(pg::connection_limit(&database), 50, "enterprise plan");
    let comment = pg::database_comment(&database).unwrap_or_default();
    assert_contains(&comment, "Acme Renamed", "database comment");
    assert_contains(&comment, "enterprise", "database comment");
    workdir.assert_no_changes();
    let values = workdir.resource_values("usualstore_tenant.t");

    // Import into a fresh state; import cannot know deletion_protection, so that config leaves
    // it at its default (true) and the plan must still be empty.
    let imported = Workdir::new(
        terraform,
        &config(&[Tenant {
            deletion_protection: None,
            ..tenant.clone()
        }]),
    );
    imported.init();
    imported.import("usualstore_tenant.t", &database);
    imported.assert_no_changes();
    let imported_values = imported.resource_values("usualstore_tenant.t");
    for attribute in [
        "id",
        "database_name",
        "tenant_name",
        "plan",
        "connection_limit",
        "schema_version",
        "owner_role",
        "admin_role",
        "developer_role",
        "customer_role",
    ] {
        assert_eq!(
            imported_values[attribute], values[attribute],
            "imported {attribute}"
        );
    }
    assert_eq!(imported_values["deletion_protection"], true);
    drop(imported);

    // Protected: destroy refuses and drops nothing.
    tenant.deletion_protection = Some(true);
    workdir.set_config(&config(std::slice::from_ref(&tenant)));
    workdir.apply(&[]);
    let refused = workdir.try_destroy();
    assert!(
        !refused.success(),
        "destroy of a protected tenant succeeded:\n{refused}"
    );
    assert_contains(
        &refused.combined(),
        "deletion_protection",
        "refused destroy",
    );
    assert!(
        pg::database_exists(&database),
        "protected database was dropped"
    );
    assert_eq!(pg::existing_tenant_roles(&database).len(), 4);

    tenant.deletion_protection = Some(false);
    workdir.set_config(&config(std::slice::from_ref(&tenant)));
    workdir.apply(&[]);
    workdir.destroy();
    assert_tenant_gone(&database);
}

// ---------------------------------------------------------------------------------------------
// Drift made behind Terraform's back is seen by plan and repaired by apply.

fn drift_is_repaired(terraform: &Terraform) {
    let database = pg::unique_name("drift");
    let customer = format!("{database}_customer");
    let owner = format!("{database}_owner");
    let workdir = Workdir::new(
        terraform,
        &config(&[unprotected("t", &database, "Drift Co.")]),
    );
    workdir.init();
    workdir.apply(&[]);
    workdir.assert_no_changes();
    let comment = pg::database_comment(&database);
    let customer_privileges = pg::privileges_of(&database, &customer);
    assert!(
        !customer_privileges.is_empty(),
        "{customer} holds no privileges at all in {database}"
    );
    assert!(!pg::public_has_database_privilege(&database, "CONNECT"));

    let quoted_db = pg::quote_ident(&database);
    let quoted_customer = pg::quote_ident(&customer);
    Db::postgres().batch(&format!(
        "GRANT CONNECT ON DATABASE {quoted_db} TO PUBLIC;
         COMMENT ON DATABASE {quoted_db} IS 'changed by hand';
         ALTER DATABASE {quoted_db} CONNECTION LIMIT 3;"
    ));
    // A role with privileges cannot be dropped; DROP OWNED in the tenant database revokes them
    // there and on the database itself.
    Db::connect(&database).batch(&format!(
        "REASSIGN OWNED BY {quoted_customer} TO {}; DROP OWNED BY {quoted_customer};",
        pg::quote_ident(&owner)
    ));
    Db::postgres().batch(&format!("DROP ROLE {quoted_customer}"));

    let changes = expect_changes(workdir.plan_detailed(), "drifted catalog");
    assert_contains(&changes, "usualstore_tenant.t", "drift plan");
    workdir.apply(&[]);
    workdir.assert_no_changes();

    assert!(
        !pg::public_has_database_privilege(&database, "CONNECT"),
        "PUBLIC can still connect to {database}"
    );
    assert_eq!(pg::database_comment(&database), comment, "comment restored");
    assert_eq!(
        pg::connection_limit(&database),
        25,
        "connection limit restored"
    );
    assert!(pg::role_exists(&customer), "{customer} was not recreated");
    assert_eq!(
        pg::privileges_of(&database, &customer),
        customer_privileges,
        "privileges of the recreated {customer}"
    );

    // The database itself vanishes: plan wants it back, apply creates it again.
    Db::postgres().batch(&format!("DROP DATABASE {quoted_db} WITH (FORCE)"));
    let changes = expect_changes(workdir.plan_detailed(), "database dropped out of band");
    assert_contains(&changes, "1 to add", "plan after DROP DATABASE");
    assert_contains(&changes, "will be created", "plan after DROP DATABASE");
    workdir.apply(&[]);
    assert!(
        pg::database_exists(&database),
        "apply did not recreate {database}"
    );
    workdir.assert_no_changes();

    workdir.destroy();
    assert_tenant_gone(&database);
}

// ---------------------------------------------------------------------------------------------
// Names that must never reach SQL: each gets a diagnostic on database_name, nothing is created.

/// Diagnostic blocks ("Error: …" up to the next one) of Terraform's output, box drawing removed.
fn diagnostics(output: &Output) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    for raw in output.combined().lines() {
        let line = raw.trim_start_matches(['│', '╷', '╵']).trim();
        if line.starts_with("Error:") || line.starts_with("Warning:") {
            blocks.push(line.to_owned());
        } else if let Some(block) = blocks.last_mut() {
            block.push('\n');
            block.push_str(line);
        }
    }
    blocks
}

fn assert_refused_on_database_name(output: &Output, label: &str) {
    assert!(!output.success(), "terraform accepted {label}:\n{output}");
    let resource = format!("usualstore_tenant.{label}");
    let block = format!("\"usualstore_tenant\" \"{label}\"");
    let found = diagnostics(output).into_iter().any(|diagnostic| {
        diagnostic.starts_with("Error:")
            && (diagnostic.contains(&resource) || diagnostic.contains(&block))
            && diagnostic.contains("database_name")
    });
    assert!(
        found,
        "no error diagnostic naming database_name for {resource}:\n{output}"
    );
}

/// Nothing by this name, by what PostgreSQL would fold or truncate it to, or as a role prefix.
fn assert_nothing_created(name: &str, database_existed: bool) {
    let variants = [
        name.to_owned(),
        pg::truncate_identifier(name),
        name.to_lowercase(),
    ];
    // PostgreSQL refuses a longer name even as a query parameter; the truncated variant covers it.
    for variant in variants.iter().filter(|v| v.len() <= 63) {
        if !database_existed {
            assert!(
                !pg::database_exists(variant),
                "database {variant:?} was created"
            );
        }
        let roles = pg::existing_tenant_roles(variant);
        assert!(
            roles.is_empty(),
            "roles were created for {variant:?}: {roles:?}"
        );
    }
}

fn hostile_names_are_refused(terraform: &Terraform) {
    let long = format!("{}_x", "a".repeat(64));
    let hostile: [(&str, &str); 4] = [
        ("injection", "Robert'); DROP TABLE x;--"),
        ("upper", "UPPER"),
        ("too_long", &long),
        ("maintenance", "postgres"),
    ];
    let tenants: Vec<Tenant<'_>> = hostile
        .iter()
        .map(|(label, name)| unprotected(label, name, "Hostile"))
        .collect();
    let workdir = Workdir::new(terraform, &config(&tenants));
    let maintenance_comment = pg::database_comment("postgres");
    workdir.init();
    let plan = workdir.try_plan(&[]);
    let apply = workdir.try_apply(&[]);
    for (label, name) in &hostile {
        assert_refused_on_database_name(&plan, label);
        assert_refused_on_database_name(&apply, label);
        assert_nothing_created(name, *name == "postgres");
    }
    assert_eq!(
        pg::database_comment("postgres"),
        maintenance_comment,
        "the maintenance database was touched"
    );

    // A database that usualstore did not create is not adopted.
    let foreign = pg::unique_name("foreign");
    Db::postgres().batch(&format!("CREATE DATABASE {}", pg::quote_ident(&foreign)));
    workdir.set_config(&config(&[unprotected("foreign", &foreign, "Not Ours")]));
    let plan = workdir.try_plan(&[]);
    let apply = workdir.try_apply(&[]);
    let comment = pg::database_comment(&foreign);
    let roles = pg::existing_tenant_roles(&foreign);
    Db::postgres().batch(&format!("DROP DATABASE {}", pg::quote_ident(&foreign)));
    assert_refused_on_database_name(&plan, "foreign");
    assert_refused_on_database_name(&apply, "foreign");
    assert_eq!(comment, None, "the foreign database's comment was changed");
    assert!(
        roles.is_empty(),
        "roles created for a foreign database: {roles:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Many tenants at once: the template1 race, advisory locks and role grants under concurrency.

fn ten_tenants_in_parallel(terraform: &Terraform) {
    let prefix = pg::unique_name("par");
    let main_tf = format!(
        "{}\nresource \"usualstore_tenant\" \"many\" {{\n  count = 10\n  database_name = \"{prefix}_${{count.index}}\"\n  tenant_name   = \"Tenant ${{count.index}}\"\n  plan          = \"free\"\n  deletion_protection = false\n}}\n",
        hcl::provider_config("")
    );
    let databases: Vec<String> = (0..10).map(|n| format!("{prefix}_{n}")).collect();
    let workdir = Workdir::new(terraform, &main_tf);
    workdir.init();
    workdir.apply(&["-parallelism=10"]);
    for database in &databases {
        assert!(pg::database_exists(database), "{database} missing");
        assert_eq!(pg::connection_limit(database), 5, "free plan of {database}");
        assert_eq!(
            pg::existing_tenant_roles(database).len(),
            4,
            "roles of {database}"
        );
    }
    workdir.assert_no_changes();
    workdir.run(&[
        "destroy",
        "-no-color",
        "-input=false",
        "-auto-approve",
        "-parallelism=10",
    ]);
    for database in &databases {
        assert_tenant_gone(database);
    }
}

// ---------------------------------------------------------------------------------------------
// Managed-PostgreSQL style: explicit provider settings and a non-superuser admin.

fn managed_admin_without_superuser(terraform: &Terraform) {
    let admin = pg::ManagedAdmin::create();
    let host = pg::pg_var("PGHOST").unwrap_or_else(|| "127.0.0.1".to_owned());
    let port: u16 = pg::pg_var("PGPORT")
        .and_then(|port| port.parse().ok())
        .unwrap_or(5432);
    let provider = format!(
        "  host     = {}\n  port     = {port}\n  username = {}\n  password = {}\n  database = \"postgres\"\n  sslmode  = \"disable\"",
        hcl::string(&host),
        hcl::string(&admin.username),
        hcl::string(&admin.password),
    );
    let database = pg::unique_name("managed");
    let main_tf = format!(
        "{}\n{}",
        hcl::provider_config(&provider),
        unprotected("t", &database, "Managed Ltd.").hcl()
    );
    // No PG* variables: the provider block alone must carry the connection.
    let workdir = Workdir::without_cluster(terraform, &main_tf);
    workdir.init();
    workdir.apply(&[]);
    assert!(
        pg::database_exists(&database),
        "apply did not create {database}"
    );
    assert_eq!(pg::existing_tenant_roles(&database).len(), 4);
    workdir.assert_no_changes();
    workdir.destroy();
    assert_tenant_gone(&database);
}

// ---------------------------------------------------------------------------------------------
// TF_LOG=TRACE shows the provider's own log lines, parsed as hclog JSON, and never a password.

fn trace_logs_show_provider_and_hide_password(terraform: &Terraform) {
    let database = pg::unique_name("trace");
    let workdir = Workdir::new(
        terraform,
        &config(&[unprotected("t", &database, "Trace Corp.")]),
    );
    workdir.init();
    let applied = workdir.try_run_with_env(
        &["apply", "-no-color", "-input=false", "-auto-approve"],
        &[("TF_LOG", "TRACE")],
    );
    assert!(
        applied.success(),
        "apply with TF_LOG=TRACE failed:\n{applied}"
    );

    let marker = format!("provider.terraform-provider-usualstore_v{PROVIDER_VERSION}:");
    let provider_lines: Vec<&str> = applied
        .stderr
        .lines()
        .filter(|line| line.contains(&marker))
        .collect();
    assert!(
        !provider_lines.is_empty(),
        "no provider log lines ({marker}) in the TRACE output:\n{applied}"
    );
    // go-plugin re-levels hclog JSON lines; a line it could not parse shows up raw.
    let unparsed: Vec<&&str> = provider_lines
        .iter()
        .filter(|line| line.contains("\"@message\""))
        .collect();
    assert!(
        unparsed.is_empty(),
        "provider log lines Terraform did not parse as hclog JSON: {unparsed:#?}"
    );

    match pg::pg_var("PGPASSWORD").filter(|password| !password.is_empty()) {
        Some(password) => assert!(
            !applied.combined().contains(&password),
            "the superuser's password appears in the TRACE output"
        ),
        None => crate::support::terraform::loud_note(
            "the test cluster has no superuser password, so the TRACE password check is vacuous",
        ),
    }
    workdir.destroy();
    assert_tenant_gone(&database);
}

// ---------------------------------------------------------------------------------------------
// A newer provider embeds one more migration: plan shows `schema_version` moving, apply migrates in place.

fn schema_migration_is_rolled_out(terraform: &Terraform) {
    crate::support::require_test_hooks();
    let database = pg::unique_name("mig");
    let tenant = unprotected("t", &database, "Migrating Inc.");
    let mut workdir = Workdir::new(terraform, &config(std::slice::from_ref(&tenant)));
    workdir.init();
    workdir.apply(&[]);
    let current = i64::from(usualstore_schema::latest_version());
    assert_eq!(
        workdir.resource_values("usualstore_tenant.t")["schema_version"],
        current
    );
    pg::insert_sample_rows(&Db::connect(&database), "public", "widgets", 2);

    // The same binary stands in for a newer build: the extra migration is appended to the embedded ones.
    let newer = workdir.path().join("newer-migrations");
    std::fs::create_dir_all(&newer).expect("migrations dir");
    std::fs::write(
        newer.join(format!("{:04}_gift_cards.sql", current + 1)),
        "CREATE TABLE public.gift_cards (\n\
             id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n\
             code text NOT NULL UNIQUE,\n\
             balance_cents bigint NOT NULL DEFAULT 0\n\
         );\n",
    )
    .expect("write migration");
    workdir.set_env(
        usualstore_schema::EXTRA_MIGRATIONS_ENV,
        &newer.display().to_string(),
    );

    let changes = expect_changes(workdir.plan_detailed(), "a newer schema is available");
    assert_contains(&changes, "1 to change, 0 to destroy", "schema rollout");
    assert_contains(
        &changes,
        &format!("{current} -> {}", current + 1),
        "schema_version in the plan",
    );
    workdir.apply(&[]);
    assert_eq!(
        workdir.resource_values("usualstore_tenant.t")["schema_version"],
        current + 1
    );
    workdir.assert_no_changes();

    let widgets: i64 = Db::connect(&database)
        .query_one("SELECT count(*) FROM public.widgets", &[])
        .get(0);
    assert_eq!(widgets, 2, "rows of public.widgets after the migration");
    // The new table follows the tenant model like the embedded ones.
    let admin = pg::privileges_of(&database, &format!("{database}_admin"));
    let customer = pg::privileges_of(&database, &format!("{database}_customer"));
    for privilege in ["SELECT", "INSERT", "UPDATE", "DELETE"] {
        let entry = format!("relation gift_cards: {privilege}");
        assert!(admin.contains(&entry), "admin lacks {entry}: {admin:?}");
    }
    assert!(customer.contains(&"relation gift_cards: SELECT".to_owned()));
    assert!(!customer.contains(&"relation gift_cards: INSERT".to_owned()));

    workdir.destroy();
    assert_tenant_gone(&database);
}

// ---------------------------------------------------------------------------------------------

/// `tf1_11::SCENARIO` and `tf1_0::SCENARIO` for each scenario.
macro_rules! per_terraform_version {
    ($($scenario:ident),* $(,)?) => {
        mod tf1_11 {
            $(
                #[test]
                fn $scenario() {
                    crate::support::with_terraform(
                        crate::support::Terraform::v1_11,
                        "1.11",
                        super::$scenario,
                    );
                }
            )*
        }
        mod tf1_0 {
            $(
                #[test]
                fn $scenario() {
                    crate::support::with_terraform(
                        crate::support::Terraform::v1_0,
                        "1.0.3",
                        super::$scenario,
                    );
                }
            )*
        }
    };
}

per_terraform_version!(
    harness_runs_a_config_without_providers,
    lifecycle,
    drift_is_repaired,
    hostile_names_are_refused,
    ten_tenants_in_parallel,
    managed_admin_without_superuser,
    trace_logs_show_provider_and_hide_password,
    schema_migration_is_rolled_out,
);
