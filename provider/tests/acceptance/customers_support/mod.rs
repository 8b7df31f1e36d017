//! Helpers of the customer-workflow tests (customers.rs): a copy of the repository's
//! `modules/tenant` and `examples/tenants` wired to the provider under test, a runner for the
//! operator's scripts, a tmux-driven terminal for add-customer.sh's prompts, YAML reading, and the
//! checks of what each tenant user may do through its DSN.
#![allow(dead_code)] // the two test functions use different parts

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_postgres::error::SqlState;

use crate::support::Workdir;
use crate::support::pg::block_on;
use crate::support::process::{Output, default_timeout, run_with_timeout};
use crate::support::terraform::{Terraform, repo_root};

/// Host environment the operator's commands keep; everything else is dropped.
const PASSED_THROUGH_ENV: [&str; 6] =
    ["PATH", "TMPDIR", "LANG", "LC_ALL", "USER", "RUST_BACKTRACE"];

/// Files of the example that only exist after someone used it in place.
fn skipped(name: &str) -> bool {
    name == ".terraform"
        || name == "terraform.tfstate.d"
        || name == ".terraform.lock.hcl"
        || name.ends_with(".tfstate")
        || name.contains(".tfstate.")
        || name.ends_with(".secrets.tfvars")
        || name == "fleet-runs"
        || name == ".fleet.lock"
        || name == ".terraform-init.lock"
}

/// Copies a directory tree, keeping file modes (the scripts stay executable).
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    let entries = fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("read {}: {e}", from.display()));
        let name = entry.file_name().to_string_lossy().into_owned();
        if skipped(&name) {
            continue;
        }
        let target = to.join(&name);
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        }
    }
}

pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

pub fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Installs shellcheck and tmux when missing (scripts/ensure-customer-tools.sh), once.
pub fn tools() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let mut command = Command::new("bash");
        command.arg(repo_root().join("scripts/ensure-customer-tools.sh"));
        let output = run_with_timeout(command, Duration::from_secs(600));
        assert!(
            output.success(),
            "ensure-customer-tools.sh failed:\n{output}"
        );
    });
}

/// A YAML file as JSON values.
pub fn parse_yaml(path: &Path) -> Value {
    serde_yaml_ng::from_str(&read(path))
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
}

/// shellcheck FILES, following what they source (`-x`: deploy.sh and fleet.sh source lib/customer.sh).
pub fn shellcheck(files: &[PathBuf]) {
    tools();
    let mut command = Command::new("shellcheck");
    command.arg("-x").args(files);
    let output = run_with_timeout(command, Duration::from_secs(120));
    assert!(output.success(), "shellcheck found problems:\n{output}");
}

/// A copy of `modules/tenant` and `examples/tenants` at their relative places, in a Terraform
/// working directory whose plugin mirror holds the provider under test, and the environment an
/// operator would have: Terraform, the CLI configuration, the PG* variables of the server.
pub struct Operator {
    workdir: Workdir,
    env: Vec<(String, String)>,
}

