//! The operator's customer workflow, end to end, with the real Terraform 1.11.x and 1.0.3 against a
//! PostgreSQL server of the test's own: `examples/tenants/add-customer.sh` run with options and,
//! through a terminal (tmux), with its prompts; each customer applied with the deploy script it
//! wrote, in a Terraform workspace of its own; the first customer still intact after the second;
//! every user's DSN from the outputs connecting with exactly its role's powers; the configuration
//! refusing another customer's workspace and a run without the secrets file; the module's
//! validation messages naming the bad values; the compose files parsed as YAML.
//!
//! A second test needs no server: shellcheck, the committed example customers are what the script
//! writes, terraform fmt, .gitignore keeps the secrets and states out, the script's refusals.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::customers_support::{
    Operator, Tty, check_locked_out, check_powers, copy_dir, dsn_password, mode, parse_yaml, read,
    shellcheck,
};
use crate::support::process::run_with_timeout;
use crate::support::terraform::{loud_note, repo_root};
use crate::support::{Terraform, hcl};
use serde_json::Value;
use usualstore_testpg::Cluster;

const ACME: &str = "acme_tools";
const ACME_COMPANY: &str = r#"Acme "Tools" & Co. $5 \ ${x} %{y}"#;
const ACME_BOSS_PASSWORD: &str = r#"it's "quoted" $HOME \back ${x} %{y}"#;
const CORNER: &str = "corner_bakery";
const CORNER_COMPANY: &str = "Corner $ 'Bakery'";
const CORNER_TYPED_PASSWORD: &str = r#"Typed 'pass' "x" $1 \z"#;

/// The committed example customers and the add-customer.sh options that write them.
const EXAMPLE_CUSTOMERS: [(&str, &[&str]); 2] = [
    (
        "building_shop",
        &[
            "--company",
            "Building Shop Inc.",
            "--database",
            "building_shop",
            "--plan",
            "professional",
            "--admin",
            "building_ops:ops@building-shop.example",
            "--developer",
            "building_dev:dev@building-shop.example",
            "--customer",
            "building_reports",
            "--api-port",
            "4001",
        ],
    ),
    (
        "hardware_store",
        &[
            "--company",
            "Hardware Store & Co.",
            "--database",
            "hardware_store",
            "--admin",
            "hardware_ops:admin@hardware-store.example",
            "--customer",
            "hardware_viewer:viewer@hardware-store.example",
            "--api-port",
            "4002",
        ],
    ),
];

/// Terraform wraps long messages; compare text with every run of blanks as one space.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn assert_mentions(output: &crate::support::Output, needles: &[&str]) {
    let text = flat(&output.combined());
    for needle in needles {
        assert!(
            text.contains(needle),
            "expected {needle:?} in the output:\n{output}"
        );
    }
}

/// The compose file of a customer: one store-api service, built from the repository, with its
/// environment, a host port, and no database container. Returns the host port.
fn check_compose(path: &Path, repo: &Path, company: &str) -> u16 {
    let compose = parse_yaml(path);
    let services = compose["services"]
        .as_object()
        .unwrap_or_else(|| panic!("{}: no services:\n{compose:#}", path.display()));
    assert_eq!(
        services.keys().collect::<Vec<_>>(),
        ["store-api"],
        "{}: only the store-api service (the database is the provisioned server)",
        path.display()
    );
    let api = &services["store-api"];
    let context = api["build"]["context"].as_str().unwrap_or_default();
    let resolved = path
        .parent()
        .unwrap_or(Path::new("."))
        .join(context)
        .canonicalize()
        .unwrap_or_else(|e| panic!("{}: build context {context}: {e}", path.display()));
    assert_eq!(
        resolved,
        repo.canonicalize().expect("repository path"),
        "{}: the build context is the repository root",
        path.display()
    );
    assert_eq!(api["build"]["dockerfile"], "store-api/Dockerfile");
    let env = &api["environment"];
    let dsn = env["DATABASE_DSN"].as_str().unwrap_or_default();
    assert!(
        dsn.starts_with("${DATABASE_DSN:?"),
        "{}: DATABASE_DSN must come from the deploy script's environment, not the file: {dsn}",
        path.display()
    );
    assert_eq!(env["API_PORT"], "4001", "{}", path.display());
    // Compose reads $$ as a literal $.
    assert_eq!(
        env["TENANT_NAME"]
            .as_str()
            .map(|name| name.replace("$$", "$")),
        Some(company.to_owned()),
        "{}",
        path.display()
    );
    let ports = api["ports"].as_array().cloned().unwrap_or_default();
    assert_eq!(ports.len(), 1, "{}: one published port", path.display());
    let mapping = ports[0].as_str().unwrap_or_default();
    let (host, container) = mapping
        .split_once(':')
        .unwrap_or_else(|| panic!("{}: port {mapping:?}", path.display()));
    assert_eq!(container, "4001");
    host.parse()
        .unwrap_or_else(|e| panic!("{}: host port {host:?}: {e}", path.display()))
}

