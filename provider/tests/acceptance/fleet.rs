//! `examples/tenants/fleet.sh`, the fleet-wide plan and rollout, with the real Terraform 1.11.x and
//! 1.0.3 against a PostgreSQL server of the test's own, one named step at a time: three customers
//! written by add-customer.sh, one of them with a broken configuration; `plan` reports all three and
//! exits 1; `apply --canary 1 --max-failures 1` applies the canary, stops at the broken one and does
//! not attempt the third; once fixed, a second `apply` finishes the rest (the canary skipped as
//! converged) and `plan` exits 0. A connection limit changed on the server shows as drift. Then a rollout of one new migration (the test hook standing in for
//! a provider release): `plan` shows schema version N -> N+1 for everyone and exits 2, `apply
//! --from-plan` applies exactly those saved plans, and applying them a second time is refused as
//! stale. Ctrl-C during an apply lets the running customer finish and starts no other; the next
//! Ctrl-Cs reach the running terraform (a graceful stop, then an exit at once), and fleet.sh still
//! ends with its summary and leaves nothing locked; a second fleet run while one holds the lock is
//! refused; bad input is named; and no password or DSN appears in any
//! log or summary of any run.
//!
//! A second scenario keeps the customers' states in Terraform's `pg` backend (a database of the
//! test's cluster, PG_CONN_STR), where fleet.sh cannot read state files and asks Terraform instead:
//! plan, apply, drift and a rollout report the same statuses and facts, the backend's state lock is
//! waited for, then refused, and released, and the conn_str's password appears nowhere.

use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use usualstore_testpg::Cluster;

use crate::customers_support::{Operator, dsn_password, read};
use crate::support::Output;
use crate::support::Terraform;
use crate::support::pg::Db;
use crate::support::process::{default_timeout, run_with_timeout};
use crate::support::terraform::loud_note;

/// In name order, which is fleet.sh's order: the canary, the broken one, the one after it.
const CANARY: &str = "anchor_shop";
const BROKEN: &str = "broken_shop";
const THIRD: &str = "corner_shop";
const CUSTOMERS: [&str; 3] = [CANARY, BROKEN, THIRD];
/// anchor_shop's admin has a chosen password, so its secrets file must reach every plan.
const CHOSEN_PASSWORD: &str = "Fleet 'chosen' $pass \\ word";
/// How long the held migration sleeps: far longer than fleet.sh may take to end after the last Ctrl-C.
const HELD_MIGRATION_SECS: u64 = 30;
/// The pg backend's database and its owner, the role in PG_CONN_STR.
const BACKEND_DATABASE: &str = "terraform_backend";
const BACKEND_ROLE: &str = "terraform_backend";
/// Letters and digits only, so that it goes into the conn_str URL as it is.
const BACKEND_PASSWORD: &str = "BackendConnStr0nlyPassw0rd";

/// The summary of one fleet.sh run, from `--json` (stdout) and its exit status.
struct Run {
    output: Output,
    summary: Value,
}

impl Run {
    fn status_of(&self, customer: &str) -> String {
        self.customer(customer)["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn customer(&self, customer: &str) -> &Value {
        self.summary["customers"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["customer"] == customer))
            .unwrap_or_else(|| panic!("{customer} is not in the summary:\n{}", self.output))
    }

    fn statuses(&self) -> Vec<(String, String)> {
        CUSTOMERS
            .iter()
            .map(|c| (c.to_string(), self.status_of(c)))
            .collect()
    }

    fn dir(&self) -> PathBuf {
        PathBuf::from(self.summary["run"].as_str().unwrap_or_default())
    }

    /// A plan that exited 0 with nothing to do for any customer: each at `version` before and
    /// after, and no drift.
    fn assert_all_settled_at(&self, version: &str) {
        assert_eq!(self.output.code, Some(0), "{}", self.output);
        assert_eq!(
            self.statuses(),
            statuses(["no changes", "no changes", "no changes"])
        );
        for customer in CUSTOMERS {
            let row = self.customer(customer);
            assert_eq!(
                (
                    row["schema_before"].as_str(),
                    row["schema_after"].as_str(),
                    &row["drift"]
                ),
                (Some(version), Some(version), &Value::from(0)),
                "{customer}:\n{}",
                self.output
            );
        }
    }
}

fn statuses(expected: [&str; 3]) -> Vec<(String, String)> {
    CUSTOMERS
        .iter()
        .zip(expected)
        .map(|(c, s)| (c.to_string(), s.to_owned()))
        .collect()
}

struct Fleet {
    cluster: Cluster,
    operator: Operator,
    /// USUALSTORE_TEST_EXTRA_MIGRATIONS for every later fleet.sh run, once the rollout step set it.
    extra_migrations: Option<PathBuf>,
    /// Every fleet.sh output, for the secrets check at the end.
    outputs: Vec<Output>,
    /// PG_CONN_STR, when the states are in the pg backend: a secret like the others.
    backend_conn_str: Option<String>,
}

impl Fleet {
    /// Three customers written by add-customer.sh (the committed example customers removed), the
    /// second made invalid: a plan the provider refuses.
    fn three_customers_one_broken(terraform: &Terraform) -> Fleet {
        let fleet = Fleet::three_customers(terraform);
        fleet.set_plan(BROKEN, "gold");
        fleet
    }

