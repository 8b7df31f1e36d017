//! Acceptance tests for `usualstore_tenant_user`, driven by the real `terraform` binary (1.11.x and 1.0.3)
//! against the throwaway cluster: DSNs that connect, each role's powers, rotation, drift, import, parallelism.

use std::str::FromStr;

use crate::support::hcl;
use crate::support::pg::{self, Db, block_on, quote_ident};
use crate::support::{Plan, Terraform, Workdir};
use serde_json::Value;

/// A user block; `password: None` lets the provider generate one.
struct User<'a> {
    label: &'a str,
    tenant_label: &'a str,
    username: String,
    role: &'a str,
    password: Option<&'a str>,
}

impl User<'_> {
    fn hcl(&self) -> String {
        let mut block = format!(
            "resource \"usualstore_tenant_user\" \"{}\" {{\n  tenant   = usualstore_tenant.{}.database_name\n  \
             username = {}\n  role     = {}\n  email    = \"{}@example.com\"\n",
            self.label,
            self.tenant_label,
            hcl::string(&self.username),
            hcl::string(self.role),
            self.label,
        );
        if let Some(password) = self.password {
            block.push_str(&format!("  password = {}\n", hcl::string(password)));
        }
        block.push_str("}\n");
        block
    }
}

fn tenant_block(label: &str, database: &str) -> String {
    format!(
        "resource \"usualstore_tenant\" \"{label}\" {{\n  database_name = {}\n  tenant_name = \"Users Inc.\"\n  \
         deletion_protection = false\n}}\n",
        hcl::string(database)
    )
}

fn config(tenants: &[(&str, &str)], users: &[User<'_>]) -> String {
    let mut text = hcl::provider_config("");
    for (label, database) in tenants {
        text.push_str(&tenant_block(label, database));
    }
    for user in users {
        text.push_str(&user.hcl());
    }
    text
}

fn string_value(values: &Value, attribute: &str) -> String {
    values[attribute]
        .as_str()
        .unwrap_or_else(|| panic!("{attribute} is not a string: {values:#}"))
        .to_owned()
}

/// Connects with a DSN or URL exactly as an application would.
fn connect(dsn: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let config = tokio_postgres::Config::from_str(dsn)?;
    block_on(async {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    })
}

/// `None` when the statement succeeds, otherwise its SQLSTATE.
fn outcome(client: &tokio_postgres::Client, sql: &str) -> Option<String> {
    block_on(client.batch_execute(sql)).err().map(|e| {
        e.code()
            .map_or_else(|| e.to_string(), |c| c.code().to_owned())
    })
}

const DENIED: &str = "42501";

fn assert_powers(dsn: &str, role: &str, tag: &str) {
    let client = connect(dsn).unwrap_or_else(|e| panic!("{role} DSN does not connect: {e}"));
    let insert = format!(
        "INSERT INTO public.customers (first_name, last_name, email) VALUES ('A', 'B', '{tag}@example.com')"
    );
    let update =
        format!("UPDATE public.customers SET first_name = 'C' WHERE email = '{tag}@example.com'");
    let delete = format!("DELETE FROM public.customers WHERE email = '{tag}@example.com'");
    let denied = Some(DENIED.to_owned());
    let expected = match role {
        "admin" => [None, None, None],
        "developer" => [None, None, denied.clone()],
        _ => [denied.clone(), denied.clone(), denied.clone()],
    };
    for (sql, expected) in [insert, update, delete].iter().zip(expected) {
        assert_eq!(outcome(&client, sql), expected, "{role}: {sql}");
    }
    assert_eq!(
        outcome(&client, "SELECT count(*) FROM public.widgets"),
        None
    );
    assert_eq!(
        outcome(&client, "TRUNCATE public.customers"),
        denied,
        "{role} TRUNCATE"
    );
}

fn expect_changes(plan: Plan, what: &str) -> String {
    match plan {
        Plan::Changes(stdout) => stdout,
        Plan::NoChanges => panic!("expected a plan with changes: {what}"),
    }
}

/// Four users of two tenants through their whole life, one named step at a time.
struct UsersScenario<'t> {
    terraform: &'t Terraform,
    a: String,
    b: String,
    users: Vec<User<'static>>,
    workdir: Workdir,
}

const HOSTILE_PASSWORD: &str = "it's a \"pass\" \\ with $pace";

impl<'t> UsersScenario<'t> {
    /// An admin with a hostile given password, a developer and a customer of tenant A, an admin
    /// of tenant B; the rest generated.
    fn create(terraform: &'t Terraform) -> Self {
        let a = pg::unique_name("ua");
        let b = pg::unique_name("ub");
        let user = |label, tenant_label, username: String, role, password| User {
            label,
            tenant_label,
            username,
            role,
            password,
        };
        let users = vec![
            user(
                "admin",
                "a",
                format!("{a}_adm"),
                "admin",
                Some(HOSTILE_PASSWORD),
            ),
            user("dev", "a", format!("{a}_dev"), "developer", None),
            user("cust", "a", format!("{a}_cust"), "customer", None),
            user("b_admin", "b", format!("{b}_adm"), "admin", None),
        ];
        let workdir = Workdir::new(terraform, &config(&[("a", &a), ("b", &b)], &users));
        let scenario = UsersScenario {
            terraform,
            a,
            b,
            users,
            workdir,
        };
        scenario.workdir.init();
        let applied = scenario.workdir.apply(&[]);
        assert!(
            !applied.combined().contains(HOSTILE_PASSWORD),
            "the password appears in apply output"
        );
        scenario.workdir.assert_no_changes();
        scenario
    }