/// Plans CONFIG (calls of ../modules/tenant) in a new directory DIR of the copy; the plan must fail.
fn plan_must_fail(operator: &Operator, dir: &str, config: &str) -> crate::support::Output {
    let dir = operator.tree().join(dir);
    fs::create_dir_all(&dir).expect("create the configuration directory");
    fs::write(
        dir.join("main.tf"),
        format!("{}\n{config}", hcl::provider_config("")),
    )
    .expect("write main.tf");
    let init = operator.terraform_at(&dir, None, &["init", "-input=false", "-no-color"]);
    assert!(init.success(), "init failed:\n{init}");
    let plan = operator.terraform_at(&dir, None, &["plan", "-input=false", "-no-color"]);
    assert!(!plan.success(), "plan accepted bad input:\n{plan}");
    plan
}

/// Bad input through the module: the provider's diagnostics name each bad value (the module keeps no
/// copy of the rules), and the module's own checks (keys of user entries, usernames listed twice)
/// name theirs, on this Terraform version.
fn module_rejects_bad_input(operator: &Operator) {
    // A tenant that is wrong fails first; its users are planned (and checked) only once it is right.
    let plan = plan_must_fail(
        operator,
        "bad_tenant",
        r#"module "bad" {
  source        = "../modules/tenant"
  database_name = "Bad-Shop"
  tenant_name   = "Bad"
  plan          = "gold"
}
"#,
    );
    assert_mentions(
        &plan,
        &[
            "got \"Bad-Shop\"",
            "unknown plan \"gold\"; allowed values are: free, starter, professional, enterprise",
        ],
    );

    let plan = plan_must_fail(
        operator,
        "bad_users",
        r#"module "bad" {
  source        = "../modules/tenant"
  database_name = "bad_users_shop"
  tenant_name   = "Bad users"
  admins        = [{ username = "Bad Admin", email = "a@b.example" }]
  customers     = [{ username = "viewer", email = "not an email" }, { username = "short_pw", password = "short" }, { username = "clash_shop_admin" }]
}
"#,
    );
    assert_mentions(
        &plan,
        &[
            "got \"Bad Admin\"",
            "must look like name@example.com",
            "must be at least 8 characters long",
            "\"clash_shop_admin\" ends with \"_admin\"",
        ],
    );
    assert!(
        !plan.combined().contains("\"short\""),
        "a password value shows in the messages:\n{plan}"
    );

    let plan = plan_must_fail(
        operator,
        "bad_keys",
        r#"module "typo" {
  source        = "../modules/tenant"
  database_name = "typo_shop"
  tenant_name   = "Typo"
  developers    = [{ username = "dev_ok", pasword = "typo1234" }]
}
"#,
    );
    assert_mentions(&plan, &["developers[0] has the unknown key(s) pasword"]);

    let plan = plan_must_fail(
        operator,
        "bad_names",
        r#"module "duplicate" {
  source        = "../modules/tenant"
  database_name = "dup_shop"
  tenant_name   = "Dup"
  admins        = [{ username = "same_login" }]
  customers     = [{ username = "same_login" }]
}
"#,
    );
    assert_mentions(&plan, &["username(s) same_login listed more than once"]);
}