    /// Three valid customers whose states live in Terraform's `pg` backend, in a database of the
    /// test's cluster owned by a role of its own, as an operator's remote backend would be: a
    /// `backend "pg" {}` block in the copy of examples/tenants, and PG_CONN_STR (with that role's
    /// password) in every command's environment.
    fn three_customers_in_pg_backend(terraform: &Terraform) -> Fleet {
        let mut fleet = Fleet::three_customers(terraform);
        let server = Db::with_config(fleet.cluster.config("postgres"));
        server.batch(&format!(
            "CREATE ROLE {BACKEND_ROLE} LOGIN PASSWORD '{BACKEND_PASSWORD}'"
        ));
        // Not in the same batch: CREATE DATABASE refuses to run inside a transaction block.
        server.batch(&format!(
            "CREATE DATABASE {BACKEND_DATABASE} OWNER {BACKEND_ROLE}"
        ));
        fs::write(
            fleet.operator.example().join("backend.tf"),
            "# The customers' states in PostgreSQL; the connection from PG_CONN_STR.\n\
             terraform {\n  backend \"pg\" {}\n}\n",
        )
        .expect("write backend.tf");
        let conn_str = format!(
            "postgres://{BACKEND_ROLE}:{BACKEND_PASSWORD}@{}:{}/{BACKEND_DATABASE}?sslmode=disable",
            fleet.cluster.host(),
            fleet.cluster.port()
        );
        fleet.operator.add_env("PG_CONN_STR", conn_str.clone());
        if fleet.operator.terraform_version().starts_with("1.0.") {
            // Terraform 1.0.3's pg backend does not read PG_CONN_STR: the operator initialises the
            // directory once with the conn_str (Terraform keeps it in .terraform/), and fleet.sh
            // finds the directory initialised.
            let init = fleet.operator.terraform_at(
                &fleet.operator.example(),
                None,
                &[
                    "init",
                    "-input=false",
                    "-no-color",
                    &format!("-backend-config=conn_str={conn_str}"),
                ],
            );
            // Its stderr only: the command line holds the conn_str.
            assert!(
                init.success(),
                "terraform init with the pg backend:\n{}",
                init.stderr
            );
        }
        fleet.backend_conn_str = Some(conn_str);
        fleet
    }

    fn three_customers(terraform: &Terraform) -> Fleet {
        let cluster = Cluster::start().expect("a PostgreSQL server of this test's own");
        let operator = Operator::new(terraform, cluster.pg_env());
        let customers_dir = operator.example().join("customers");
        for entry in fs::read_dir(&customers_dir).expect("customers/") {
            let path = entry.expect("customers/ entry").path();
            fs::remove_file(&path).unwrap_or_else(|e| panic!("remove {}: {e}", path.display()));
        }
        let password_file = operator.tree().join("anchor.passwords");
        fs::write(&password_file, format!("anchor_ops={CHOSEN_PASSWORD}\n"))
            .expect("password file");
        for customer in CUSTOMERS {
            let admin = format!("{}_ops", customer.trim_end_matches("_shop"));
            let mut args = vec![
                "--non-interactive".to_owned(),
                "--company".to_owned(),
                format!("Company {customer}"),
                "--database".to_owned(),
                customer.to_owned(),
                "--admin".to_owned(),
                admin,
            ];
            if customer == CANARY {
                args.push("--password-file".to_owned());
                args.push(password_file.display().to_string());
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let added = operator.run_script("add-customer.sh", &args, &[]);
            assert!(added.success(), "add-customer.sh {customer}:\n{added}");
        }
        Fleet {
            cluster,
            operator,
            extra_migrations: None,
            outputs: Vec::new(),
            backend_conn_str: None,
        }
    }

    fn tfvars(&self, customer: &str) -> PathBuf {
        self.operator.customer_file(&format!("{customer}.tfvars"))
    }

    /// Sets the customer's plan in its .tfvars (add-customer.sh wrote "starter").
    fn set_plan(&self, customer: &str, plan: &str) {
        let path = self.tfvars(customer);
        let text = read(&path);
        let line = text
            .lines()
            .find(|line| line.trim_start().starts_with("plan "))
            .unwrap_or_else(|| panic!("{} has no plan line:\n{text}", path.display()))
            .to_owned();
        let indent = &line[..line.len() - line.trim_start().len()];
        let text = text.replace(&line, &format!("{indent}plan                = \"{plan}\""));
        fs::write(&path, text).expect("write the tfvars");
    }

    fn env(&self) -> Vec<(String, String)> {
        let mut env = self.operator.env().to_vec();
        if let Some(dir) = &self.extra_migrations {
            env.push((
                usualstore_schema::EXTRA_MIGRATIONS_ENV.to_owned(),
                dir.display().to_string(),
            ));
        }
        env
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(self.operator.example())
            .env_clear()
            .envs(self.env());
        command
    }

    /// `fleet.sh ARGS --json`, whatever its exit status.
    fn fleet(&mut self, args: &[&str]) -> Run {
        self.fleet_with_env(args, &[])
    }

    /// `sql` as the next release's migration (the embedded ones plus one), through the test hook
    /// every later command of the scenario runs with; returns the embedded latest version.
    fn next_release_migration(&mut self, sql: &str) -> i32 {
        crate::support::require_test_hooks();
        let current = usualstore_schema::latest_version();
        let dir = self.operator.tree().join("next-release-migrations");
        fs::create_dir_all(&dir).expect("migrations directory");
        fs::write(
            dir.join(format!("{:04}_fleet_rollout.sql", current + 1)),
            sql,
        )
        .expect("write the migration");
        self.extra_migrations = Some(dir);
        current
    }

    /// `fleet.sh apply --parallel 3`, which must succeed with these statuses, customer by customer.
    fn apply_all_expecting(&mut self, expected: [&str; 3]) -> Run {
        let apply = self.fleet(&["apply", "--parallel", "3"]);
        assert_eq!(apply.output.code, Some(0), "{}", apply.output);
        assert_eq!(apply.statuses(), statuses(expected));
        apply
    }

    /// `fleet.sh ARGS --json` with EXTRA in its environment, whatever its exit status.
    fn fleet_with_env(&mut self, args: &[&str], extra: &[(&str, &str)]) -> Run {
        let mut all = args.to_vec();
        all.push("--json");
        let mut command = self.command("./fleet.sh", &all);
        command.envs(extra.iter().copied());
        let output = run_with_timeout(command, default_timeout());
        assert!(!output.timed_out, "fleet.sh hung:\n{output}");
        self.run(output)
    }

    fn run(&mut self, output: Output) -> Run {
        let summary: Value = serde_json::from_str(&output.stdout)
            .unwrap_or_else(|e| panic!("fleet.sh --json printed no JSON ({e}):\n{output}"));
        self.outputs.push(output.clone());
        Run { output, summary }
    }

    fn database_exists(&self, name: &str) -> bool {
        Db::with_config(self.cluster.config("postgres"))
            .query_one(
                "SELECT count(*) FROM pg_catalog.pg_database WHERE datname = $1",
                &[&name],
            )
            .get::<_, i64>(0)
            == 1
    }

    fn schema_version(&self, database: &str) -> i32 {
        Db::with_config(self.cluster.config(database))
            .query_one(
                "SELECT max(version) FROM public.usualstore_schema_migrations",
                &[],
            )
            .get(0)
    }

    // --- the steps --------------------------------------------------------------------------

    fn plan_reports_all_three_and_exits_1(&mut self) {
        let plan = self.fleet(&["plan"]);
        assert_eq!(
            plan.output.code,
            Some(1),
            "plan with a broken customer:\n{}",
            plan.output
        );
        assert_eq!(plan.statuses(), statuses(["changes", "error", "changes"]));
        let canary = plan.customer(CANARY);
        assert_eq!(
            (
                &canary["add"],
                &canary["change"],
                &canary["destroy"],
                &canary["drift"]
            ),
            (
                &Value::from(2),
                &Value::from(0),
                &Value::from(0),
                &Value::from(0)
            ),
            "a new customer: its tenant and one user to add"
        );
        assert_eq!(canary["schema_before"], "-");
        assert_eq!(
            canary["schema_after"],
            usualstore_schema::latest_version().to_string()
        );
        let error = plan.customer(BROKEN)["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with("Error: ") && error.contains("unknown plan \"gold\""),
            "the broken customer's error lines: {error:?}\n{}",
            plan.output
        );
        // The table, on stderr with --json: every customer, its workspace and the error.
        for needle in [CANARY, BROKEN, THIRD, "WORKSPACE", "unknown plan \"gold\""] {
            assert!(
                plan.output.stderr.contains(needle),
                "{needle:?} is not in the table:\n{}",
                plan.output
            );
        }
        for customer in CUSTOMERS {
            assert!(
                plan.dir().join(customer).join("plan.log").is_file(),
                "no plan log of {customer} in {}",
                plan.dir().display()
            );
            assert!(!self.database_exists(customer), "plan created {customer}");
        }
    }

