//! Login users' e-mail addresses, kept in the tenant's own database (table
//! `public.usualstore_login_users`, readable by the tenant's owner and admin group only) rather
//! than in role comments, which every login on the server can read.

use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

use crate::error::{DbResultExt, TenantError};
use crate::names::RoleNames;
use crate::server::Server;
use crate::sql::{quote_ident, quote_literal};

fn table() -> String {
    format!(
        "public.{}",
        quote_ident(usualstore_schema::LOGIN_USERS_TABLE)
    )
}

/// The address the tenant keeps for `username`, if any.
pub(crate) async fn read_email(
    server: &Server,
    database: &str,
    username: &str,
) -> Result<Option<String>, TenantError> {
    let session = server.connect_to(database).await?;
    let result = session
        .query_typed_opt(
            &format!("SELECT email FROM {} WHERE username = $1", table()),
            &[(&username, Type::TEXT)],
        )
        .await;
    session.close().await;
    match result {
        Ok(row) => Ok(row.map(|row| row.get(0))),
        Err(error) if error.code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(None),
        Err(error) => Err(error).context(format!("reading the e-mail of {username:?}")),
    }
}

/// Records `email` for `username` in the tenant, or removes what it had (`None`). Written as the
/// owner role, whose table it is.
pub(crate) async fn write_email(
    server: &Server,
    database: &str,
    username: &str,
    email: Option<&str>,
) -> Result<(), TenantError> {
    let owner = RoleNames::for_database(database).owner;
    let change = match email {
        Some(email) => format!(
            "INSERT INTO {table} (username, email) VALUES ({user}, {email}) \
             ON CONFLICT (username) DO UPDATE SET email = EXCLUDED.email \
             WHERE {table}.email IS DISTINCT FROM EXCLUDED.email",
            table = table(),
            user = quote_literal(username),
            email = quote_literal(email),
        ),
        None => format!(
            "DELETE FROM {} WHERE username = {}",
            table(),
            quote_literal(username)
        ),
    };
    let session = server.connect_to(database).await?;
    // One round trip: names and addresses are validated and quoted, so no parameters are needed.
    let result = session
        .batch_execute(&format!(
            "SET ROLE {}; {change}; RESET ROLE",
            quote_ident(&owner)
        ))
        .await;
    session.close().await;
    match result {
        Ok(()) => Ok(()),
        Err(error) if error.code() == Some(&SqlState::UNDEFINED_TABLE) => {
            Err(TenantError::SchemaTooOld {
                database: database.to_owned(),
                needed: usualstore_schema::LOGIN_USERS_SINCE_VERSION,
            })
        }
        Err(error) => Err(error).context(format!("recording the e-mail of {username:?}")),
    }
}
