//! Passwords kept out of Terraform's state: `password_wo` (write-only, Terraform 1.11+) with
//! `password_wo_version`, and `ephemeral "usualstore_dsn"`, fed from an ephemeral input variable
//! as operators would from a secret store. Terraform 1.0.3 gets a clear refusal instead.

use std::fs;
use std::str::FromStr;

use crate::support::hcl;
use crate::support::pg::{self, Db, block_on, quote_ident, quote_literal};
use crate::support::{Plan, Terraform, Workdir, with_terraform};

/// One tenant, one customer user with a write-only password from `var.pw`, the user's full DSN
/// opened as an ephemeral value (for `ephemeral_user` when given, otherwise for the user, once it
/// exists), and a `local-exec` probe that logs in with that DSN (the superuser's PG* variables
/// overridden, so only the DSN can get it in).
fn config(database: &str, username: &str, ephemeral_user: Option<&str>) -> String {
    let ephemeral_user = match ephemeral_user {
        Some(name) => hcl::string(name),
        None => {
            "usualstore_tenant_user.u.username\n  user_id  = usualstore_tenant_user.u.id".to_owned()
        }
    };
    let mut text = hcl::provider_config("");
    text.push_str(&format!(
        r#"
variable "pw" {{
  type      = string
  sensitive = true
  ephemeral = true
}}

variable "pw_version" {{
  type = number
}}

resource "usualstore_tenant" "t" {{
  database_name       = {database}
  tenant_name         = "Write Only Ltd"
  deletion_protection = false
}}

resource "usualstore_tenant_user" "u" {{
  tenant              = usualstore_tenant.t.database_name
  username            = {username}
  role                = "customer"
  password_wo         = var.pw
  password_wo_version = var.pw_version
}}

ephemeral "usualstore_dsn" "u" {{
  tenant   = usualstore_tenant_user.u.tenant
  username = {ephemeral_user}
  password = var.pw
}}

resource "terraform_data" "probe" {{
  triggers_replace = [var.pw_version]

  provisioner "local-exec" {{
    command = "\"$PSQL\" \"$DSN\" -Atc 'SELECT current_user' > probe.txt"
    environment = {{
      PSQL       = {psql}
      DSN        = ephemeral.usualstore_dsn.u.dsn
      PGUSER     = "nobody"
      PGPASSWORD = "not the password"
    }}
  }}
}}
"#,
        database = hcl::string(database),
        username = hcl::string(username),
        ephemeral_user = ephemeral_user,
        psql = hcl::string(&pg::psql().to_string_lossy()),
    ));
    text
}

fn vars(password: &str, version: u32) -> [String; 4] {
    [
        "-var".to_owned(),
        format!("pw={password}"),
        "-var".to_owned(),
        format!("pw_version={version}"),
    ]
}

fn as_args(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Logs in as `username` with `password` over TCP, as an application would.
fn logs_in(database: &str, username: &str, password: &str) -> bool {
    let host = pg::pg_var("PGHOST").unwrap_or_else(|| "127.0.0.1".to_owned());
    let port = pg::pg_var("PGPORT").unwrap_or_else(|| "5432".to_owned());
    let Ok(mut config) = tokio_postgres::Config::from_str(&format!("host={host} port={port}"))
    else {
        return false;
    };
    config.user(username).password(password).dbname(database);
    block_on(async {
        match config.connect(tokio_postgres::NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                client.simple_query("SELECT 1").await.is_ok()
            }
            Err(_) => false,
        }
    })
}

/// Neither the state file nor `terraform show -json` holds `password`.
fn assert_not_in_state(workdir: &Workdir, password: &str) {
    let state = fs::read_to_string(workdir.path().join("terraform.tfstate")).expect("read state");
    assert!(
        !state.contains(password),
        "the password is in terraform.tfstate"
    );
    let shown = workdir.show_json().to_string();
    assert!(
        !shown.contains(password),
        "the password is in terraform show -json"
    );
}

fn probe_login(workdir: &Workdir) -> String {
    let path = workdir.path().join("probe.txt");
    let text = fs::read_to_string(&path).unwrap_or_default();
    fs::remove_file(&path).ok();
    text.trim().to_owned()
}

