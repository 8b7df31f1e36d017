//! A throwaway Terraform working directory wired to the provider binary under test.
//!
//! Layout of the temporary directory:
//!   work/        the configuration (`main.tf`), `.terraform/`, the state
//!   plugins/     an unpacked filesystem mirror holding the provider binary
//!   home/        HOME for Terraform, so nothing of the user's leaks in
//!   terraformrc  the CLI configuration (`TF_CLI_CONFIG_FILE`)

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use super::pg;
use super::process::{Output, default_timeout, run_with_timeout};
use super::terraform::{Terraform, loud_note};

/// Registry address the tests' configurations use: `source = "usualstore/usualstore"`.
pub const PROVIDER_HOST: &str = "registry.terraform.io";
pub const PROVIDER_NAMESPACE: &str = "usualstore";
pub const PROVIDER_TYPE: &str = "usualstore";
pub const PROVIDER_VERSION: &str = env!("CARGO_PKG_VERSION");
pub const PROVIDER_BINARY: &str = env!("CARGO_BIN_EXE_terraform-provider-usualstore");

/// Host environment passed through to Terraform; everything else (TF_*, PG*, …) is dropped.
const PASSED_THROUGH_ENV: [&str; 6] =
    ["PATH", "TMPDIR", "LANG", "LC_ALL", "USER", "RUST_BACKTRACE"];

/// What `terraform plan -detailed-exitcode` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    NoChanges,
    /// The plan's stdout.
    Changes(String),
}

pub struct Workdir {
    terraform: Terraform,
    /// `None` only after `Drop` decided to keep the directory.
    root: Option<TempDir>,
    env: Vec<(String, String)>,
    timeout: Duration,
}

impl Workdir {
    /// A working directory whose commands reach the test cluster as its superuser through PG*.
    pub fn new(terraform: &Terraform, main_tf: &str) -> Workdir {
        let mut workdir = Workdir::without_cluster(terraform, main_tf);
        workdir.env.extend(pg::pg_env());
        workdir
    }

