//! The data sources against real tenants: what a listing finds (and what it must not), filters,
//! a half-provisioned tenant, one tenant and one user by name, and clear errors for what is not
//! there. Each test works under a prefix of its own, so tenants of tests running beside it never
//! show up.

use serde_json::{Value, json};

use crate::support::hcl;
use crate::support::pg::{self, Db, quote_ident, quote_literal};
use crate::support::{Terraform, Workdir, with_terraform};

fn tenants_config(prefix: &str) -> String {
    let mut text = hcl::provider_config("");
    for (suffix, plan) in [("a", "starter"), ("b", "professional")] {
        text.push_str(&format!(
            r#"
resource "usualstore_tenant" "{suffix}" {{
  database_name       = "{prefix}_{suffix}"
  tenant_name         = "Tenant {suffix}"
  plan                = "{plan}"
  deletion_protection = false
}}
"#
        ));
    }
    text.push_str(&format!(
        r#"
resource "usualstore_tenant_user" "u" {{
  tenant   = usualstore_tenant.a.database_name
  username = "{prefix}_u"
  role     = "developer"
  email    = "dev@example.com"
}}
"#
    ));
    text
}

fn reader_config(prefix: &str, extra: &str) -> String {
    format!(
        r#"{provider}
data "usualstore_tenants" "all" {{
  name_prefix = "{prefix}_"
}}

data "usualstore_tenants" "professional" {{
  name_prefix = "{prefix}_"
  plan        = "professional"
}}

data "usualstore_tenant" "a" {{
  database_name = "{prefix}_a"
}}

data "usualstore_tenant_user" "u" {{
  tenant   = "{prefix}_a"
  username = "{prefix}_u"
}}

output "all" {{
  value = data.usualstore_tenants.all.tenants
}}

output "professional" {{
  value = [for t in data.usualstore_tenants.professional.tenants : t.database_name]
}}

output "tenant" {{
  value = data.usualstore_tenant.a
}}

output "user" {{
  value = data.usualstore_tenant_user.u
}}
{extra}"#,
        provider = hcl::provider_config(""),
    )
}

fn outputs(workdir: &Workdir) -> Value {
    let all = workdir.output_json();
    let value = |name: &str| all[name]["value"].clone();
    json!({
        "all": value("all"),
        "professional": value("professional"),
        "tenant": value("tenant"),
        "user": value("user"),
    })
}

fn data_sources_read_what_is_there(terraform: &Terraform) {
    let prefix = pg::unique_name("ds");
    let owner = Workdir::new(terraform, &tenants_config(&prefix));
    owner.init();
    owner.apply(&[]);

    // Beside them: a database with the prefix that is not a tenant, and a tenant whose create
    // stopped half-way (its comment says so).
    let stranger = format!("{prefix}_stranger");
    Db::postgres().batch(&format!("CREATE DATABASE {}", quote_ident(&stranger)));
    let reader = Workdir::new(terraform, &reader_config(&prefix, ""));
    reader.init();
    reader.apply(&[]);
    let found = outputs(&reader);
    let latest = usualstore_schema::latest_version();
    assert_eq!(
        found["all"],
        json!([
            {
                "database_name": format!("{prefix}_a"), "tenant_name": "Tenant a", "plan": "starter",
                "connection_limit": 10, "schema_version": latest, "status": "ready"
            },
            {
                "database_name": format!("{prefix}_b"), "tenant_name": "Tenant b", "plan": "professional",
                "connection_limit": 25, "schema_version": latest, "status": "ready"
            },
        ]),
        "{found:#}"
    );
    assert_eq!(found["professional"], json!([format!("{prefix}_b")]));
    let tenant = &found["tenant"];
    assert_eq!(tenant["plan"], "starter");
    assert_eq!(tenant["admin_role"], format!("{prefix}_a_admin"));
    assert_eq!(tenant["privileges_in_sync"], true);
    assert_eq!(tenant["status"], "ready");
    let user = &found["user"];
    assert_eq!(user["role"], "developer");
    assert_eq!(user["id"], format!("{prefix}_a/{prefix}_u"));
    assert!(
        user.get("password").is_none() && user.get("dsn").is_none(),
        "{user:#}"
    );

    Db::postgres().batch(&format!(
        "COMMENT ON DATABASE {} IS {}",
        quote_ident(&format!("{prefix}_b")),
        quote_literal(
            r#"{"usualstore":1,"tenant_name":"Tenant b","plan":"professional","status":"provisioning"}"#
        )
    ));
    reader.apply(&[]);
    let statuses: Vec<Value> = reader.output_json()["all"]["value"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|tenant| tenant["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("ready"), json!("provisioning")]);

    // What is not there is an error on the attribute that names it.
    for (extra, attribute, words) in [
        (
            format!(
                "data \"usualstore_tenant\" \"gone\" {{\n  database_name = \"{prefix}_gone\"\n}}\n"
            ),
            "database_name",
            "no database",
        ),
        (
            format!(
                "data \"usualstore_tenant\" \"stranger\" {{\n  database_name = \"{stranger}\"\n}}\n"
            ),
            "database_name",
            "not",
        ),
        (
            format!(
                "data \"usualstore_tenant_user\" \"gone\" {{\n  tenant   = \"{prefix}_b\"\n  username = \"{prefix}_u\"\n}}\n"
            ),
            "username",
            "no login user",
        ),
    ] {
        reader.set_config(&reader_config(&prefix, &extra));
        let refused = reader.try_plan(&[]);
        assert!(!refused.success(), "{refused}");
        assert!(
            refused.stderr.contains(attribute) && refused.stderr.contains(words),
            "{refused}"
        );
    }

    Db::postgres().batch(&format!("DROP DATABASE {}", quote_ident(&stranger)));
    owner.destroy();
}

mod tf1_11 {
    #[test]
    fn data_sources_read_what_is_there() {
        super::with_terraform(
            super::Terraform::v1_11,
            "1.11",
            super::data_sources_read_what_is_there,
        );
    }
}

mod tf1_0 {
    #[test]
    fn data_sources_read_what_is_there() {
        super::with_terraform(
            super::Terraform::v1_0,
            "1.0.3",
            super::data_sources_read_what_is_there,
        );
    }
}