    fn canary_applies_then_the_broken_one_stops_the_rollout(&mut self) {
        let apply = self.fleet(&["apply", "--canary", "1", "--max-failures", "1"]);
        assert_eq!(apply.output.code, Some(1), "{}", apply.output);
        assert_eq!(
            apply.statuses(),
            statuses(["applied", "failed", "not attempted"])
        );
        let error = apply.customer(BROKEN)["error"].as_str().unwrap_or_default();
        assert!(error.contains("unknown plan \"gold\""), "{error:?}");
        assert!(
            apply.summary["stopped"]
                .as_str()
                .is_some_and(|why| why.contains("--max-failures 1")),
            "the summary does not say why it stopped:\n{}",
            apply.output
        );
        for needle in [
            "applied (1): anchor_shop",
            "failed (1): broken_shop",
            "not attempted (1): corner_shop",
        ] {
            assert!(
                apply.output.stderr.contains(needle),
                "{needle:?} is not in the summary:\n{}",
                apply.output
            );
        }
        assert!(self.database_exists(CANARY), "the canary was not created");
        assert!(
            !apply.dir().join(CANARY).join("plan.tfplan").exists(),
            "the applied plan (it holds passwords) was kept"
        );
        assert!(!self.database_exists(BROKEN) && !self.database_exists(THIRD));
        assert!(
            !apply.dir().join(THIRD).join("plan.log").exists(),
            "the customer after the failure was started"
        );
    }

    fn fixed_the_second_apply_finishes_the_rest(&mut self) {
        self.set_plan(BROKEN, "starter");
        let apply = self.fleet(&["apply", "--canary", "1", "--max-failures", "1"]);
        assert_eq!(apply.output.code, Some(0), "{}", apply.output);
        assert_eq!(
            apply.statuses(),
            statuses(["unchanged", "applied", "applied"])
        );
        assert!(
            !apply.dir().join(CANARY).join("apply.log").exists(),
            "the converged canary was applied again"
        );
        for customer in CUSTOMERS {
            assert!(self.database_exists(customer), "{customer} is missing");
        }
        let plan = self.fleet(&["plan", "--parallel", "3"]);
        plan.assert_all_settled_at(&usualstore_schema::latest_version().to_string());
        // The chosen password from the secrets file is the one in force.
        let dsns = self.operator.dsns(CANARY);
        assert_eq!(dsn_password(&dsns[CANARY]["anchor_ops"]), CHOSEN_PASSWORD);
    }