    /// A working directory with no PG* environment: for configurations that use no database
    /// or that configure the provider explicitly. Does not start the test cluster.
    pub fn without_cluster(terraform: &Terraform, main_tf: &str) -> Workdir {
        let root = tempfile::Builder::new()
            .prefix("usualstore-tf-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("create the Terraform working directory");
        for dir in ["work", "home"] {
            fs::create_dir_all(root.path().join(dir)).expect("create the working directory");
        }
        install_provider(&root.path().join("plugins"));
        write(&root.path().join("terraformrc"), &cli_config(root.path()));
        let workdir = Workdir {
            terraform: terraform.clone(),
            root: Some(root),
            env: Vec::new(),
            timeout: default_timeout(),
        };
        workdir.set_config(main_tf);
        workdir
    }

    pub fn terraform(&self) -> &Terraform {
        &self.terraform
    }

    fn root(&self) -> &Path {
        match &self.root {
            Some(root) => root.path(),
            None => unreachable!("the directory is only released on drop"),
        }
    }

    /// Where `main.tf` and the state live.
    pub fn path(&self) -> PathBuf {
        self.root().join("work")
    }

    /// The filesystem mirror the CLI configuration installs the provider from. It starts as the
    /// unpacked layout holding the binary under test; a test may lay out something else there.
    pub fn mirror_dir(&self) -> PathBuf {
        self.root().join("plugins")
    }

    /// Replaces `main.tf`.
    pub fn set_config(&self, main_tf: &str) {
        write(&self.path().join("main.tf"), main_tf);
    }

    /// Appends to the CLI configuration (`TF_CLI_CONFIG_FILE`), e.g. a `host` block.
    pub fn add_cli_config(&self, text: &str) {
        let path = self.root().join("terraformrc");
        let mut config = fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
        config.push_str(text);
        write(&path, &config);
    }

    /// Sets a variable for every later command (e.g. `TF_LOG`).
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.remove_env(key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    pub fn remove_env(&mut self, key: &str) {
        self.env.retain(|(existing, _)| existing != key);
    }

    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// `terraform ARGS…` in the working directory, whatever its exit status.
    pub fn try_run(&self, args: &[&str]) -> Output {
        self.try_run_with_env(args, &[])
    }

    /// Like `try_run`, with extra variables for this one command.
    pub fn try_run_with_env(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(&self.terraform.bin);
        command.args(args).current_dir(self.path()).env_clear();
        for name in PASSED_THROUGH_ENV {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command
            .env("HOME", self.root().join("home"))
            .env("TF_CLI_CONFIG_FILE", self.root().join("terraformrc"))
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1");
        command.envs(self.env.iter().map(|(key, value)| (key, value)));
        command.envs(extra_env.iter().copied());
        let mut output = run_with_timeout(command, self.timeout);
        output.command = format!(
            "[terraform {} in {}] {}",
            self.terraform.version,
            self.path().display(),
            output.command
        );
        assert!(
            !output.timed_out,
            "terraform hung and was killed:\n{output}"
        );
        output
    }

    /// `terraform ARGS…`, which must succeed.
    pub fn run(&self, args: &[&str]) -> Output {
        let output = self.try_run(args);
        assert!(output.success(), "terraform failed:\n{output}");
        output
    }

    /// `terraform ARGS…`, which must fail.
    pub fn run_expect_failure(&self, args: &[&str]) -> Output {
        let output = self.try_run(args);
        assert!(
            !output.success(),
            "terraform was expected to fail but succeeded:\n{output}"
        );
        output
    }

    pub fn init(&self) -> Output {
        self.run(&["init", "-no-color", "-input=false"])
    }

    pub fn apply(&self, args: &[&str]) -> Output {
        self.run(&with(
            &["apply", "-no-color", "-input=false", "-auto-approve"],
            args,
        ))
    }

    pub fn try_apply(&self, args: &[&str]) -> Output {
        self.try_run(&with(
            &["apply", "-no-color", "-input=false", "-auto-approve"],
            args,
        ))
    }

    /// `terraform plan -detailed-exitcode`: 0 no changes, 2 changes, anything else fails the test.
    pub fn plan_detailed(&self) -> Plan {
        self.plan_detailed_with(&[])
    }

    pub fn plan_detailed_with(&self, args: &[&str]) -> Plan {
        let output = self.try_plan(&with(&["-detailed-exitcode"], args));
        match output.code {
            Some(0) => Plan::NoChanges,
            Some(2) => Plan::Changes(output.stdout),
            _ => panic!("terraform plan failed:\n{output}"),
        }
    }

    /// `terraform plan ARGS…`, whatever its exit status.
    pub fn try_plan(&self, args: &[&str]) -> Output {
        self.try_run(&with(&["plan", "-no-color", "-input=false"], args))
    }

    pub fn import(&self, address: &str, id: &str) -> Output {
        self.run(&["import", "-no-color", "-input=false", address, id])
    }

    pub fn destroy(&self) -> Output {
        self.run(&["destroy", "-no-color", "-input=false", "-auto-approve"])
    }

    pub fn try_destroy(&self) -> Output {
        self.try_run(&["destroy", "-no-color", "-input=false", "-auto-approve"])
    }

    /// `terraform output -json`: every root output as `{name: {value, type, sensitive}}`.
    pub fn output_json(&self) -> Value {
        let output = self.run(&["output", "-no-color", "-json"]);
        parse_json(&output)
    }

    /// `terraform show -json` of the current state.
    pub fn show_json(&self) -> Value {
        let output = self.run(&["show", "-no-color", "-json"]);
        parse_json(&output)
    }

    /// `terraform state show ADDRESS`, as text.
    pub fn state_show(&self, address: &str) -> String {
        self.run(&["state", "show", "-no-color", address]).stdout
    }

    /// The attribute values of one root-module resource instance in the state.
    pub fn resource_values(&self, address: &str) -> Value {
        let state = self.show_json();
        let resources = state
            .pointer("/values/root_module/resources")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        resources
            .into_iter()
            .find(|resource| resource.get("address").and_then(Value::as_str) == Some(address))
            .and_then(|resource| resource.get("values").cloned())
            .unwrap_or_else(|| panic!("{address} is not in the state:\n{state:#}"))
    }

    /// A plan right now must find nothing to do.
    pub fn assert_no_changes(&self) {
        if let Plan::Changes(stdout) = self.plan_detailed() {
            panic!(
                "expected no changes (Terraform {}), but the plan proposes some:\n{stdout}",
                self.terraform.version
            );
        }
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let keep =
            std::thread::panicking() || std::env::var_os("USUALSTORE_KEEP_WORKDIRS").is_some();
        if keep && let Some(root) = self.root.take() {
            let path = root.keep();
            loud_note(&format!(
                "kept the Terraform working directory {}",
                path.display()
            ));
        }
    }
}

/// Terraform's name for this machine's platform, e.g. `linux_amd64`.
pub fn platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    format!("{}_{arch}", std::env::consts::OS)
}

fn with<'a>(head: &[&'a str], tail: &[&'a str]) -> Vec<&'a str> {
    head.iter().chain(tail).copied().collect()
}

fn parse_json(output: &Output) -> Value {
    serde_json::from_str(&output.stdout)
        .unwrap_or_else(|error| panic!("terraform printed no JSON ({error}):\n{output}"))
}

fn write(path: &Path, content: &str) {
    fs::write(path, content).unwrap_or_else(|error| panic!("write {}: {error}", path.display()));
}

/// Only our provider comes from the mirror; anything else would go to the registry as usual
/// (and fail offline, which is what a test that needs another provider should see).
fn cli_config(root: &Path) -> String {
    let pattern = format!("{PROVIDER_HOST}/{PROVIDER_NAMESPACE}/*");
    format!(
        r#"provider_installation {{
  filesystem_mirror {{
    path    = "{mirror}"
    include = ["{pattern}"]
  }}
  direct {{
    exclude = ["{pattern}"]
  }}
}}
"#,
        mirror = root.join("plugins").display(),
    )
}

/// Puts the provider binary into the unpacked mirror layout
/// `HOST/NAMESPACE/TYPE/VERSION/OS_ARCH/terraform-provider-TYPE_vVERSION`.
fn install_provider(mirror: &Path) {
    let dir = mirror
        .join(PROVIDER_HOST)
        .join(PROVIDER_NAMESPACE)
        .join(PROVIDER_TYPE)
        .join(PROVIDER_VERSION)
        .join(platform());
    fs::create_dir_all(&dir).expect("create the plugin mirror");
    let target = dir.join(format!(
        "terraform-provider-{PROVIDER_TYPE}_v{PROVIDER_VERSION}"
    ));
    // A hard link is instant when the temporary directory shares the target dir's filesystem.
    if fs::hard_link(PROVIDER_BINARY, &target).is_err() {
        fs::copy(PROVIDER_BINARY, &target).unwrap_or_else(|error| {
            panic!("copy the provider binary {PROVIDER_BINARY} to the mirror: {error}")
        });
    }
}
