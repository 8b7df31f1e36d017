//! The release artefacts of `make release`, made here by the same script (`scripts/package-release.sh`)
//! from the binary under test, so packaging is tested without a second, release-profile build: the
//! registry's file layout, checksums and signature, and `terraform init` installing the zip from a
//! packed filesystem mirror on Terraform 1.11 and 1.0.3. `terraform providers lock` records `zh:`
//! hashes only from a registry (after checking the signature), so the same release is also served
//! as one (support/registry.rs) and the hashes it locks are compared with `SHA256SUMS`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::customers_support::shellcheck;
use crate::support::process::{Output, run_with_timeout};
use crate::support::registry::{Registry, RegistryRelease};
use crate::support::terraform::repo_root;
use crate::support::workdir::{
    PROVIDER_BINARY, PROVIDER_HOST, PROVIDER_NAMESPACE, PROVIDER_TYPE, PROVIDER_VERSION, platform,
};
use crate::support::{Terraform, Workdir, with_terraform};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

fn name() -> String {
    format!("terraform-provider-{PROVIDER_TYPE}")
}

/// `terraform-provider-usualstore_<version>_<suffix>`, as the registry names release files.
fn artefact(suffix: &str) -> String {
    format!("{}_{PROVIDER_VERSION}_{suffix}", name())
}

fn zip_name() -> String {
    artefact(&format!("{}.zip", platform()))
}

fn sums_name() -> String {
    artefact("SHA256SUMS")
}