/// The example of docs/modules/tenant.md applies as written and its outputs are what it says.
fn docs_example_applies(operator: &Operator) {
    let doc = read(&repo_root().join("docs/modules/tenant.md"));
    let example = doc
        .split("```terraform\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/modules/tenant.md has a terraform example");
    let dir = operator.tree().join("docs_example");
    fs::create_dir_all(&dir).expect("create docs_example");
    fs::write(
        dir.join("main.tf"),
        format!(
            "{}\n{}",
            hcl::provider_config(""),
            example.replace("../../modules/tenant", "../modules/tenant")
        ),
    )
    .expect("write main.tf");
    for args in [
        &["init", "-input=false", "-no-color"][..],
        &["apply", "-auto-approve", "-input=false", "-no-color"][..],
    ] {
        let output = operator.terraform_at(&dir, None, args);
        assert!(output.success(), "the docs example failed:\n{output}");
    }
    let output = operator.terraform_at(&dir, None, &["output", "-json", "-no-color"]);
    assert!(output.success(), "terraform output failed:\n{output}");
    let outputs: Value = serde_json::from_str(&output.stdout).expect("output JSON");
    assert_eq!(
        outputs["building_shop_logins"]["value"],
        serde_json::json!({
            "building_api": "admin",
            "building_dev": "developer",
            "building_reports": "customer",
        })
    );
    let api_dsn = outputs["building_shop_api_dsn"]["value"]
        .as_str()
        .unwrap_or_default();
    check_powers(api_dsn, "admin");
}

/// The customer workflow end to end, as named steps on one server: two customers added (by options
/// and through the prompts), deployed, refused when mixed up, their DSNs checked, their compose
/// files, the module's input checks and the docs example.
fn two_customers(terraform: &Terraform) {
    let started = Instant::now();
    let cluster = Cluster::start().expect("a PostgreSQL server of this test's own");
    let operator = Operator::new(terraform, cluster.pg_env());
    let version = operator.terraform_version().to_owned();

    add_customer_with_options(&operator);
    add_customer_through_prompts(&operator);
    let deploys = deploy_each_customer(&operator);
    mixed_up_customer_files_are_refused(&operator);
    both_customers_are_intact(&operator, &cluster);
    dsns_reach_only_their_own_customer(&operator, &deploys);
    compose_ports_are_unique(&operator);
    module_rejects_bad_input(&operator);
    docs_example_applies(&operator);

    cluster.stop().expect("stop the server");
    loud_note(&format!(
        "customer workflow with Terraform {version}: {:.0?}",
        started.elapsed()
    ));
}

/// add-customer.sh with every answer given as an option: the password file's password lands in the
/// private secrets file only.
fn add_customer_with_options(operator: &Operator) {
    let password_file = operator.tree().join("acme.passwords");
    fs::write(
        &password_file,
        format!("# chosen passwords\nacme_boss={ACME_BOSS_PASSWORD}\n"),
    )
    .expect("write the password file");
    let password_arg = password_file.display().to_string();
    let added = operator.run_script(
        "add-customer.sh",
        &[
            "--non-interactive",
            "--company",
            ACME_COMPANY,
            "--database",
            ACME,
            "--plan",
            "professional",
            "--admin",
            "acme_boss:boss@acme.example",
            "--admin",
            "acme_api",
            "--developer",
            "acme_dev:dev@acme.example",
            "--customer",
            "acme_ro",
            "--password-file",
            &password_arg,
        ],
        &[],
    );
    assert!(added.success(), "add-customer.sh failed:\n{added}");
    let tfvars = read(&operator.customer_file("acme_tools.tfvars"));
    assert!(
        tfvars.contains(&format!(
            "tenant_name         = {}",
            hcl::string(ACME_COMPANY)
        )),
        "the company name is not escaped as HCL wants it:\n{tfvars}"
    );
    let secrets = operator.customer_file("acme_tools.secrets.tfvars");
    assert_eq!(mode(&secrets), 0o600, "the secrets file is not private");
    assert!(read(&secrets).contains(&hcl::string(ACME_BOSS_PASSWORD)));
    for file in [
        "acme_tools.tfvars",
        "acme_tools-deploy.sh",
        "acme_tools-docker-compose.yml",
    ] {
        assert!(
            !read(&operator.customer_file(file)).contains("quoted"),
            "{file} holds a password"
        );
    }
}

