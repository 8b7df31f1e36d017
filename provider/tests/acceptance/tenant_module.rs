//! `modules/tenant`'s own `terraform test` files (`tests/*.tftest.hcl`), run as a module consumer
//! would: the module's files in a working directory, the provider under test from the harness's
//! filesystem mirror, PG* pointing at the test cluster. `terraform test` exists from Terraform 1.6, so
//! only the 1.11 binary runs them.

use std::fs;

use crate::customers_support::copy_dir;
use crate::support::terraform::repo_root;
use crate::support::{Terraform, Workdir, with_terraform};

fn module_tests_pass(terraform: &Terraform) {
    let module = repo_root().join("modules/tenant");
    assert!(
        fs::read_dir(module.join("tests"))
            .expect("modules/tenant/tests")
            .filter_map(Result::ok)
            .any(|entry| entry.file_name().to_string_lossy().ends_with(".tftest.hcl")),
        "modules/tenant/tests has no .tftest.hcl file"
    );
    // The module's own main.tf replaces the harness's placeholder.
    let workdir = Workdir::new(terraform, "");
    copy_dir(&module, &workdir.path());
    workdir.init();
    let output = workdir.run(&["test", "-no-color"]);
    // Every run passed and none was skipped: an expected failure that did not happen fails the run.
    assert!(
        output.stdout.contains("Success!") && !output.stdout.contains("skipped"),
        "terraform test did not pass every run:\n{output}"
    );
}

#[test]
fn tenant_module_terraform_tests_pass_with_terraform_1_11() {
    with_terraform(Terraform::v1_11, "1.11", module_tests_pass);
}
