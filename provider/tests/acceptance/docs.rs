//! The `## Schema` sections of the registry docs are generated from the provider's own schema, as
//! tfplugindocs does for Go providers: `terraform providers schema -json` against the binary under
//! test, rendered one way. The test fails when a committed section differs from what the schema
//! says; `make docs` (`USUALSTORE_WRITE_DOCS=1`) rewrites them.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::support::terraform::{loud_note, repo_root};
use crate::support::{Terraform, Workdir, hcl};

const PROVIDER_ADDRESS: &str = "registry.terraform.io/usualstore/usualstore";

/// Each registry page and the schema it documents.
const PAGES: [(&str, Block); 8] = [
    ("docs/index.md", Block::Provider),
    (
        "docs/resources/server.md",
        Block::Resource("usualstore_server"),
    ),
    (
        "docs/resources/tenant.md",
        Block::Resource("usualstore_tenant"),
    ),
    (
        "docs/resources/tenant_user.md",
        Block::Resource("usualstore_tenant_user"),
    ),
    (
        "docs/data-sources/tenants.md",
        Block::DataSource("usualstore_tenants"),
    ),
    (
        "docs/data-sources/tenant.md",
        Block::DataSource("usualstore_tenant"),
    ),
    (
        "docs/data-sources/tenant_user.md",
        Block::DataSource("usualstore_tenant_user"),
    ),
    (
        "docs/ephemeral-resources/dsn.md",
        Block::Ephemeral("usualstore_dsn"),
    ),
];

#[derive(Clone, Copy)]
enum Block {
    Provider,
    Resource(&'static str),
    DataSource(&'static str),
    Ephemeral(&'static str),
}

/// `terraform providers schema -json` for the provider under test.
fn provider_schema(terraform: &Terraform) -> Value {
    let workdir = Workdir::without_cluster(terraform, &hcl::provider_config(""));
    workdir.init();
    let output = workdir.run(&["providers", "schema", "-json"]);
    let all: Value = serde_json::from_str(&output.stdout).unwrap_or_else(|error| {
        panic!("no JSON from terraform providers schema ({error}):\n{output}")
    });
    all["provider_schemas"][PROVIDER_ADDRESS].clone()
}

fn type_name(ty: &Value) -> String {
    match ty {
        Value::String(name) => match name.as_str() {
            "string" => "String".to_owned(),
            "number" => "Number".to_owned(),
            "bool" => "Boolean".to_owned(),
            other => other.to_owned(),
        },
        Value::Array(parts) if parts.len() == 2 => {
            let collection = match parts[0].as_str() {
                Some("list") => "List",
                Some("set") => "Set",
                Some("map") => "Map",
                _ => "Collection",
            };
            format!("{collection} of {}", type_name(&parts[1]))
        }
        other => other.to_string(),
    }
}

fn flag(attribute: &Value, name: &str) -> bool {
    attribute[name].as_bool().unwrap_or(false)
}

/// tfplugindocs' groups: required, optional (computed or not), and computed only.
fn group(attribute: &Value) -> &'static str {
    if flag(attribute, "required") {
        "Required"
    } else if flag(attribute, "optional") {
        "Optional"
    } else {
        "Read-Only"
    }
}

/// The `## Schema` section for one block: attributes by group, each group in name order, one
/// line each.
fn render(block: &Value) -> String {
    let attributes = block["attributes"].as_object().cloned().unwrap_or_default();
    let mut text = String::from("## Schema\n");
    for heading in ["Required", "Optional", "Read-Only"] {
        let lines: Vec<String> = attributes
            .iter()
            .filter(|(_, attribute)| group(attribute) == heading)
            .map(|(name, attribute)| {
                let mut kind = type_name(&attribute["type"]);
                if flag(attribute, "sensitive") {
                    kind.push_str(", Sensitive");
                }
                if flag(attribute, "write_only") {
                    kind.push_str(", Write-only");
                }
                let description = attribute["description"].as_str().unwrap_or_default();
                format!("- `{name}` ({kind}) {description}")
            })
            .collect();
        if !lines.is_empty() {
            text.push_str(&format!("\n### {heading}\n\n{}\n", lines.join("\n")));
        }
    }
    text
}

/// `doc` with its `## Schema` section (up to the next `## ` heading) replaced by `section`.
fn with_section(doc: &str, section: &str) -> Option<String> {
    let start = doc.find("\n## Schema\n")? + 1;
    let end = doc[start + 1..]
        .find("\n## ")
        .map_or(doc.len(), |offset| start + 1 + offset + 1);
    let tail = if end < doc.len() { "\n" } else { "" };
    Some(format!("{}{section}{tail}{}", &doc[..start], &doc[end..]))
}

fn check_pages(terraform: &Terraform) {
    let schema = provider_schema(terraform);
    let write = std::env::var_os("USUALSTORE_WRITE_DOCS").is_some();
    let root = repo_root();
    let mut stale = Vec::new();
    for (page, block) in PAGES {
        let block = match block {
            Block::Provider => &schema["provider"]["block"],
            Block::Resource(name) => &schema["resource_schemas"][name]["block"],
            Block::DataSource(name) => &schema["data_source_schemas"][name]["block"],
            Block::Ephemeral(name) => &schema["ephemeral_resource_schemas"][name]["block"],
        };
        assert!(block.is_object(), "{page}: the provider has no such schema");
        let path = root.join(page);
        let doc = read(&path);
        let Some(expected) = with_section(&doc, &render(block)) else {
            panic!("{page} has no `## Schema` section");
        };
        if expected != doc {
            if write {
                fs::write(&path, &expected).unwrap_or_else(|e| panic!("{page}: {e}"));
                loud_note(&format!("rewrote the schema section of {page}"));
            } else {
                stale.push(page);
            }
        }
    }
    assert!(
        stale.is_empty(),
        "these docs do not show the provider's schema; run `make docs`: {stale:?}"
    );
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn schema_sections_are_generated_from_the_provider() {
    match Terraform::all().into_iter().next() {
        Some(terraform) => check_pages(&terraform),
        None => loud_note("SKIPPED: no Terraform here to read the provider's schema with"),
    }
}

#[test]
fn a_schema_section_is_replaced_up_to_the_next_heading() {
    let doc = "# x\n\n## Schema\n\nold\n\n## Import\n\nkeep\n";
    assert_eq!(
        with_section(doc, "## Schema\n\nnew\n").as_deref(),
        Some("# x\n\n## Schema\n\nnew\n\n## Import\n\nkeep\n")
    );
    assert_eq!(
        with_section("# y\n\n## Schema\n\nold\n", "## Schema\n\nnew\n").as_deref(),
        Some("# y\n\n## Schema\n\nnew\n")
    );
}