    /// A change made on the server behind Terraform's back shows as drift, and apply puts it back.
    fn drift_is_reported_and_repaired(&mut self) {
        Db::with_config(self.cluster.config("postgres"))
            .batch("ALTER DATABASE corner_shop CONNECTION LIMIT 7");
        let plan = self.fleet(&["plan"]);
        assert_eq!(plan.output.code, Some(2), "{}", plan.output);
        assert_eq!(
            plan.statuses(),
            statuses(["no changes", "no changes", "changes"])
        );
        let third = plan.customer(THIRD);
        assert_eq!(
            (&third["drift"], &third["change"]),
            (&Value::from(1), &Value::from(1))
        );
        let apply = self.apply_all_expecting(["unchanged", "unchanged", "applied"]);
        // Read from the plan's text this time (no terraform show): the same figures.
        let third = apply.customer(THIRD);
        assert_eq!(
            (&third["drift"], &third["change"], &third["add"]),
            (&Value::from(1), &Value::from(1), &Value::from(0))
        );
    }

    /// A new migration for everyone: planned, reviewed, applied from exactly those plans.
    fn rollout_applies_exactly_the_saved_plans(&mut self) {
        let current = self.next_release_migration(
            "CREATE TABLE public.fleet_rollout (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);\n",
        );

        let plan = self.fleet(&["plan"]);
        assert_eq!(plan.output.code, Some(2), "{}", plan.output);
        for customer in CUSTOMERS {
            let row = plan.customer(customer);
            assert_eq!(row["status"], "changes");
            assert_eq!(row["change"], 1, "{customer}: only the tenant changes");
            assert_eq!(
                (row["schema_before"].as_str(), row["schema_after"].as_str()),
                (
                    Some(current.to_string().as_str()),
                    Some((current + 1).to_string().as_str())
                )
            );
            assert!(plan.dir().join(customer).join("plan.tfplan").is_file());
        }
        let plan_run = plan.dir();
        let run_name = plan_run
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();

        let apply = self.fleet(&["apply", "--from-plan", &run_name, "--parallel", "3"]);
        assert_eq!(apply.output.code, Some(0), "{}", apply.output);
        assert_eq!(
            apply.statuses(),
            statuses(["applied", "applied", "applied"])
        );
        for customer in CUSTOMERS {
            assert_eq!(self.schema_version(customer), current + 1, "{customer}");
            assert!(
                !apply.dir().join(customer).join("plan.log").exists(),
                "--from-plan planned {customer} again"
            );
        }
        // The same plans again: the states moved on, Terraform refuses them, nothing else starts.
        let again = self.fleet(&["apply", "--from-plan", &plan_run.display().to_string()]);
        assert_eq!(again.output.code, Some(1), "{}", again.output);
        assert_eq!(
            again.statuses(),
            statuses(["failed", "not attempted", "not attempted"])
        );
        let error = again.customer(CANARY)["error"].as_str().unwrap_or_default();
        assert!(error.contains("Saved plan is stale"), "{error:?}");
        let plan = self.fleet(&["plan"]);
        assert_eq!(plan.output.code, Some(0), "{}", plan.output);
    }

    /// Ctrl-C on the terminal (SIGINT to fleet.sh's process group) while the first customer's slow
    /// migration runs: it finishes, nobody else starts.
    fn ctrl_c_lets_the_running_one_finish_and_starts_no_other(&mut self) {
        let dir = self
            .extra_migrations
            .clone()
            .expect("the rollout step set the migrations directory");
        let next = usualstore_schema::latest_version() + 2;
        fs::write(
            dir.join(format!("{next:04}_slow.sql")),
            "SELECT pg_sleep(3);\nCREATE TABLE public.fleet_slow (id bigint);\n",
        )
        .expect("write the migration");
        let fleet = Interruptible::start(
            self.command("./fleet.sh", &["apply", "--json"]),
            "fleet.sh apply --json (Ctrl-C)",
        );
        // Wait until the canary's migration is running on the server.
        self.wait_for_migration_sleeping(CANARY);
        fleet.ctrl_c();
        let output = fleet.finish(default_timeout());
        let run = self.run(output);
        assert_eq!(run.output.code, Some(1), "{}", run.output);
        assert_eq!(
            run.statuses(),
            statuses(["applied", "not attempted", "not attempted"])
        );
        assert_eq!(run.summary["stopped"], "interrupted by a signal");
        assert!(
            run.output
                .stderr
                .contains("stopping: no new customer starts")
        );
        assert_eq!(self.schema_version(CANARY), next);
        assert_eq!(self.schema_version(THIRD), next - 1);
        // Re-running continues with the other two.
        let rest = self.fleet(&["apply", "--parallel", "2"]);
        assert_eq!(rest.output.code, Some(0), "{}", rest.output);
        assert_eq!(
            rest.statuses(),
            statuses(["unchanged", "applied", "applied"])
        );
        for customer in [BROKEN, THIRD] {
            let row = rest.customer(customer);
            assert_eq!(
                (row["schema_before"].as_str(), row["schema_after"].as_str()),
                (
                    Some((next - 1).to_string().as_str()),
                    Some(next.to_string().as_str())
                ),
                "{customer}: the versions of the state before and after the apply"
            );
        }
    }

    /// Whether a session in DATABASE other than this test's sleeps in pg_sleep (a slow migration).
    fn migration_sleeping(&self, database: &str) -> bool {
        Db::with_config(self.cluster.config("postgres"))
            .query_one(
                "SELECT count(*) FROM pg_catalog.pg_stat_activity \
                 WHERE datname = $1 AND wait_event = 'PgSleep' \
                 AND pid <> pg_catalog.pg_backend_pid()",
                &[&database],
            )
            .get::<_, i64>(0)
            > 0
    }

    fn wait_for_migration_sleeping(&self, database: &str) {
        wait_until(
            Duration::from_secs(60),
            || self.migration_sleeping(database),
            || format!("no slow migration started in {database}"),
        );
    }