fn write_only_password_never_reaches_state(terraform: &Terraform) {
    let database = pg::unique_name("wo");
    let username = format!("{database}_u");
    let (first, second) = ("first write-only secret", "second write-only secret");
    let workdir = Workdir::new(terraform, &config(&database, &username, None));
    workdir.init();

    let applied = workdir.apply(&as_args(&vars(first, 1)));
    assert!(
        !applied.combined().contains(first),
        "the password is in apply output"
    );
    assert!(
        logs_in(&database, &username, first),
        "the write-only password does not log in"
    );
    assert_not_in_state(&workdir, first);
    assert_eq!(
        probe_login(&workdir),
        username,
        "the ephemeral DSN did not log in"
    );
    let values = workdir.resource_values("usualstore_tenant_user.u");
    for attribute in ["password", "password_wo"] {
        assert!(
            values[attribute].is_null(),
            "{attribute} in state: {values:#}"
        );
    }
    assert_eq!(values["password_wo_version"], 1);
    let dsn = values["dsn"].as_str().expect("dsn");
    assert!(!dsn.contains("password"), "dsn carries a password: {dsn}");
    assert!(
        values["url"]
            .as_str()
            .expect("url")
            .starts_with(&format!("postgres://{username}@")),
        "url carries a password"
    );
    assert_eq!(
        workdir.plan_detailed_with(&as_args(&vars(first, 1))),
        Plan::NoChanges
    );

    // Changed by hand: the refresh sees it without the password, the apply sets it back.
    Db::postgres().batch(&format!(
        "ALTER ROLE {} PASSWORD {}",
        quote_ident(&username),
        quote_literal("set by hand")
    ));
    match workdir.plan_detailed_with(&as_args(&vars(first, 1))) {
        Plan::Changes(plan) => assert!(plan.contains("password_in_sync"), "{plan}"),
        Plan::NoChanges => panic!("a password changed by hand went unnoticed"),
    }
    workdir.apply(&as_args(&vars(first, 1)));
    assert!(logs_in(&database, &username, first));
    assert!(!logs_in(&database, &username, "set by hand"));

    // Rotation: a new value under a new version.
    workdir.apply(&as_args(&vars(second, 2)));
    assert!(
        !logs_in(&database, &username, first),
        "the old password still works"
    );
    assert!(
        logs_in(&database, &username, second),
        "the new password does not work"
    );
    assert_eq!(
        probe_login(&workdir),
        username,
        "the ephemeral DSN did not log in after rotation"
    );
    assert_not_in_state(&workdir, second);
    assert_eq!(
        workdir.plan_detailed_with(&as_args(&vars(second, 2))),
        Plan::NoChanges
    );

    // The ephemeral DSN of a user that does not exist fails clearly.
    workdir.set_config(&config(
        &database,
        &username,
        Some(&format!("{database}_nobody")),
    ));
    let refused = workdir.try_plan(&as_args(&vars(second, 2)));
    assert!(
        !refused.success() && refused.stderr.contains("no login user"),
        "{refused}"
    );
    workdir.set_config(&config(&database, &username, None));

    workdir.apply(&[
        "-destroy",
        "-var",
        &format!("pw={second}"),
        "-var",
        "pw_version=2",
    ]);
    assert!(!pg::role_exists(&username));
}

fn both_passwords_are_refused(terraform: &Terraform) {
    let database = pg::unique_name("wob");
    let mut text = config(&database, &format!("{database}_u"), None);
    text = text.replace(
        "  password_wo         = var.pw\n",
        "  password_wo         = var.pw\n  password            = \"kept in state\"\n",
    );
    let workdir = Workdir::new(terraform, &text);
    workdir.init();
    let refused = workdir.try_plan(&as_args(&vars("a write-only secret", 1)));
    assert!(!refused.success(), "{refused}");
    assert!(
        refused.stderr.contains("password_wo") && refused.stderr.contains("exclude each other"),
        "{refused}"
    );
}

/// Terraform 1.0.3 would store a write-only value as any other: the provider refuses it by name.
fn write_only_needs_terraform_1_11(terraform: &Terraform) {
    let database = pg::unique_name("wo10");
    let mut text = hcl::provider_config("");
    text.push_str(&format!(
        r#"
resource "usualstore_tenant" "t" {{
  database_name       = {database}
  tenant_name         = "Old Terraform"
  deletion_protection = false
}}

resource "usualstore_tenant_user" "u" {{
  tenant              = usualstore_tenant.t.database_name
  username            = {username}
  role                = "customer"
  password_wo         = "never stored anywhere"
  password_wo_version = 1
}}
"#,
        database = hcl::string(&database),
        username = hcl::string(&format!("{database}_u")),
    ));
    let workdir = Workdir::new(terraform, &text);
    workdir.init();
    let refused = workdir.try_plan(&[]);
    assert!(!refused.success(), "{refused}");
    assert!(
        refused.stderr.contains("password_wo") && refused.stderr.contains("Terraform 1.11"),
        "{refused}"
    );
    assert!(!pg::database_exists(&database));
}