    fn config(&self) -> String {
        config(
            &[("a", self.a.as_str()), ("b", self.b.as_str())],
            &self.users,
        )
    }

    fn values(&self, label: &str) -> Value {
        self.workdir
            .resource_values(&format!("usualstore_tenant_user.{label}"))
    }

    fn dsn(&self, label: &str) -> String {
        string_value(&self.values(label), "dsn")
    }

    fn every_dsn_and_url_has_its_roles_powers(&self) {
        for user in &self.users {
            let v = self.values(user.label);
            let tenant = if user.tenant_label == "a" {
                &self.a
            } else {
                &self.b
            };
            assert_eq!(
                string_value(&v, "id"),
                format!("{tenant}/{}", user.username)
            );
            let password = string_value(&v, "password");
            match user.password {
                Some(p) => assert_eq!(password, p),
                None => assert_eq!(password.len(), 32, "generated password"),
            }
            assert_powers(
                &string_value(&v, "dsn"),
                user.role,
                &format!("{}kv", user.label),
            );
            assert_powers(
                &string_value(&v, "url"),
                user.role,
                &format!("{}url", user.label),
            );
        }
    }

    fn tenant_a_admin_cannot_reach_tenant_b(&self) {
        let a_admin_dsn = self.dsn("admin");
        let to_b = a_admin_dsn.replace(
            &format!("dbname='{}'", self.a),
            &format!("dbname='{}'", self.b),
        );
        assert_ne!(to_b, a_admin_dsn);
        let refused = connect(&to_b).expect_err("tenant A's admin reached tenant B");
        assert_eq!(refused.code().map(|c| c.code()), Some(DENIED));
    }

    fn role_switch_and_rotation_happen_in_place(&mut self) {
        let old_admin_dsn = self.dsn("admin");
        self.users[1].role = "admin";
        self.users[0].password = Some("rotated password 2");
        self.workdir.set_config(&self.config());
        let changes = expect_changes(self.workdir.plan_detailed(), "role and password changed");
        assert!(changes.contains("2 to change, 0 to destroy"), "{changes}");
        assert!(
            !changes.contains("rotated password 2"),
            "the password appears in the plan:\n{changes}"
        );
        self.workdir.apply(&[]);
        assert_powers(&self.dsn("dev"), "admin", "devpromoted");
        assert!(
            connect(&old_admin_dsn).is_err(),
            "the old password still works"
        );
        assert_powers(&self.dsn("admin"), "admin", "rotated");
        self.workdir.assert_no_changes();
    }

    /// Password, membership and flags changed behind Terraform's back, and a user dropped.
    fn drift_is_seen_and_repaired(&self) {
        let (a, b, users) = (&self.a, &self.b, &self.users);
        let su = Db::postgres();
        su.batch(&format!(
            "ALTER ROLE {dev} PASSWORD 'changed-elsewhere' CREATEDB; REVOKE {group} FROM {dev}; \
             GRANT {other} TO {cust}",
            dev = quote_ident(&users[1].username),
            group = quote_ident(&format!("{a}_admin")),
            other = quote_ident(&format!("{b}_customer")),
            cust = quote_ident(&users[2].username),
        ));
        su.batch(&format!("DROP ROLE {}", quote_ident(&users[3].username)));
        let changes = expect_changes(self.workdir.plan_detailed(), "drift");
        assert!(
            changes.contains("1 to add, 2 to change, 0 to destroy"),
            "{changes}"
        );
        self.workdir.apply(&[]);
        self.workdir.assert_no_changes();
        assert_powers(&self.dsn("dev"), "admin", "devrepaired");
        let cust_dsn = self.dsn("cust");
        assert_powers(&cust_dsn, "customer", "custrepaired");
        let cust_to_b = cust_dsn.replace(&format!("dbname='{a}'"), &format!("dbname='{b}'"));
        assert!(
            connect(&cust_to_b).is_err(),
            "the foreign membership survived the repair"
        );
        assert_powers(&self.dsn("b_admin"), "admin", "recreated");
    }