fn sha256_hex(path: &Path) -> String {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    Sha256::digest(&bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn run(mut command: Command) -> Output {
    command.env("LC_ALL", "C");
    let output = run_with_timeout(command, SCRIPT_TIMEOUT);
    assert!(output.success(), "command failed:\n{output}");
    output
}

/// A directory the packaging script wrote a release of the binary under test into.
struct Release {
    dir: TempDir,
}

impl Release {
    fn package(env: &[(String, String)]) -> Release {
        let dir = tempfile::Builder::new()
            .prefix("usualstore-dist-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("create the release directory");
        let mut command = Command::new("bash");
        command
            .arg(repo_root().join("scripts/package-release.sh"))
            .arg(dir.path())
            .arg(PROVIDER_VERSION)
            .arg(format!("{}={PROVIDER_BINARY}", platform()))
            // Only a test that asks for a signature gets one, whatever the caller's environment holds.
            .env_remove("GPG_KEY_ID")
            .envs(env.iter().map(|(key, value)| (key, value)));
        run(command);
        Release { dir }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn files(&self) -> BTreeSet<String> {
        fs::read_dir(self.dir.path())
            .expect("list the release directory")
            .map(|entry| entry.expect("a directory entry").file_name())
            .map(|name| name.to_string_lossy().into_owned())
            .collect()
    }

    /// `SHA256SUMS` as file name → hex digest, checking each line's shape on the way.
    fn sums(&self) -> BTreeMap<String, String> {
        let text = fs::read_to_string(self.path(&sums_name())).expect("read SHA256SUMS");
        text.lines()
            .map(|line| {
                let (digest, file) = line
                    .split_once("  ")
                    .unwrap_or_else(|| panic!("not a `shasum -a 256` line: {line:?}"));
                assert!(
                    digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
                    "not a SHA-256 digest in {line:?}"
                );
                (file.to_owned(), digest.to_owned())
            })
            .collect()
    }
}

#[test]
fn release_artefacts_are_in_the_registry_format() {
    let release = Release::package(&[]);
    let manifest = artefact("manifest.json");
    assert_eq!(
        release.files(),
        BTreeSet::from([zip_name(), manifest.clone(), sums_name()]),
        "unexpected release files (no GPG_KEY_ID, so no signature)"
    );

    let manifest_json: Value =
        serde_json::from_str(&fs::read_to_string(release.path(&manifest)).expect("read manifest"))
            .expect("the manifest is JSON");
    assert_eq!(
        manifest_json,
        json!({"version": 1, "metadata": {"protocol_versions": ["6.0"]}})
    );

    let sums = release.sums();
    assert_eq!(
        sums.keys().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from([zip_name(), manifest.clone()]),
        "SHA256SUMS must cover every zip and the manifest"
    );
    for (file, digest) in &sums {
        assert_eq!(&sha256_hex(&release.path(file)), digest, "digest of {file}");
    }

    // One entry, the binary under its versioned name, executable once unpacked, byte for byte.
    let zip = release.path(&zip_name());
    let mut list = Command::new("unzip");
    list.arg("-Z1").arg(&zip);
    let binary = format!("{}_v{PROVIDER_VERSION}", name());
    assert_eq!(
        run(list).stdout.lines().collect::<Vec<_>>(),
        [binary.as_str()]
    );
    let unpacked =
        tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a temporary directory");
    let mut unzip = Command::new("unzip");
    unzip.arg("-q").arg(&zip).arg("-d").arg(unpacked.path());
    run(unzip);
    let unpacked_binary = unpacked.path().join(&binary);
    let mode = fs::metadata(&unpacked_binary)
        .expect("the unpacked binary")
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o111,
        0o111,
        "unpacked mode {mode:o} is not executable"
    );
    assert!(
        fs::read(&unpacked_binary).expect("read the unpacked binary")
            == fs::read(PROVIDER_BINARY).expect("read the provider binary"),
        "the zip does not hold the binary it was given"
    );

    // A lock file pins the zip's hash, so packaging the same binary again must not change it.
    let again = Release::package(&[]);
    assert_eq!(
        again.sums(),
        sums,
        "packaging the same binary twice gave different zips"
    );
}

/// A throwaway GnuPG home with one signing key, and its agent stopped at the end.
struct Gpg {
    home: TempDir,
    fingerprint: String,
}

impl Gpg {
    fn with_signing_key() -> Gpg {
        // Under /tmp: the agent's socket path must stay short.
        let home = tempfile::Builder::new()
            .prefix("usualstore-gpg-")
            .tempdir()
            .expect("create GNUPGHOME");
        let mut gpg = Gpg {
            home,
            fingerprint: String::new(),
        };
        // RSA, as the registry accepts no ECC signing key.
        gpg.run(&[
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-generate-key",
            "usualstore release test <release-test@usualstore.invalid>",
            "rsa2048",
            "sign",
            "1d",
        ]);
        let keys = gpg.run(&["--with-colons", "--list-secret-keys"]).stdout;
        gpg.fingerprint = keys
            .lines()
            .find_map(|line| line.strip_prefix("fpr:"))
            .and_then(|rest| rest.split(':').find(|field| !field.is_empty()))
            .unwrap_or_else(|| panic!("no fingerprint in:\n{keys}"))
            .to_owned();
        gpg
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("gpg");
        command
            .arg("--batch")
            .args(args)
            .env("GNUPGHOME", self.home.path());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        run(self.command(args))
    }

    /// What the packaging script needs to sign with this key.
    fn signing_env(&self) -> Vec<(String, String)> {
        vec![
            ("GPG_KEY_ID".to_owned(), self.fingerprint.clone()),
            (
                "GNUPGHOME".to_owned(),
                self.home.path().to_string_lossy().into_owned(),
            ),
        ]
    }

    /// The long key ID, as a registry announces it.
    fn key_id(&self) -> String {
        self.fingerprint[self.fingerprint.len().saturating_sub(16)..].to_owned()
    }

    fn public_key(&self) -> String {
        self.run(&["--armor", "--export", &self.fingerprint]).stdout
    }

    fn verifies(&self, signature: &Path, file: &Path) -> bool {
        let mut command = self.command(&["--verify"]);
        command.arg(signature).arg(file);
        run_with_timeout(command, SCRIPT_TIMEOUT).success()
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .args(["--kill", "gpg-agent"])
            .env("GNUPGHOME", self.home.path())
            .status();
    }
}

#[test]
fn release_checksums_are_signed_when_gpg_key_id_is_given() {
    let gpg = Gpg::with_signing_key();
    let release = Release::package(&gpg.signing_env());
    let sums = release.path(&sums_name());
    let signature = release.path(&format!("{}.sig", sums_name()));

    let bytes = fs::read(&signature).expect("the signature file");
    // An OpenPGP packet starts with its high bit set; an ASCII-armoured file starts with "-----".
    assert!(
        bytes.first().is_some_and(|first| first & 0x80 != 0),
        "the signature is not binary OpenPGP (the registry refuses armoured ones)"
    );
    assert!(
        gpg.verifies(&signature, &sums),
        "the signature does not verify"
    );

    let tampered = release.path("tampered_SHA256SUMS");
    let mut text = fs::read_to_string(&sums).expect("read SHA256SUMS");
    text.push_str(&format!("{}  extra.zip\n", "0".repeat(64)));
    fs::write(&tampered, text).expect("write the tampered copy");
    assert!(
        !gpg.verifies(&signature, &tampered),
        "the signature also verifies a changed SHA256SUMS"
    );
}

/// The hashes a lock file records for the provider under test.
fn locked_hashes(workdir: &Workdir) -> BTreeSet<String> {
    let path = workdir.path().join(".terraform.lock.hcl");
    let lock = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = format!("provider \"{PROVIDER_HOST}/{PROVIDER_NAMESPACE}/{PROVIDER_TYPE}\" {{");
    let block = lock
        .split_once(&header)
        .map(|(_, rest)| rest.split("\n}").next().unwrap_or(rest))
        .unwrap_or_else(|| panic!("no block for the provider in:\n{lock}"));
    block
        .split('"')
        .filter(|piece| piece.starts_with("h1:") || piece.starts_with("zh:"))
        .map(str::to_owned)
        .collect()
}

/// `terraform init` from a packed mirror holding only the release zip; then `terraform providers
/// lock` through a registry serving the same signed release, which must record the lines of
/// `SHA256SUMS` as `zh:` hashes and the same `h1:` hash the mirror install locked.
fn installs_from_a_packed_mirror(terraform: &Terraform) {
    let gpg = Gpg::with_signing_key();
    let release = Release::package(&gpg.signing_env());
    let config = format!(
        r#"terraform {{
  required_providers {{
    {PROVIDER_TYPE} = {{
      source  = "{PROVIDER_NAMESPACE}/{PROVIDER_TYPE}"
      version = "= {PROVIDER_VERSION}"
    }}
  }}
}}
"#
    );
    let mut workdir = Workdir::without_cluster(terraform, &config);
    // The harness's CLI configuration already points filesystem_mirror at this directory; the
    // unpacked binary it put there gives way to the packed layout `terraform providers mirror` writes.
    let mirror = workdir.mirror_dir();
    fs::remove_dir_all(&mirror).expect("empty the mirror");
    let packages = mirror
        .join(PROVIDER_HOST)
        .join(PROVIDER_NAMESPACE)
        .join(PROVIDER_TYPE);
    fs::create_dir_all(&packages).expect("create the packed mirror");
    fs::copy(release.path(&zip_name()), packages.join(zip_name())).expect("copy the zip");

    workdir.init();
    let installed = workdir
        .path()
        .join(".terraform/providers")
        .join(PROVIDER_HOST)
        .join(PROVIDER_NAMESPACE)
        .join(PROVIDER_TYPE)
        .join(PROVIDER_VERSION)
        .join(platform())
        .join(format!("{}_v{PROVIDER_VERSION}", name()));
    assert!(
        installed.is_file(),
        "init did not unpack the zip to {}",
        installed.display()
    );

    // The version Terraform reports comes from the file names the script wrote from Cargo.toml.
    let version: Value = serde_json::from_str(&workdir.run(&["version", "-json"]).stdout)
        .expect("terraform version -json");
    let selected = format!("{PROVIDER_HOST}/{PROVIDER_NAMESPACE}/{PROVIDER_TYPE}");
    assert_eq!(
        version["provider_selections"][&selected],
        json!(PROVIDER_VERSION),
        "terraform version: {version:#}"
    );

    // The unpacked binary is a working provider, not just a file with the right name.
    let schema: Value =
        serde_json::from_str(&workdir.run(&["providers", "schema", "-json"]).stdout)
            .expect("terraform providers schema -json");
    let resources = &schema["provider_schemas"][&selected]["resource_schemas"];
    assert!(
        resources.get("usualstore_tenant").is_some(),
        "no usualstore_tenant in the schema: {schema:#}"
    );

    // A mirror hands Terraform a zip and nothing to check it against: it locks the h1: hash of the
    // unpacked files only.
    let from_mirror = locked_hashes(&workdir);
    assert!(
        !from_mirror.is_empty() && from_mirror.iter().all(|hash| hash.starts_with("h1:")),
        "init from the mirror locked {from_mirror:?}"
    );

    let (os, arch) = platform()
        .split_once('_')
        .map(|(os, arch)| (os.to_owned(), arch.to_owned()))
        .expect("an os_arch platform");
    let registry = Registry::start(RegistryRelease {
        dir: release.dir.path().to_path_buf(),
        namespace: PROVIDER_NAMESPACE.to_owned(),
        provider_type: PROVIDER_TYPE.to_owned(),
        version: PROVIDER_VERSION.to_owned(),
        platforms: vec![(os, arch)],
        key_id: gpg.key_id(),
        public_key: gpg.public_key(),
    });
    workdir.add_cli_config(&registry.host_block(PROVIDER_HOST));
    workdir.set_env("SSL_CERT_FILE", &registry.ca_file().to_string_lossy());
    fs::remove_file(workdir.path().join(".terraform.lock.hcl")).expect("remove the lock file");
    let platform_arg = format!("-platform={}", platform());
    let lock = workdir.try_run(&["providers", "lock", "-no-color", &platform_arg]);
    assert!(
        lock.success(),
        "providers lock through the registry failed:\n{lock}\nrequests: {:#?}",
        registry.requests()
    );
    // Terraform names the key it checked SHA256SUMS' signature with.
    assert!(
        lock.combined().contains(&gpg.key_id()),
        "providers lock does not mention the signing key {}:\n{lock}",
        gpg.key_id()
    );

    let locked = locked_hashes(&workdir);
    let zh: BTreeSet<String> = locked
        .iter()
        .filter(|hash| hash.starts_with("zh:"))
        .cloned()
        .collect();
    // One per line of SHA256SUMS, the manifest's included, as for any provider from a registry.
    let sums: BTreeSet<String> = release
        .sums()
        .into_values()
        .map(|digest| format!("zh:{digest}"))
        .collect();
    assert_eq!(
        zh, sums,
        "providers lock's zh: hashes are not SHA256SUMS' lines (locked: {locked:?})"
    );
    assert!(
        from_mirror.iter().all(|hash| locked.contains(hash)),
        "the registry's package hashes differ from the mirror's: {locked:?} vs {from_mirror:?}"
    );
}

#[test]
fn release_installs_from_a_packed_mirror_with_terraform_1_11() {
    with_terraform(Terraform::v1_11, "1.11", installs_from_a_packed_mirror);
}

#[test]
fn release_installs_from_a_packed_mirror_with_terraform_1_0() {
    with_terraform(Terraform::v1_0, "1.0.3", installs_from_a_packed_mirror);
}

#[test]
fn release_scripts_are_shellcheck_clean() {
    let scripts = repo_root().join("scripts");
    shellcheck(&[
        scripts.join("package-release.sh"),
        scripts.join("ensure-release-tools.sh"),
    ]);
}

#[test]
fn changelog_has_a_section_for_the_version() {
    let path = repo_root().join("CHANGELOG.md");
    let changelog = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let heading = format!("## [{PROVIDER_VERSION}] - ");
    assert!(
        changelog.lines().any(|line| line.starts_with(&heading)),
        "CHANGELOG.md has no `{heading}<date>` section for the version in Cargo.toml"
    );
}