    /// Ctrl-C three times while the canary's migration runs, as a terminal would send it to fleet.sh:
    /// the first stops new starts; the second is passed on to the running terraform, whose graceful
    /// stop lets the provider finish the database change in flight; the third is passed on too, and
    /// Terraform, interrupted twice, exits at once. fleet.sh still ends with its summary, the state is
    /// not left locked, and the next runs converge every customer.
    fn further_ctrl_c_are_passed_on_to_the_running_terraform(&mut self) {
        let dir = self
            .extra_migrations
            .clone()
            .expect("the rollout step set the migrations directory");
        let before = usualstore_schema::latest_version() + 2;
        let held = before + 1;
        // Far longer than the bounds below, but only while the marker table exists, so that the runs
        // after this step, which apply the same migration, are not slowed.
        fs::write(
            dir.join(format!("{held:04}_held.sql")),
            format!(
                "SELECT pg_catalog.pg_sleep(CASE WHEN pg_catalog.to_regclass('public.fleet_hold') \
                 IS NULL THEN 0 ELSE {HELD_MIGRATION_SECS} END);\n\
                 CREATE TABLE public.fleet_held (id bigint);\n"
            ),
        )
        .expect("write the migration");
        let canary = Db::with_config(self.cluster.config(CANARY));
        canary.batch("CREATE TABLE public.fleet_hold ()");

        let mut fleet = Interruptible::start(
            self.command("./fleet.sh", &["apply", "--json"]),
            "fleet.sh apply --json (Ctrl-C three times)",
        );
        self.wait_for_migration_sleeping(CANARY);
        let migration_started = Instant::now();
        let apply_log = fleet.run_dir().join(CANARY).join("apply.log");
        let message_bound = Duration::from_secs(10);

        fleet.ctrl_c();
        fleet.wait_for_message("stopping: no new customer starts", message_bound);

        fleet.ctrl_c();
        fleet.wait_for_message(
            "interrupting the 1 running terraform command(s)",
            message_bound,
        );
        wait_for_log(&apply_log, "Interrupt received", message_bound);
        // Terraform stops gracefully: the provider finishes the operation in flight (StopProvider
        // starts nothing new and cuts nothing short), so the migration is still running.
        assert!(
            self.migration_sleeping(CANARY),
            "the migration in flight was cut short by the first interrupt Terraform got"
        );
        assert!(
            fleet.running(),
            "fleet.sh exited on the second Ctrl-C instead of waiting for terraform:\n{}",
            fleet.stderr()
        );

        fleet.ctrl_c();
        fleet.wait_for_message("Terraform exits at once", message_bound);
        wait_for_log(&apply_log, "Two interrupts received", message_bound);
        let output = fleet.finish(message_bound);
        assert!(
            migration_started.elapsed() < Duration::from_secs(HELD_MIGRATION_SECS) - message_bound,
            "fleet.sh waited for the migration ({:.1?} since it started):\n{output}",
            migration_started.elapsed()
        );
        let run = self.run(output);
        assert_eq!(run.output.code, Some(1), "{}", run.output);
        assert_eq!(
            run.statuses(),
            statuses(["failed", "not attempted", "not attempted"])
        );
        assert_eq!(run.summary["stopped"], "interrupted by a signal");
        for needle in [
            "failed (1): anchor_shop",
            "not attempted (2): broken_shop corner_shop",
        ] {
            assert!(
                run.output.stderr.contains(needle),
                "{needle:?} is not in the summary:\n{}",
                run.output
            );
        }

        // The server runs the abandoned session's sleep to its end, then finds its client gone
        // and rolls the migration back.
        wait_until(
            Duration::from_secs(HELD_MIGRATION_SECS + 30),
            || !self.migration_sleeping(CANARY),
            || "the interrupted migration's session never ended".to_owned(),
        );
        assert_eq!(
            self.schema_version(CANARY),
            before,
            "the migration Terraform abandoned was committed"
        );

        // Not left locked: a plan reads every state, and with the marker gone an apply converges all.
        canary.batch("DROP TABLE public.fleet_hold");
        let plan = self.fleet(&["plan", "--parallel", "3"]);
        assert_eq!(plan.output.code, Some(2), "{}", plan.output);
        for customer in CUSTOMERS {
            let row = plan.customer(customer);
            assert_eq!(
                (
                    row["status"].as_str(),
                    row["schema_before"].as_str(),
                    row["schema_after"].as_str()
                ),
                (
                    Some("changes"),
                    Some(before.to_string().as_str()),
                    Some(held.to_string().as_str())
                ),
                "{customer}:\n{}",
                plan.output
            );
        }
        self.apply_all_expecting(["applied", "applied", "applied"]);
        for customer in CUSTOMERS {
            assert_eq!(self.schema_version(customer), held, "{customer}");
        }
    }

    fn a_second_fleet_run_is_refused_and_bad_input_is_named(&mut self) {
        // flock holds the lock file while fleet.sh, inside it, tries to take it.
        let command = self.command("flock", &[".fleet.lock", "./fleet.sh", "plan"]);
        let output = run_with_timeout(command, default_timeout());
        assert_eq!(output.code, Some(1), "{output}");
        assert!(
            output.stderr.contains("another fleet run holds")
                && output.stderr.contains(".fleet.lock"),
            "{output}"
        );
        for (args, needle) in [
            (
                &["plan", "no_such_shop"][..],
                "unknown customer 'no_such_shop': no customers/no_such_shop.tfvars",
            ),
            (
                &["plan", "Bad-Name"][..],
                "'Bad-Name' is not a customer key",
            ),
            (
                &["apply", "--paralel", "2"][..],
                "unknown option '--paralel'",
            ),
            (
                &["apply", "--parallel", "0"][..],
                "--parallel needs a whole number >= 1, not '0'",
            ),
            (
                &["plan", "--canary", "1"][..],
                "--canary is an option of fleet.sh apply",
            ),
            (
                &["apply", "--from-plan", "nope"][..],
                "--from-plan: 'nope' is not a fleet run",
            ),
            (&["deploy"][..], "unknown command 'deploy'"),
        ] {
            let command = self.command("./fleet.sh", args);
            let output = run_with_timeout(command, default_timeout());
            assert_eq!(output.code, Some(1), "fleet.sh {args:?}:\n{output}");
            assert!(
                output.stderr.contains(needle),
                "fleet.sh {args:?}: expected {needle:?}:\n{output}"
            );
        }
    }