    /// Into a fresh state, with the tenant given by name: the password cannot be read back, so
    /// the next apply sets one.
    fn import_takes_a_user_into_another_state(&self) {
        let customer = &self.users[2].username;
        let imported = Workdir::new(
            self.terraform,
            &format!(
                "{}resource \"usualstore_tenant_user\" \"cust\" {{\n  tenant = {}\n  username = {}\n  \
                 role = \"customer\"\n  email = \"cust@example.com\"\n}}\n",
                hcl::provider_config(""),
                hcl::string(&self.a),
                hcl::string(customer)
            ),
        );
        imported.init();
        imported.import(
            "usualstore_tenant_user.cust",
            &format!("{}/{customer}", self.a),
        );
        let changes = expect_changes(imported.plan_detailed(), "imported user gets a password");
        assert!(
            changes.contains("0 to add, 1 to change, 0 to destroy"),
            "{changes}"
        );
        let imported_values = imported.resource_values("usualstore_tenant_user.cust");
        assert_eq!(imported_values["role"], "customer");
        assert_eq!(imported_values["email"], "cust@example.com");
    }

    fn destroy_drops_every_user_and_tenant(self) {
        self.workdir.destroy();
        for user in &self.users {
            assert!(
                !pg::role_exists(&user.username),
                "{} survived destroy",
                user.username
            );
        }
        assert!(!pg::database_exists(&self.a) && !pg::database_exists(&self.b));
    }
}

fn users_lifecycle(terraform: &Terraform) {
    let mut scenario = UsersScenario::create(terraform);
    scenario.every_dsn_and_url_has_its_roles_powers();
    scenario.tenant_a_admin_cannot_reach_tenant_b();
    scenario.role_switch_and_rotation_happen_in_place();
    scenario.drift_is_seen_and_repaired();
    scenario.import_takes_a_user_into_another_state();
    scenario.destroy_drops_every_user_and_tenant();
}

fn bad_values_are_refused_with_attribute_diagnostics(terraform: &Terraform) {
    let a = pg::unique_name("ubad");
    let text = format!(
        "{}{}resource \"usualstore_tenant_user\" \"x\" {{\n  tenant = usualstore_tenant.a.database_name\n  \
         username = \"Bad Name\"\n  role = \"root\"\n  password = \"short\"\n  email = \"nope\"\n  connection_limit = -7\n}}\n\
         resource \"usualstore_tenant_user\" \"group\" {{\n  tenant = \"{a}\"\n  \
         username = \"{a}_owner\"\n  role = \"admin\"\n}}\n",
        hcl::provider_config(""),
        tenant_block("a", &a),
    );
    let workdir = Workdir::new(terraform, &text);
    workdir.init();
    let plan = workdir.try_plan(&[]);
    assert!(!plan.success(), "bad values were accepted:\n{plan}");
    let out = plan.combined();
    for needle in [
        "Invalid username",
        "Invalid role",
        "\"admin\", \"developer\" or \"customer\"",
        "Invalid password",
        "at least 8 characters",
        "Invalid email",
        "Invalid connection_limit",
        "group role",
    ] {
        assert!(out.contains(needle), "{needle:?} missing from:\n{out}");
    }
    assert!(!pg::database_exists(&a), "a plan created the tenant");
}

fn twenty_users_in_parallel(terraform: &Terraform) {
    let a = pg::unique_name("upa");
    let b = pg::unique_name("upb");
    let labels: Vec<String> = (0..20).map(|i| format!("u{i}")).collect();
    let roles = ["admin", "developer", "customer"];
    let make = |shift: usize| -> Vec<User<'_>> {
        labels
            .iter()
            .enumerate()
            .map(|(i, label)| User {
                label,
                tenant_label: if i % 2 == 0 { "a" } else { "b" },
                username: format!("{}_{label}", if i % 2 == 0 { &a } else { &b }),
                role: roles[(i + shift) % 3],
                password: None,
            })
            .collect()
    };
    let tenants = [("a", a.as_str()), ("b", b.as_str())];
    let workdir = Workdir::new(terraform, &config(&tenants, &make(0)));
    workdir.init();
    workdir.apply(&["-parallelism=20"]);
    workdir.set_config(&config(&tenants, &make(1)));
    workdir.apply(&["-parallelism=20"]);
    workdir.assert_no_changes();
    let u0 = workdir.resource_values("usualstore_tenant_user.u0");
    assert_powers(&string_value(&u0, "dsn"), roles[1], "parallel");
    workdir.run(&[
        "destroy",
        "-no-color",
        "-input=false",
        "-auto-approve",
        "-parallelism=20",
    ]);
    for label in &labels {
        assert!(
            !pg::role_exists(&format!("{a}_{label}")) && !pg::role_exists(&format!("{b}_{label}"))
        );
    }
}

macro_rules! per_terraform_version {
    ($($scenario:ident),* $(,)?) => {
        mod tf1_11 {
            $(
                #[test]
                fn $scenario() {
                    crate::support::with_terraform(crate::support::Terraform::v1_11, "1.11", super::$scenario);
                }
            )*
        }
        mod tf1_0 {
            $(
                #[test]
                fn $scenario() {
                    crate::support::with_terraform(crate::support::Terraform::v1_0, "1.0.3", super::$scenario);
                }
            )*
        }
    };
}

per_terraform_version!(
    users_lifecycle,
    bad_values_are_refused_with_attribute_diagnostics,
    twenty_users_in_parallel,
);