/// add-customer.sh through its prompts on a terminal: bad answers are explained and asked again, and
/// passwords are never echoed.
fn add_customer_through_prompts(operator: &Operator) {
    let mut tty = Tty::spawn(
        &operator.example(),
        &format!(
            "export USUALSTORE_PROVIDER={}\nbash ./add-customer.sh\necho \"add-customer exited with $?\"\nexec sleep 600\n",
            env!("CARGO_BIN_EXE_terraform-provider-usualstore")
        ),
    );
    tty.answer("Company name: ", CORNER_COMPANY);
    tty.answer(
        "Database name (also the customer key) [corner_bakery]: ",
        "Corner-Bakery",
    );
    tty.expect("database_name: name must start with a lowercase letter or underscore, got \"Corner-Bakery\"");
    tty.answer(
        "Database name (also the customer key) [corner_bakery]: ",
        "",
    );
    tty.answer(
        "Plan (free starter professional enterprise) [starter]: ",
        "",
    );
    tty.answer("Username of admin 1 [corner_bakery_api]: ", "");
    tty.answer(
        "E-mail of corner_bakery_api (optional): ",
        "api@corner.example",
    );
    tty.answer("Password for corner_bakery_api", "short");
    tty.expect("password: must be at least 8 characters long");
    tty.answer("Password for corner_bakery_api", CORNER_TYPED_PASSWORD);
    tty.answer(
        "Repeat the password for corner_bakery_api: ",
        CORNER_TYPED_PASSWORD,
    );
    tty.answer("Username of another admin (empty: done): ", "");
    tty.answer("Username of a developer (empty: none): ", "");
    tty.answer("Username of a customer (empty: none): ", "acme_ro");
    tty.expect("username 'acme_ro' is taken by customer 'acme_tools'");
    tty.answer("Username of a customer (empty: none): ", "corner_ro");
    tty.answer("E-mail of corner_ro (optional): ", "");
    tty.answer("Password for corner_ro", "");
    tty.answer("Username of another customer (empty: done): ", "");
    // building_shop and hardware_store have 4001 and 4002, acme_tools 4003.
    tty.answer("Host port of the store-api container [4004]: ", "");
    tty.answer("Write the files? [Y/n]: ", "");
    tty.expect("add-customer exited with 0");
    let screen = tty.screen();
    assert!(
        !screen.contains(CORNER_TYPED_PASSWORD) && !screen.contains("short\n"),
        "a password was echoed:\n{screen}"
    );
    drop(tty);
    let corner_tfvars = read(&operator.customer_file("corner_bakery.tfvars"));
    assert!(corner_tfvars.contains(
        r#"{ username = "corner_bakery_api", email = "api@corner.example", password_in_secrets = "true" },"#
    ));
    assert!(!corner_tfvars.contains("Typed"));
    assert!(
        read(&operator.customer_file("corner_bakery.secrets.tfvars"))
            .contains(&hcl::string(CORNER_TYPED_PASSWORD))
    );
}

/// Applies one customer, then the other, with their deploy scripts; returns what each printed.
fn deploy_each_customer(operator: &Operator) -> [crate::support::Output; 2] {
    let apply_args = ["-auto-approve", "-input=false", "-no-color"];
    let deploy_acme = operator.run_script("customers/acme_tools-deploy.sh", &apply_args, &[]);
    assert!(
        deploy_acme.success(),
        "deploying acme_tools failed:\n{deploy_acme}"
    );
    let deploy_corner = operator.run_script("customers/corner_bakery-deploy.sh", &apply_args, &[]);
    assert!(
        deploy_corner.success(),
        "deploying corner_bakery failed:\n{deploy_corner}"
    );
    assert_mentions(&deploy_corner, &["DSNs hold passwords and are not shown"]);
    [deploy_acme, deploy_corner]
}

/// Applying a customer's file in another customer's workspace, or without its secrets, is refused
/// before anything is planned.
fn mixed_up_customer_files_are_refused(operator: &Operator) {
    let wrong_workspace = operator.terraform(
        CORNER,
        &[
            "plan",
            "-input=false",
            "-no-color",
            "-var-file=customers/acme_tools.tfvars",
            "-var-file=customers/acme_tools.secrets.tfvars",
        ],
    );
    assert!(
        !wrong_workspace.success(),
        "planned acme_tools in corner_bakery's state:\n{wrong_workspace}"
    );
    assert_mentions(
        &wrong_workspace,
        &["workspace 'corner_bakery', but the var-file is for customer 'acme_tools'"],
    );
    let no_secrets = operator.terraform(
        ACME,
        &[
            "plan",
            "-input=false",
            "-no-color",
            "-var-file=customers/acme_tools.tfvars",
        ],
    );
    assert!(
        !no_secrets.success(),
        "planned without the secrets file:\n{no_secrets}"
    );
    assert_mentions(
        &no_secrets,
        &["the password of acme_boss is kept in customers/acme_tools.secrets.tfvars"],
    );
}