    // --- the steps with the states in the pg backend -------------------------------------------

    /// The rows of the customers' states in the pg backend (its `states` table).
    fn backend_workspaces(&self) -> Vec<String> {
        Db::with_config(self.cluster.config(BACKEND_DATABASE))
            .query(
                "SELECT name FROM terraform_remote_state.states ORDER BY name",
                &[],
            )
            .iter()
            .map(|row| row.get(0))
            .collect()
    }

    /// What the local backend's first steps show, with the states in PostgreSQL: a plan of three
    /// new customers, their apply, and a plan with nothing pending, with the same figures and
    /// versions (fleet.sh reads them through `terraform show` here, not from a state file).
    fn pg_backend_plan_and_apply_report_as_the_local_one(&mut self) {
        let latest = usualstore_schema::latest_version().to_string();
        let plan = self.fleet(&["plan", "--parallel", "3"]);
        assert_eq!(plan.output.code, Some(2), "{}", plan.output);
        assert_eq!(plan.statuses(), statuses(["changes", "changes", "changes"]));
        for customer in CUSTOMERS {
            let row = plan.customer(customer);
            assert_eq!(
                (
                    &row["add"],
                    &row["change"],
                    &row["destroy"],
                    &row["drift"],
                    row["schema_before"].as_str(),
                    row["schema_after"].as_str()
                ),
                (
                    &Value::from(2),
                    &Value::from(0),
                    &Value::from(0),
                    &Value::from(0),
                    Some("-"),
                    Some(latest.as_str())
                ),
                "{customer}: a new customer, its tenant and one user to add:\n{}",
                plan.output
            );
        }

        let apply = self.apply_all_expecting(["applied", "applied", "applied"]);
        for customer in CUSTOMERS {
            let row = apply.customer(customer);
            assert_eq!(
                (
                    &row["add"],
                    row["schema_before"].as_str(),
                    row["schema_after"].as_str()
                ),
                (&Value::from(2), Some("-"), Some(latest.as_str())),
                "{customer}:\n{}",
                apply.output
            );
            assert!(self.database_exists(customer), "{customer} is missing");
        }
        assert_eq!(
            self.backend_workspaces(),
            CUSTOMERS.map(str::to_owned),
            "the customers' states are not (all) in the pg backend"
        );
        assert!(
            !self.operator.example().join("terraform.tfstate.d").exists(),
            "a local state was written beside the pg backend"
        );

        let plan = self.fleet(&["plan"]);
        plan.assert_all_settled_at(&latest);
    }

    /// One new migration for everyone, planned and then applied by a plain apply (which plans
    /// again): both report version N -> N+1, as the local backend's rollout does.
    fn pg_backend_rollout_reports_the_versions_before_and_after(&mut self) {
        let current =
            self.next_release_migration("CREATE TABLE public.fleet_rollout (id bigint);\n");
        let before = current.to_string();
        let after = (current + 1).to_string();

        let plan = self.fleet(&["plan", "--parallel", "3"]);
        let apply = self.fleet(&["apply", "--parallel", "3"]);
        for (run, status, code) in [(&plan, "changes", 2), (&apply, "applied", 0)] {
            assert_eq!(run.output.code, Some(code), "{}", run.output);
            for customer in CUSTOMERS {
                let row = run.customer(customer);
                assert_eq!(
                    (
                        row["status"].as_str(),
                        &row["change"],
                        row["schema_before"].as_str(),
                        row["schema_after"].as_str()
                    ),
                    (
                        Some(status),
                        &Value::from(1),
                        Some(before.as_str()),
                        Some(after.as_str())
                    ),
                    "{customer}:\n{}",
                    run.output
                );
            }
        }
        for customer in CUSTOMERS {
            assert_eq!(self.schema_version(customer), current + 1, "{customer}");
        }
    }

    /// A migration that fails: the canary's apply fails and the rest are not attempted; the
    /// version after is the one in the state, which the failure left as it was (not the plan's).
    fn pg_backend_failed_apply_reports_the_version_in_the_state(&mut self) {
        let dir = self
            .extra_migrations
            .clone()
            .expect("the rollout step set the migrations directory");
        let current = usualstore_schema::latest_version() + 1;
        let failing = dir.join(format!("{:04}_fails.sql", current + 1));
        fs::write(&failing, "SELECT 1 / 0;\n").expect("write the migration");
        let apply = self.fleet(&["apply", "--max-failures", "1"]);
        assert_eq!(apply.output.code, Some(1), "{}", apply.output);
        assert_eq!(
            apply.statuses(),
            statuses(["failed", "not attempted", "not attempted"])
        );
        let canary = apply.customer(CANARY);
        assert_eq!(
            (
                canary["schema_before"].as_str(),
                canary["schema_after"].as_str()
            ),
            (
                Some(current.to_string().as_str()),
                Some(current.to_string().as_str())
            ),
            "{}",
            apply.output
        );
        assert_eq!(self.schema_version(CANARY), current);
        // Withdrawn, as a broken release would be. Terraform saved the outputs of the failed apply
        // as planned (schema_version N+1 though the tenant stayed at N), so the canary has output
        // changes to apply, nothing else; then everyone is converged again.
        fs::remove_file(&failing).expect("remove the failing migration");
        let apply = self.apply_all_expecting(["applied", "unchanged", "unchanged"]);
        let canary = apply.customer(CANARY);
        assert_eq!(
            (&canary["add"], &canary["change"], &canary["destroy"]),
            (&Value::from(0), &Value::from(0), &Value::from(0)),
            "{}",
            apply.output
        );
    }

