//! The per-resource examples under `examples/resources/` are applied for real, and the registry docs under
//! `docs/resources/` must show them verbatim, so neither can go stale.

mod support;

use std::path::Path;

use support::pg;
use support::terraform::repo_root;
use support::{Terraform, Workdir, hcl};

const RESOURCES: [&str; 2] = ["usualstore_tenant", "usualstore_tenant_user"];

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn docs_show_the_examples_verbatim() {
    let root = repo_root();
    for resource in RESOURCES {
        let name = resource.trim_start_matches("usualstore_");
        let doc = read(&root.join(format!("docs/resources/{name}.md")));
        for (file, fence) in [("resource.tf", "terraform"), ("import.sh", "shell")] {
            let example = read(&root.join(format!("examples/resources/{resource}/{file}")));
            let block = format!("```{fence}\n{example}```");
            assert!(
                doc.contains(&block),
                "docs/resources/{name}.md does not show examples/resources/{resource}/{file} verbatim"
            );
        }
    }
}

/// Applies each example with its fixed names made unique, checks the plan is empty, then destroys it.
fn examples_apply_and_destroy(terraform: &Terraform) {
    let root = repo_root();
    for resource in RESOURCES {
        let unique = pg::unique_name("ex");
        let example = read(&root.join(format!("examples/resources/{resource}/resource.tf")))
            .replace("building_", &format!("{unique}_"));
        let workdir = Workdir::new(
            terraform,
            &format!("{}\n{example}", hcl::provider_config("")),
        );
        workdir.init();
        workdir.apply(&[]);
        workdir.assert_no_changes();
        let database = format!("{unique}_shop");
        assert!(
            pg::database_exists(&database),
            "{resource} example created no tenant"
        );
        let unprotected = if example.contains("deletion_protection = true") {
            example.replace("deletion_protection = true", "deletion_protection = false")
        } else {
            example.replacen(
                "  plan          = \"professional\"\n",
                "  plan          = \"professional\"\n  deletion_protection = false\n",
                1,
            )
        };
        assert_ne!(
            unprotected, example,
            "could not switch deletion protection off"
        );
        workdir.set_config(&format!("{}\n{unprotected}", hcl::provider_config("")));
        workdir.apply(&[]);
        workdir.destroy();
        assert!(
            !pg::database_exists(&database),
            "{resource} example left {database}"
        );
        assert!(pg::existing_tenant_roles(&database).is_empty());
    }
}

#[test]
fn examples_apply_with_terraform_1_11() {
    support::with_terraform(Terraform::v1_11, "1.11", examples_apply_and_destroy);
}

#[test]
fn examples_apply_with_terraform_1_0() {
    support::with_terraform(Terraform::v1_0, "1.0.3", examples_apply_and_destroy);
}