/// Both customers' databases and users exist, and their states agree with the server.
fn both_customers_are_intact(operator: &Operator, cluster: &Cluster) {
    let counts: i64 = crate::support::pg::Db::with_config(cluster.config("postgres"))
        .query_one(
            "SELECT (SELECT count(*) FROM pg_database WHERE datname IN ('acme_tools', 'corner_bakery'))
                  + (SELECT count(*) FROM pg_roles WHERE rolname IN
                     ('acme_boss', 'acme_api', 'acme_dev', 'acme_ro', 'corner_bakery_api', 'corner_ro'))",
            &[],
        )
        .get(0);
    assert_eq!(
        counts, 8,
        "a database or user of the two customers is missing"
    );
    for customer in [ACME, CORNER] {
        let plan = operator.run_script(
            &format!("customers/{customer}-deploy.sh"),
            &[
                "--plan-only",
                "-detailed-exitcode",
                "-input=false",
                "-no-color",
            ],
            &[],
        );
        assert_eq!(
            plan.code,
            Some(0),
            "{customer}'s plan is not empty:\n{plan}"
        );
    }
}

/// Every user's DSN from the outputs has its role's powers and no other customer's; the deploy
/// scripts print none of the passwords unless asked to.
fn dsns_reach_only_their_own_customer(operator: &Operator, deploys: &[crate::support::Output; 2]) {
    let mut secrets_seen = Vec::new();
    for customer in [ACME, CORNER] {
        let dsns = operator.dsns(customer);
        let tenants = operator.output_json(customer, "tenants");
        assert_eq!(dsns.keys().collect::<Vec<_>>(), [customer]);
        let roles: BTreeMap<String, String> =
            serde_json::from_value(tenants[customer]["users"].clone()).expect("users map");
        assert_eq!(roles.len(), dsns[customer].len());
        for (user, dsn) in &dsns[customer] {
            check_powers(dsn, &roles[user]);
            secrets_seen.push(dsn_password(dsn));
        }
        let other = if customer == ACME { CORNER } else { ACME };
        let first_admin = if customer == ACME {
            "acme_boss"
        } else {
            "corner_bakery_api"
        };
        check_locked_out(&dsns[customer][first_admin], other);
        assert_eq!(
            operator.output_json(customer, "api_dsn"),
            Value::String(dsns[customer][first_admin].clone()),
            "api_dsn is not {customer}'s first admin"
        );
        if customer == ACME {
            assert_eq!(dsn_password(&dsns[ACME]["acme_boss"]), ACME_BOSS_PASSWORD);
            assert_eq!(tenants[ACME]["tenant_name"], ACME_COMPANY);
            assert_eq!(tenants[ACME]["plan"], "professional");
        } else {
            assert_eq!(
                dsn_password(&dsns[CORNER]["corner_bakery_api"]),
                CORNER_TYPED_PASSWORD
            );
            assert_eq!(tenants[CORNER]["tenant_name"], CORNER_COMPANY);
        }
    }
    for output in deploys {
        let text = output.combined();
        for secret in &secrets_seen {
            assert!(
                !text.contains(secret.as_str()),
                "the deploy script printed a password:\n{output}"
            );
        }
    }
    // Host names for store-api's router mode: an apply that changes outputs only, after which
    // `terraform output -json store_api_tenants` is the TENANTS_FILE as store-api reads it.
    assert_eq!(
        operator.output_json(CORNER, "store_api_tenants"),
        serde_json::json!({}),
        "a customer without hosts is in the router's file"
    );
    let with_hosts = operator.terraform(
        ACME,
        &[
            "apply",
            "-auto-approve",
            "-input=false",
            "-no-color",
            "-var-file=customers/acme_tools.tfvars",
            "-var-file=customers/acme_tools.secrets.tfvars",
            "-var",
            r#"hosts={acme_tools=["Shop.Acme.example.", "www.acme.example"]}"#,
        ],
    );
    assert!(
        with_hosts.success(),
        "apply with hosts failed:\n{with_hosts}"
    );
    assert!(
        with_hosts
            .stdout
            .contains("0 added, 0 changed, 0 destroyed"),
        "host names changed resources:\n{with_hosts}"
    );
    let boss_dsn = operator.dsns(ACME)[ACME]["acme_boss"].clone();
    assert_eq!(
        operator.output_json(ACME, "store_api_tenants"),
        serde_json::json!({
            "shop.acme.example": { "dsn": boss_dsn, "name": ACME_COMPANY },
            "www.acme.example": { "dsn": boss_dsn, "name": ACME_COMPANY },
        }),
        "store_api_tenants is not host => the first admin's DSN and the company"
    );

    let shown = operator.run_script(
        "customers/corner_bakery-deploy.sh",
        &[
            "--show-secrets",
            "-auto-approve",
            "-input=false",
            "-no-color",
        ],
        &[],
    );
    assert!(shown.success(), "--show-secrets failed:\n{shown}");
    let corner_api_dsn = &operator.dsns(CORNER)[CORNER]["corner_bakery_api"];
    assert!(
        shown.stdout.contains(corner_api_dsn.as_str()),
        "--show-secrets does not print api_dsn:\n{shown}"
    );
}