    /// The pg backend locks a state with an advisory lock on its row: while the test holds the
    /// canary's, fleet.sh's terraform waits USUALSTORE_LOCK_TIMEOUT for it and then fails that
    /// customer alone; once the lock is let go the next plan goes through, and no fleet run leaves
    /// a lock behind.
    fn pg_backend_state_lock_is_honoured_and_released(&mut self) {
        let backend = Db::with_config(self.cluster.config(BACKEND_DATABASE));
        let held: bool = backend
            .query_one(
                "SELECT pg_catalog.pg_try_advisory_lock(id) \
                 FROM terraform_remote_state.states WHERE name = $1",
                &[&CANARY],
            )
            .get(0);
        assert!(
            held,
            "the canary's state was locked before the test took its lock"
        );
        let lock_timeout_secs = 3;
        let lock_timeout = format!("{lock_timeout_secs}s");
        let plan = self.fleet_with_env(
            &["plan", "--parallel", "3"],
            &[("USUALSTORE_LOCK_TIMEOUT", lock_timeout.as_str())],
        );
        assert_eq!(plan.output.code, Some(1), "{}", plan.output);
        assert_eq!(
            plan.statuses(),
            statuses(["error", "no changes", "no changes"])
        );
        let canary = plan.customer(CANARY);
        let error = canary["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("Error acquiring the state lock"),
            "{error:?}\n{}",
            plan.output
        );
        assert!(
            canary["seconds"].as_f64().unwrap_or_default() >= f64::from(lock_timeout_secs),
            "the canary's plan did not wait {lock_timeout} for the lock:\n{}",
            plan.output
        );

        let released: bool = backend
            .query_one(
                "SELECT pg_catalog.pg_advisory_unlock(id) \
                 FROM terraform_remote_state.states WHERE name = $1",
                &[&CANARY],
            )
            .get(0);
        assert!(released);
        let plan = self.fleet(&["plan", "--parallel", "3"]);
        assert_eq!(plan.output.code, Some(0), "{}", plan.output);
        // Terraform's sessions are gone once fleet.sh ended, and with them any lock they held;
        // count what is still held on the backend's database, by anyone.
        let locks: i64 = backend
            .query_one(
                "SELECT count(*) FROM pg_catalog.pg_locks l \
                 JOIN pg_catalog.pg_database d ON d.oid = l.database \
                 WHERE l.locktype = 'advisory' AND d.datname = $1",
                &[&BACKEND_DATABASE],
            )
            .get(0);
        assert_eq!(locks, 0, "a state lock was left in the pg backend");
    }

    /// No password or DSN in anything fleet.sh printed or wrote, saved plans aside (Terraform's
    /// plan files hold the configuration's values; the run directory is private for that reason).
    fn no_secret_in_any_log_or_summary(&self) {
        let mut secrets = vec![
            CHOSEN_PASSWORD.to_owned(),
            self.cluster.superuser_password().to_owned(),
        ];
        if let Some(conn_str) = &self.backend_conn_str {
            secrets.push(BACKEND_PASSWORD.to_owned());
            secrets.push(conn_str.clone());
        }
        for customer in CUSTOMERS {
            for (_, dsn) in self
                .operator
                .dsns(customer)
                .remove(customer)
                .unwrap_or_default()
            {
                secrets.push(dsn_password(&dsn));
                secrets.push(dsn);
            }
        }
        let runs = self.operator.example().join("fleet-runs");
        let mut files = Vec::new();
        collect_files(&runs, &mut files);
        assert!(files.len() > 20, "too few files under {}", runs.display());
        let texts = files
            .iter()
            .filter(|path| path.extension().is_none_or(|ext| ext != "tfplan"))
            .map(|path| (path.display().to_string(), read(path)))
            .chain(
                self.outputs
                    .iter()
                    .map(|output| (output.command.clone(), output.combined())),
            );
        for (what, text) in texts {
            for secret in &secrets {
                assert!(!text.contains(secret.as_str()), "{what} holds a secret");
            }
        }
        let mode = fs::metadata(&runs).expect("fleet-runs").permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o077,
            0,
            "fleet-runs is readable by others"
        );
    }
}

/// A fleet.sh run in the background, in a process group of its own as a terminal's foreground job
/// is, so the test can press Ctrl-C (SIGINT to the group) and read what it says meanwhile.
struct Interruptible {
    child: Child,
    command: String,
    started: Instant,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<thread::JoinHandle<()>>,
}