/// `modules/tenant` with `write_only_passwords`: one admin whose password comes from `var.pw`
/// (`admins` as given), the module linked into the working directory as operators vendor it.
fn module_config(database: &str, admins: &str) -> String {
    let mut text = hcl::provider_config("");
    text.push_str(&format!(
        r#"
variable "pw" {{
  type      = string
  sensitive = true
}}

module "t" {{
  source               = "./modules/tenant"
  database_name        = {database}
  tenant_name          = "Module Write Only"
  deletion_protection  = false
  write_only_passwords = true
  admins               = {admins}
}}

output "admin_dsn" {{
  value     = module.t.admin_dsn
  sensitive = true
}}
"#,
        database = hcl::string(database),
    ));
    text
}

fn module_workdir(terraform: &Terraform, config: &str) -> Workdir {
    let workdir = Workdir::new(terraform, config);
    std::os::unix::fs::symlink(
        crate::support::terraform::repo_root().join("modules"),
        workdir.path().join("modules"),
    )
    .expect("link modules/ into the working directory");
    workdir.init();
    workdir
}

fn module_keeps_passwords_out_of_state(terraform: &Terraform) {
    let database = pg::unique_name("wom");
    let username = format!("{database}_adm");
    let password = "a module's write-only secret";
    let admins = format!(
        "[{{ username = {}, password = var.pw, password_version = \"1\" }}]",
        hcl::string(&username)
    );
    let workdir = module_workdir(terraform, &module_config(&database, &admins));
    let var = format!("pw={password}");
    workdir.apply(&["-var", &var]);
    assert!(logs_in(&database, &username, password));
    assert_not_in_state(&workdir, password);
    let dsn = workdir.output_json()["admin_dsn"]["value"]
        .as_str()
        .expect("admin_dsn")
        .to_owned();
    assert!(
        !dsn.contains("password"),
        "admin_dsn carries a password: {dsn}"
    );
    assert_eq!(workdir.plan_detailed_with(&["-var", &var]), Plan::NoChanges);

    // Nothing to generate from: a user without a password is refused by name.
    let without = format!(
        "[{{ username = {} }}, {{ username = {}, password = var.pw }}]",
        hcl::string(&format!("{database}_new")),
        hcl::string(&username)
    );
    workdir.set_config(&module_config(&database, &without));
    let refused = workdir.try_plan(&["-var", &var]);
    assert!(
        !refused.success()
            && refused.combined().contains(&format!("{database}_new"))
            && refused.combined().contains("none can be generated"),
        "{refused}"
    );
    workdir.set_config(&module_config(&database, &admins));
    workdir.apply(&["-destroy", "-var", &var]);
    assert!(!pg::database_exists(&database));
}

fn module_write_only_needs_terraform_1_11(terraform: &Terraform) {
    let database = pg::unique_name("wom10");
    let admins = format!(
        "[{{ username = {}, password = var.pw }}]",
        hcl::string(&format!("{database}_adm"))
    );
    let workdir = module_workdir(terraform, &module_config(&database, &admins));
    let refused = workdir.try_plan(&["-var", "pw=an old Terraform's secret"]);
    assert!(
        !refused.success() && refused.stderr.contains("Terraform 1.11"),
        "{refused}"
    );
}

mod tf1_11 {
    #[test]
    fn module_keeps_passwords_out_of_state() {
        super::with_terraform(
            super::Terraform::v1_11,
            "1.11",
            super::module_keeps_passwords_out_of_state,
        );
    }

    #[test]
    fn write_only_password_never_reaches_state() {
        super::with_terraform(
            super::Terraform::v1_11,
            "1.11",
            super::write_only_password_never_reaches_state,
        );
    }

    #[test]
    fn both_passwords_are_refused() {
        super::with_terraform(
            super::Terraform::v1_11,
            "1.11",
            super::both_passwords_are_refused,
        );
    }
}

mod tf1_0 {
    #[test]
    fn module_write_only_needs_terraform_1_11() {
        super::with_terraform(
            super::Terraform::v1_0,
            "1.0.3",
            super::module_write_only_needs_terraform_1_11,
        );
    }

    #[test]
    fn write_only_needs_terraform_1_11() {
        super::with_terraform(
            super::Terraform::v1_0,
            "1.0.3",
            super::write_only_needs_terraform_1_11,
        );
    }
}