impl Operator {
    pub fn new(terraform: &Terraform, pg_env: Vec<(String, String)>) -> Operator {
        let workdir = Workdir::without_cluster(
            terraform,
            "# modules/ and examples/ beside this file are copies of the repository's.\n",
        );
        let tree = workdir.path();
        copy_dir(
            &repo_root().join("modules/tenant"),
            &tree.join("modules/tenant"),
        );
        copy_dir(
            &repo_root().join("examples/tenants"),
            &tree.join("examples/tenants"),
        );
        let root = tree
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| tree.clone());
        let mut env: Vec<(String, String)> = PASSED_THROUGH_ENV
            .iter()
            .filter_map(|name| {
                std::env::var(name)
                    .ok()
                    .map(|value| (name.to_string(), value))
            })
            .collect();
        for (key, value) in [
            ("HOME", root.join("home").display().to_string()),
            (
                "TF_CLI_CONFIG_FILE",
                root.join("terraformrc").display().to_string(),
            ),
            ("TERRAFORM", terraform.bin.display().to_string()),
            // add-customer.sh asks the provider binary under test for its rules.
            (
                "USUALSTORE_PROVIDER",
                env!("CARGO_BIN_EXE_terraform-provider-usualstore").to_owned(),
            ),
            ("CHECKPOINT_DISABLE", "1".to_owned()),
            ("TF_IN_AUTOMATION", "1".to_owned()),
        ] {
            env.push((key.to_owned(), value));
        }
        env.extend(pg_env);
        Operator { workdir, env }
    }

    pub fn terraform_version(&self) -> &str {
        &self.workdir.terraform().version
    }

    /// The root of the copy: `modules/` and `examples/` are in it.
    pub fn tree(&self) -> PathBuf {
        self.workdir.path()
    }

    /// The copy of `examples/tenants`.
    pub fn example(&self) -> PathBuf {
        self.tree().join("examples/tenants")
    }

    pub fn customer_file(&self, name: &str) -> PathBuf {
        self.example().join("customers").join(name)
    }

    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Adds KEY=VALUE to the operator's environment, for every later command (a backend's
    /// settings, say).
    pub fn add_env(&mut self, key: &str, value: String) {
        self.env.push((key.to_owned(), value));
    }

    /// Runs PROGRAM (a path relative to the example) in the example with the operator's
    /// environment plus EXTRA, no stdin, whatever its exit status.
    pub fn run_script(&self, program: &str, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut command = Command::new(self.example().join(program));
        command
            .args(args)
            .current_dir(self.example())
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .envs(extra.iter().copied());
        let output = run_with_timeout(command, default_timeout());
        assert!(!output.timed_out, "{program} hung:\n{output}");
        output
    }

    /// `terraform ARGS` in the example, in WORKSPACE (through TF_WORKSPACE), whatever its status.
    pub fn terraform(&self, workspace: &str, args: &[&str]) -> Output {
        self.terraform_at(&self.example(), Some(workspace), args)
    }

    /// `terraform ARGS` in DIR, in WORKSPACE when given, whatever its exit status.
    pub fn terraform_at(&self, dir: &Path, workspace: Option<&str>, args: &[&str]) -> Output {
        let mut command = Command::new(&self.workdir.terraform().bin);
        command
            .args(args)
            .current_dir(dir)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("TF_INPUT", "0");
        if let Some(workspace) = workspace {
            command.env("TF_WORKSPACE", workspace);
        }
        let output = run_with_timeout(command, default_timeout());
        assert!(!output.timed_out, "terraform hung:\n{output}");
        output
    }

    /// `terraform output -json NAME` of a customer's workspace.
    pub fn output_json(&self, customer: &str, name: &str) -> Value {
        let output = self.terraform(customer, &["output", "-no-color", "-json", name]);
        assert!(output.success(), "terraform output failed:\n{output}");
        serde_json::from_str(&output.stdout)
            .unwrap_or_else(|e| panic!("terraform output printed no JSON ({e}):\n{output}"))
    }

    /// dsns[<database>][<username>] of a customer.
    pub fn dsns(&self, customer: &str) -> BTreeMap<String, BTreeMap<String, String>> {
        serde_json::from_value(self.output_json(customer, "dsns"))
            .unwrap_or_else(|e| panic!("dsns of {customer} is not a map of maps of strings: {e}"))
    }
}

/// A terminal: tmux on a private socket, running one command in a 200x50 pane.
pub struct Tty {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    /// How much of the screen the test has read already.
    seen: usize,
}