impl Interruptible {
    fn start(mut command: Command, description: &str) -> Interruptible {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let started = Instant::now();
        let mut child = command.spawn().expect("start fleet.sh");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().expect("stdout"), Arc::clone(&stdout)),
            collect(child.stderr.take().expect("stderr"), Arc::clone(&stderr)),
        ];
        Interruptible {
            child,
            command: description.to_owned(),
            started,
            stdout,
            stderr,
            readers,
        }
    }

    /// Ctrl-C on the terminal: SIGINT to fleet.sh's process group (its workers have sessions of
    /// their own, so only fleet.sh itself gets it).
    fn ctrl_c(&self) {
        let kill = Command::new("kill")
            .args(["-INT", "--", &format!("-{}", self.child.id())])
            .status()
            .expect("kill");
        assert!(kill.success(), "could not signal fleet.sh's process group");
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("stderr buffer")).into_owned()
    }

    /// Waits until fleet.sh has said NEEDLE on stderr.
    fn wait_for_message(&self, needle: &str, timeout: Duration) {
        wait_until(
            timeout,
            || self.stderr().contains(needle),
            || {
                format!(
                    "fleet.sh did not say {needle:?}; it said:\n{}",
                    self.stderr()
                )
            },
        );
    }

    /// The run directory fleet.sh announced when it started ("...; run directory DIR").
    fn run_dir(&self) -> PathBuf {
        let stderr = self.stderr();
        stderr
            .lines()
            .find_map(|line| {
                line.split_once("; run directory ")
                    .map(|(_, dir)| PathBuf::from(dir))
            })
            .unwrap_or_else(|| panic!("fleet.sh did not name its run directory:\n{stderr}"))
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().expect("look at fleet.sh").is_none()
    }

    /// Waits for fleet.sh to exit, at most TIMEOUT (then the group is killed and the test fails).
    fn finish(mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait().expect("wait for fleet.sh") {
                Some(status) => break status,
                None if Instant::now() >= deadline => {
                    let _ = Command::new("kill")
                        .args(["-KILL", "--", &format!("-{}", self.child.id())])
                        .status();
                    panic!(
                        "{} did not exit within {timeout:?} ({:.1?} since it started); it said:\n{}",
                        self.command,
                        self.started.elapsed(),
                        self.stderr()
                    );
                }
                None => thread::sleep(Duration::from_millis(50)),
            }
        };
        let elapsed = self.started.elapsed();
        for reader in self.readers.drain(..) {
            reader.join().expect("pipe reader");
        }
        Output {
            command: self.command.clone(),
            code: status.code(),
            timed_out: false,
            elapsed,
            stdout: String::from_utf8_lossy(&self.stdout.lock().expect("stdout buffer"))
                .into_owned(),
            stderr: self.stderr(),
        }
    }
}

/// Appends what PIPE carries to BUFFER as it comes, until its end.
fn collect<R: Read + Send + 'static>(
    mut pipe: R,
    buffer: Arc<Mutex<Vec<u8>>>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            buffer
                .lock()
                .expect("pipe buffer")
                .extend_from_slice(&chunk[..n]);
        }
    })
}

/// Waits until the log file at PATH holds NEEDLE.
fn wait_for_log(path: &Path, needle: &str, timeout: Duration) {
    wait_until(
        timeout,
        || fs::read_to_string(path).is_ok_and(|log| log.contains(needle)),
        || {
            format!(
                "{} does not say {needle:?}:\n{}",
                path.display(),
                fs::read_to_string(path).unwrap_or_default()
            )
        },
    );
}

/// Polls CONDITION until it holds; past TIMEOUT fails with WHY's message.
fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool, why: impl Fn() -> String) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "after {timeout:?}: {}", why());
        thread::sleep(Duration::from_millis(100));
    }
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            collect_files(&path, files);
        } else {
            files.push(path);
        }
    }
}

fn fleet_rollout(terraform: &Terraform) {
    let started = Instant::now();
    let mut fleet = Fleet::three_customers_one_broken(terraform);
    let version = fleet.operator.terraform_version().to_owned();
    fleet.plan_reports_all_three_and_exits_1();
    fleet.canary_applies_then_the_broken_one_stops_the_rollout();
    fleet.fixed_the_second_apply_finishes_the_rest();
    fleet.drift_is_reported_and_repaired();
    fleet.rollout_applies_exactly_the_saved_plans();
    fleet.ctrl_c_lets_the_running_one_finish_and_starts_no_other();
    fleet.further_ctrl_c_are_passed_on_to_the_running_terraform();
    fleet.a_second_fleet_run_is_refused_and_bad_input_is_named();
    fleet.no_secret_in_any_log_or_summary();
    fleet.cluster.stop().expect("stop the server");
    loud_note(&format!(
        "fleet.sh with Terraform {version}: {:.0?}",
        started.elapsed()
    ));
}

/// The customers' states in the pg backend: the same statuses and facts as with the local state
/// files, the backend's lock honoured and released, no secret (PG_CONN_STR's password included)
/// in any output.
fn fleet_in_pg_backend(terraform: &Terraform) {
    let started = Instant::now();
    let mut fleet = Fleet::three_customers_in_pg_backend(terraform);
    let version = fleet.operator.terraform_version().to_owned();
    fleet.pg_backend_plan_and_apply_report_as_the_local_one();
    fleet.drift_is_reported_and_repaired();
    fleet.pg_backend_rollout_reports_the_versions_before_and_after();
    fleet.pg_backend_failed_apply_reports_the_version_in_the_state();
    fleet.pg_backend_state_lock_is_honoured_and_released();
    fleet.no_secret_in_any_log_or_summary();
    fleet.cluster.stop().expect("stop the server");
    loud_note(&format!(
        "fleet.sh with the pg backend, Terraform {version}: {:.0?}",
        started.elapsed()
    ));
}

#[test]
fn fleet_in_pg_backend_with_terraform_1_11() {
    crate::support::with_terraform(Terraform::v1_11, "1.11", fleet_in_pg_backend);
}

#[test]
fn fleet_in_pg_backend_with_terraform_1_0() {
    crate::support::with_terraform(Terraform::v1_0, "1.0.3", fleet_in_pg_backend);
}

#[test]
fn fleet_with_terraform_1_11() {
    crate::support::with_terraform(Terraform::v1_11, "1.11", fleet_rollout);
}

#[test]
fn fleet_with_terraform_1_0() {
    crate::support::with_terraform(Terraform::v1_0, "1.0.3", fleet_rollout);
}
