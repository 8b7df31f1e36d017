//! Harness shared by the integration tests that drive the real `terraform` binary against the
//! provider: finds Terraform 1.11 and 1.0.3, builds throwaway working directories that install
//! the provider from a local filesystem mirror, runs commands with a time limit, checks the test
//! cluster's catalog, and serves release files as a provider registry. Each test file includes
//! it with `mod support;`.
#![allow(dead_code, unused_imports)] // each test file uses a different part of it

pub mod hcl;
pub mod pg;
pub mod process;
pub mod registry;
pub mod terraform;
pub mod workdir;

pub use process::Output;
pub use terraform::{Terraform, with_terraform};
pub use workdir::{Plan, Workdir};

/// For tests that stand in for a newer provider through `USUALSTORE_TEST_EXTRA_MIGRATIONS`, which
/// only builds with the `test-hooks` feature honour (`make test` turns it on).
pub fn require_test_hooks() {
    if !cfg!(feature = "test-hooks") {
        panic!(
            "this test needs `--features terraform-provider-usualstore/test-hooks` (make test \
             turns it on): a normal build ignores USUALSTORE_TEST_EXTRA_MIGRATIONS"
        );
    }
}