/// Every customer's compose file runs store-api for that customer on a host port of its own.
fn compose_ports_are_unique(operator: &Operator) {
    let mut ports = Vec::new();
    for (customer, company) in [
        ("building_shop", "Building Shop Inc."),
        ("hardware_store", "Hardware Store & Co."),
        (ACME, ACME_COMPANY),
        (CORNER, CORNER_COMPANY),
    ] {
        let path = operator.customer_file(&format!("{customer}-docker-compose.yml"));
        ports.push(check_compose(&path, &operator.tree(), company));
    }
    assert_eq!(
        ports,
        [4001, 4002, 4003, 4004],
        "host ports are not unique per customer"
    );
}
#[test]
fn customers_with_terraform_1_11() {
    crate::support::with_terraform(Terraform::v1_11, "1.11", two_customers);
}

#[test]
fn customers_with_terraform_1_0() {
    crate::support::with_terraform(Terraform::v1_0, "1.0.3", two_customers);
}

/// Runs add-customer.sh in a scratch copy of examples/tenants, with no terminal.
fn add_customer(example: &Path, args: &[&str]) -> crate::support::Output {
    let mut command = Command::new(example.join("add-customer.sh"));
    command
        .args(args)
        .current_dir(example)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "USUALSTORE_PROVIDER",
            env!("CARGO_BIN_EXE_terraform-provider-usualstore"),
        );
    run_with_timeout(command, Duration::from_secs(60))
}

