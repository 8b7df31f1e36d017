//! The per-resource examples under `examples/resources/` and `examples/ephemeral-resources/` are applied for
//! real, and the registry docs must show them verbatim, so neither can go stale.

use std::path::Path;

use crate::support::pg;
use crate::support::terraform::repo_root;
use crate::support::{Terraform, Workdir, hcl};

/// Examples applied against the shared test cluster; `usualstore_server`'s changes the whole
/// server, so it gets a private one (see `server_examples_apply_and_destroy`).
const RESOURCES: [&str; 2] = ["usualstore_tenant", "usualstore_tenant_user"];
const DOCUMENTED: [&str; 3] = [
    "usualstore_server",
    "usualstore_tenant",
    "usualstore_tenant_user",
];

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn docs_show_the_examples_verbatim() {
    let root = repo_root();
    for resource in DOCUMENTED {
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
    for data_source in DATA_SOURCES {
        let name = data_source.trim_start_matches("usualstore_");
        let doc = read(&root.join(format!("docs/data-sources/{name}.md")));
        let example = read(&root.join(format!(
            "examples/data-sources/{data_source}/data-source.tf"
        )));
        assert!(
            doc.contains(&format!("```terraform\n{example}```")),
            "docs/data-sources/{name}.md does not show its example verbatim"
        );
    }
    let doc = read(&root.join(EPHEMERAL_DOC));
    let example = read(&root.join(EPHEMERAL_EXAMPLE));
    assert!(
        doc.contains(&format!("```terraform\n{example}```")),
        "{EPHEMERAL_DOC} does not show {EPHEMERAL_EXAMPLE} verbatim"
    );
}

const DATA_SOURCES: [&str; 3] = [
    "usualstore_tenants",
    "usualstore_tenant",
    "usualstore_tenant_user",
];

/// The data source examples, together, read what the `usualstore_tenant_user` example made (the
/// same names made unique the same way).
fn data_source_examples_read(terraform: &Terraform, unique: &str) {
    let root = repo_root();
    let mut config = hcl::provider_config("");
    for data_source in DATA_SOURCES {
        config.push_str(
            &read(&root.join(format!(
                "examples/data-sources/{data_source}/data-source.tf"
            )))
            .replace("building_", &format!("{unique}_")),
        );
    }
    let workdir = Workdir::new(terraform, &config);
    workdir.init();
    workdir.apply(&[]);
    let outputs = workdir.output_json();
    // The outputs' names were made unique with everything else.
    let value =
        |name: &str| outputs[name.replace("building_", &format!("{unique}_"))]["value"].clone();
    assert_eq!(
        value("building_databases"),
        serde_json::json!([format!("{unique}_shop")])
    );
    assert_eq!(value("building_half_provisioned"), serde_json::json!([]));
    assert_eq!(
        value("shop_schema_version"),
        serde_json::json!(usualstore_schema::latest_version())
    );
    assert_eq!(
        value("shop_admin_role"),
        serde_json::json!(format!("{unique}_shop_admin"))
    );
    assert_eq!(value("ops_role"), serde_json::json!("admin"));
    workdir.assert_no_changes();
}

const EPHEMERAL_EXAMPLE: &str = "examples/ephemeral-resources/usualstore_dsn/ephemeral-resource.tf";
const EPHEMERAL_DOC: &str = "docs/ephemeral-resources/dsn.md";

/// The write-only password and ephemeral DSN example (Terraform 1.11): applied with the password
/// from an ephemeral variable, its login check run with `psql`, nothing of the password in state,
/// no changes planned, destroyed.
#[test]
fn ephemeral_example_applies_with_terraform_1_11() {
    crate::support::with_terraform(Terraform::v1_11, "1.11", |terraform| {
        let unique = pg::unique_name("exe");
        let password = "an example's write-only secret";
        let example =
            read(&repo_root().join(EPHEMERAL_EXAMPLE)).replace("building_", &format!("{unique}_"));
        let config = |example: &str| format!("{}\n{example}", hcl::provider_config(""));
        let mut workdir = Workdir::new(terraform, &config(&example));
        let psql_dir = pg::psql()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let path = std::env::var("PATH").unwrap_or_default();
        workdir.set_env("PATH", &format!("{}:{path}", psql_dir.display()));
        let var = format!("api_password={password}");
        workdir.init();
        workdir.apply(&["-var", &var]);
        let state = std::fs::read_to_string(workdir.path().join("terraform.tfstate"))
            .expect("read the state");
        assert!(!state.contains(password), "the password is in the state");
        assert_eq!(
            workdir.plan_detailed_with(&["-var", &var]),
            crate::support::Plan::NoChanges
        );
        let unprotected = example.replacen(
            "  plan          = \"professional\"\n",
            "  plan          = \"professional\"\n  deletion_protection = false\n",
            1,
        );
        assert_ne!(
            unprotected, example,
            "could not switch deletion protection off"
        );
        workdir.set_config(&config(&unprotected));
        workdir.apply(&["-var", &var]);
        workdir.apply(&["-destroy", "-var", &var]);
        assert!(!pg::database_exists(&format!("{unique}_shop")));
    });
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
        if resource == "usualstore_tenant_user" {
            data_source_examples_read(terraform, &unique);
        }
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

/// The server examples (the per-resource one and `examples/server`) on a private cluster: applied,
/// nothing left open, no changes planned, destroyed.
fn server_examples_apply_and_destroy(terraform: &Terraform) {
    let root = repo_root();
    let cluster = usualstore_testpg::Cluster::start().expect("a private cluster");
    for example in [
        format!(
            "{}\n{}",
            hcl::provider_config(""),
            read(&root.join("examples/resources/usualstore_server/resource.tf"))
        ),
        read(&root.join("examples/server/main.tf")),
    ] {
        let mut workdir = Workdir::without_cluster(terraform, &example);
        for (key, value) in cluster.pg_env() {
            workdir.set_env(&key, &value);
        }
        workdir.init();
        workdir.apply(&[]);
        workdir.assert_no_changes();
        let openings = workdir.resource_values("usualstore_server.this")["openings"].clone();
        assert_eq!(openings, serde_json::json!([]), "left open: {openings}");
        workdir.destroy();
    }
}

#[test]
fn server_examples_apply_with_terraform_1_11() {
    crate::support::with_terraform(Terraform::v1_11, "1.11", server_examples_apply_and_destroy);
}

#[test]
fn server_examples_apply_with_terraform_1_0() {
    crate::support::with_terraform(Terraform::v1_0, "1.0.3", server_examples_apply_and_destroy);
}

#[test]
fn examples_apply_with_terraform_1_11() {
    crate::support::with_terraform(Terraform::v1_11, "1.11", examples_apply_and_destroy);
}

#[test]
fn examples_apply_with_terraform_1_0() {
    crate::support::with_terraform(Terraform::v1_0, "1.0.3", examples_apply_and_destroy);
}