impl Tty {
    /// Starts `bash SCRIPT` (which must end by printing its marker and waiting; see `spawn`).
    pub fn spawn(workdir: &Path, command_lines: &str) -> Tty {
        tools();
        // A short path: unix socket paths are limited to about 100 bytes.
        let dir = tempfile::Builder::new()
            .prefix("tty")
            .tempdir_in("/tmp")
            .expect("create the tmux directory");
        let socket = dir.path().join("s");
        let script = dir.path().join("run.sh");
        fs::write(&script, command_lines).expect("write the terminal's script");
        let mut command = Command::new("tmux");
        command
            .arg("-S")
            .arg(&socket)
            .args(["new-session", "-d", "-x", "200", "-y", "50", "bash"])
            .arg(&script)
            .current_dir(workdir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TERM", "xterm");
        let output = run_with_timeout(command, Duration::from_secs(30));
        assert!(output.success(), "tmux did not start:\n{output}");
        Tty {
            _dir: dir,
            socket,
            seen: 0,
        }
    }

    fn tmux(&self, args: &[&str]) -> Output {
        let mut command = Command::new("tmux");
        command.arg("-S").arg(&self.socket).args(args);
        run_with_timeout(command, Duration::from_secs(30))
    }

    /// Everything the pane showed so far, scrollback included, wrapped lines joined.
    pub fn screen(&self) -> String {
        let output = self.tmux(&["capture-pane", "-p", "-J", "-S", "-", "-E", "-"]);
        assert!(output.success(), "tmux capture-pane failed:\n{output}");
        output.stdout.trim_end().to_owned()
    }

    /// Waits until TEXT shows after what was read before; returns the screen from the last read.
    pub fn expect(&mut self, text: &str) -> String {
        // capture-pane drops the blanks at the end of a line, such as a prompt's last space.
        let text = text.trim_end();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            let from = self.seen.min(screen.len());
            if let Some(at) = screen.get(from..).and_then(|rest| rest.find(text)) {
                let chunk = screen[from..from + at + text.len()].to_owned();
                self.seen = from + at + text.len();
                return chunk;
            }
            assert!(
                Instant::now() < deadline,
                "the terminal never showed {text:?}; it shows:\n{screen}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types TEXT literally, then Enter.
    pub fn line(&self, text: &str) {
        if !text.is_empty() {
            let output = self.tmux(&["send-keys", "-l", "--", text]);
            assert!(output.success(), "tmux send-keys failed:\n{output}");
        }
        let output = self.tmux(&["send-keys", "Enter"]);
        assert!(output.success(), "tmux send-keys failed:\n{output}");
    }

    /// `expect(prompt)` then `line(answer)`.
    pub fn answer(&mut self, prompt: &str, answer: &str) {
        self.expect(prompt);
        self.line(answer);
    }
}

impl Drop for Tty {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// What a tenant user's DSN lets it do in its database.
pub fn check_powers(dsn: &str, role: &str) {
    let config = tokio_postgres::Config::from_str(dsn)
        .unwrap_or_else(|e| panic!("a {role}'s DSN does not parse: {e}"));
    let user = config.get_user().unwrap_or_default().to_owned();
    block_on(async move {
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("{user} ({role}) cannot connect with its DSN: {e}"));
        tokio::spawn(connection);
        let denied = |result: Result<u64, tokio_postgres::Error>, what: &str| match result {
            Err(error) if error.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {}
            other => panic!("{user} ({role}) {what}: expected permission denied, got {other:?}"),
        };
        client
            .query_one("SELECT count(*) FROM public.widgets", &[])
            .await
            .unwrap_or_else(|e| panic!("{user} ({role}) cannot read widgets: {e}"));
        let insert = client
            .execute(
                "INSERT INTO public.widgets (name, price_cents, inventory_level) VALUES ($1, 100, 1)",
                &[&format!("by {user}")],
            )
            .await;
        if role == "customer" {
            return denied(insert, "inserted a widget");
        }
        insert.unwrap_or_else(|e| panic!("{user} ({role}) cannot insert a widget: {e}"));
        client
            .execute(
                "UPDATE public.widgets SET inventory_level = 2 WHERE name = $1",
                &[&format!("by {user}")],
            )
            .await
            .unwrap_or_else(|e| panic!("{user} ({role}) cannot update a widget: {e}"));
        let delete = client
            .execute(
                "DELETE FROM public.widgets WHERE name = $1",
                &[&format!("by {user}")],
            )
            .await;
        match role {
            "admin" => {
                let deleted =
                    delete.unwrap_or_else(|e| panic!("{user} (admin) cannot delete: {e}"));
                assert_eq!(deleted, 1, "{user} (admin) deleted {deleted} rows");
            }
            _ => denied(delete, "deleted a widget"),
        }
    });
}

/// The DSN's user cannot even connect to DATABASE (another customer's).
pub fn check_locked_out(dsn: &str, database: &str) {
    let mut config = tokio_postgres::Config::from_str(dsn).expect("the DSN parses");
    config.dbname(database);
    let user = config.get_user().unwrap_or_default().to_owned();
    let result = block_on(async move { config.connect(tokio_postgres::NoTls).await.map(|_| ()) });
    match result {
        Err(error) if error.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {}
        other => {
            panic!("{user} connecting to {database}: expected permission denied, got {other:?}")
        }
    }
}

/// The password a DSN carries.
pub fn dsn_password(dsn: &str) -> String {
    let config = tokio_postgres::Config::from_str(dsn).expect("the DSN parses");
    String::from_utf8_lossy(config.get_password().unwrap_or_default()).into_owned()
}
