//! `terraform-provider-usualstore check ATTRIBUTE VALUE`: the provider's own rules for a value,
//! outside Terraform, so scripts that write configurations (examples/tenants/add-customer.sh)
//! check names exactly as a plan would instead of keeping a copy of the rules.

use std::io::Read as _;
use std::process::ExitCode;
use std::str::FromStr as _;

use usualstore_tenancy::{ServicePlan, UserRole};

pub const USAGE: &str = "usage: terraform-provider-usualstore check ATTRIBUTE VALUE\n\
    \n\
    Checks VALUE as the provider checks that attribute at plan time; prints why it is refused and\n\
    exits 1, or prints nothing and exits 0. ATTRIBUTE is one of:\n\
    \x20 database_name   usualstore_tenant.database_name (also usualstore_tenant_user.tenant)\n\
    \x20 tenant_name     usualstore_tenant.tenant_name\n\
    \x20 plan            usualstore_tenant.plan\n\
    \x20 username        usualstore_tenant_user.username\n\
    \x20 role            usualstore_tenant_user.role\n\
    \x20 email           usualstore_tenant_user.email\n\
    \x20 password        usualstore_tenant_user.password (VALUE \"-\": read from stdin, so it stays\n\
    \x20                 off the command line)";

/// Runs the subcommand with the arguments after `check`.
pub fn run(args: &[String]) -> ExitCode {
    let [attribute, value] = args else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let value = if attribute == "password" && value == "-" {
        let mut text = String::new();
        if let Err(error) = std::io::stdin().read_to_string(&mut text) {
            eprintln!("check: reading the password from stdin: {error}");
            return ExitCode::from(2);
        }
        text.strip_suffix('\n').unwrap_or(&text).to_owned()
    } else {
        value.clone()
    };
    match check(attribute, &value) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Refusal::UnknownAttribute) => {
            eprintln!("check: unknown attribute {attribute:?}\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Refusal::Invalid(reason)) => {
            println!("{attribute}: {reason}");
            ExitCode::from(1)
        }
    }
}

enum Refusal {
    UnknownAttribute,
    Invalid(String),
}

fn check(attribute: &str, value: &str) -> Result<(), Refusal> {
    let invalid = |error: &dyn std::fmt::Display| Refusal::Invalid(error.to_string());
    match attribute {
        "database_name" | "tenant" => {
            usualstore_tenancy::validate_database_name(value).map_err(|e| invalid(&e))
        }
        "tenant_name" => usualstore_tenancy::validate_tenant_name(value).map_err(|e| invalid(&e)),
        "plan" => ServicePlan::from_str(value)
            .map(drop)
            .map_err(|e| invalid(&e)),
        "role" => UserRole::from_str(value).map(drop).map_err(|e| invalid(&e)),
        "username" => usualstore_tenancy::validate_username(value).map_err(|e| invalid(&reason(e))),
        "email" => usualstore_tenancy::validate_email(value).map_err(|e| invalid(&reason(e))),
        "password" => usualstore_tenancy::validate_password(value).map_err(|e| invalid(&reason(e))),
        _ => Err(Refusal::UnknownAttribute),
    }
}

/// The reason alone: the attribute is already named in front of it.
fn reason(error: usualstore_tenancy::TenantError) -> String {
    match error {
        usualstore_tenancy::TenantError::InvalidUserSetting { reason, .. } => reason,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(attribute: &str, value: &str) -> String {
        match check(attribute, value) {
            Err(Refusal::Invalid(reason)) => reason,
            Err(Refusal::UnknownAttribute) => panic!("{attribute} unknown"),
            Ok(()) => panic!("{attribute} = {value:?} accepted"),
        }
    }

    #[test]
    fn the_rules_of_a_plan() {
        assert!(check("database_name", "building_shop").is_ok());
        assert!(refused("database_name", "pg_shop").contains("pg_"));
        assert!(refused("username", "pg_reader").contains("pg_"));
        assert!(refused("username", "future_owner").contains("_owner"));
        assert!(check("username", "building_ops").is_ok());
        assert!(refused("plan", "gold").contains("free"));
        assert!(refused("password", "short").contains("8"));
        assert!(check("email", "ops@example.com").is_ok());
        assert!(matches!(
            check("colour", "red"),
            Err(Refusal::UnknownAttribute)
        ));
    }
}