#[test]
fn customer_scripts_and_committed_examples() {
    let repo = repo_root();
    let example = repo.join("examples/tenants");
    let scratch = tempfile::Builder::new()
        .prefix("customers-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("scratch directory");
    copy_dir(
        &repo.join("modules/tenant"),
        &scratch.path().join("modules/tenant"),
    );
    let copy = scratch.path().join("examples/tenants");
    copy_dir(&example, &copy);

    // shellcheck-clean scripts.
    let mut scripts: Vec<PathBuf> = vec![
        example.join("add-customer.sh"),
        example.join("deploy.sh"),
        example.join("fleet.sh"),
        example.join("lib/customer.sh"),
        repo.join("bench/fleet.sh"),
        repo.join("bench/lib.sh"),
        repo.join("bench/run.sh"),
        repo.join("scripts/ensure-customer-tools.sh"),
    ];
    for (customer, _) in EXAMPLE_CUSTOMERS {
        scripts.push(example.join(format!("customers/{customer}-deploy.sh")));
    }
    shellcheck(&scripts);

    // The committed example customers are exactly what the script writes.
    for (customer, args) in EXAMPLE_CUSTOMERS {
        let mut all = vec!["--non-interactive", "--force"];
        all.extend_from_slice(args);
        let output = add_customer(&copy, &all);
        assert!(output.success(), "add-customer.sh {customer}:\n{output}");
        for suffix in [".tfvars", "-deploy.sh", "-docker-compose.yml"] {
            let name = format!("customers/{customer}{suffix}");
            assert_eq!(
                read(&copy.join(&name)),
                read(&example.join(&name)),
                "examples/tenants/{name} is not what add-customer.sh writes; regenerate it"
            );
        }
        assert_eq!(
            mode(&example.join(format!("customers/{customer}-deploy.sh"))),
            0o755
        );
        assert!(
            !copy
                .join(format!("customers/{customer}.secrets.tfvars"))
                .exists()
        );
    }
    assert_eq!(
        check_compose(
            &example.join("customers/building_shop-docker-compose.yml"),
            &repo,
            "Building Shop Inc."
        ),
        4001
    );
    assert_eq!(
        check_compose(
            &example.join("customers/hardware_store-docker-compose.yml"),
            &repo,
            "Hardware Store & Co."
        ),
        4002
    );

    // Refusals without a terminal name the bad value and write nothing.
    for (args, needle) in [
        (
            &[
                "--company",
                "X",
                "--database",
                "Bad-Name",
                "--admin",
                "x_ops",
            ][..],
            "--database: database_name: name must start with a lowercase letter or underscore, got \"Bad-Name\"",
        ),
        (
            &[
                "--company",
                "X",
                "--database",
                "new_shop",
                "--admin",
                "Bad Admin",
            ][..],
            "--admin 'Bad Admin': username: name must start with a lowercase letter or underscore, got \"Bad Admin\"",
        ),
        // The provider's own rules, through its binary: a pg_ name PostgreSQL reserves, and a
        // name that would squat a future tenant's owner role.
        (
            &[
                "--company",
                "X",
                "--database",
                "new_shop",
                "--admin",
                "pg_reader",
            ][..],
            "--admin 'pg_reader': username: names starting with \"pg_\" are reserved by PostgreSQL",
        ),
        (
            &[
                "--company",
                "X",
                "--database",
                "new_shop",
                "--admin",
                "future_shop_owner",
            ][..],
            "--admin 'future_shop_owner': username: \"future_shop_owner\" ends with \"_owner\"",
        ),
        (
            &[
                "--company",
                "X",
                "--database",
                "new_shop",
                "--admin",
                "building_ops",
            ][..],
            "username 'building_ops' is taken by customer 'building_shop'",
        ),
        (
            &[
                "--company",
                "X",
                "--database",
                "new_shop",
                "--plan",
                "gold",
                "--admin",
                "a_ops",
            ][..],
            "--plan: plan: unknown plan \"gold\"; allowed values are: free, starter, professional, enterprise",
        ),
        (
            &["--company", "X", "--database", "new_shop"][..],
            "no admin given",
        ),
        (
            &["--database", "new_shop", "--admin", "a_ops"][..],
            "no company name given",
        ),
        (
            &[
                "--company",
                "X",
                "--database",
                "building_shop",
                "--admin",
                "a_ops",
            ][..],
            "customer 'building_shop' exists already",
        ),
        (
            &[
                "--company",
                "X",
                "--database",
                "new_shop",
                "--admin",
                "a_ops",
                "--api-port",
                "4002",
            ][..],
            "port 4002 is published by another customer's store-api already",
        ),
    ] {
        let mut all = vec!["--non-interactive"];
        all.extend_from_slice(args);
        let output = add_customer(&copy, &all);
        assert_eq!(
            output.code,
            Some(2),
            "add-customer.sh {all:?} did not refuse:\n{output}"
        );
        assert!(
            output.stderr.contains(needle),
            "add-customer.sh {all:?}: expected {needle:?}:\n{output}"
        );
        assert!(!copy.join("customers/new_shop.tfvars").exists());
    }

    // Git keeps passwords and states out, and the customer files in.
    for (path, ignored) in [
        ("examples/tenants/customers/any.secrets.tfvars", true),
        (
            "examples/tenants/terraform.tfstate.d/any/terraform.tfstate",
            true,
        ),
        ("examples/tenants/.terraform/modules/modules.json", true),
        ("examples/tenants/customers/any.tfvars", false),
        ("examples/tenants/customers/any-docker-compose.yml", false),
        ("examples/tenants/customers/any-deploy.sh", false),
    ] {
        let mut command = Command::new("git");
        command
            .args(["check-ignore", "--quiet", "--no-index", path])
            .current_dir(&repo);
        let output = run_with_timeout(command, Duration::from_secs(30));
        assert_eq!(
            output.code,
            Some(if ignored { 0 } else { 1 }),
            "git check-ignore {path}: expected ignored={ignored}:\n{output}"
        );
    }

    // terraform fmt, with whichever Terraform is here.
    match Terraform::all().first() {
        Some(terraform) => {
            for dir in ["modules/tenant", "examples/tenants"] {
                let mut command = Command::new(&terraform.bin);
                command
                    .args(["fmt", "-check", "-diff", "-recursive"])
                    .arg(scratch.path().join(dir))
                    .env("CHECKPOINT_DISABLE", "1");
                let output = run_with_timeout(command, Duration::from_secs(60));
                assert!(
                    output.success(),
                    "{dir} is not terraform fmt-clean:\n{output}"
                );
            }
        }
        None => loud_note("no Terraform here: terraform fmt of the module and example SKIPPED"),
    }
}
