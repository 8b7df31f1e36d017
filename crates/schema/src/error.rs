/// Why the schema could not be read or brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The migration list given to the runner is not strictly ordered by positive version.
    #[error("migration list is not strictly increasing by positive version at version {version}")]
    InvalidMigrationList {
        /// The first version that breaks the order.
        version: i32,
    },

    /// A released migration's SQL differs from what was applied: someone edited it.
    #[error(
        "migration {version} was applied with checksum {recorded} but the embedded SQL has checksum \
         {embedded}: released migrations must never be edited; add a new migration instead"
    )]
    ChecksumMismatch {
        /// The edited migration.
        version: i32,
        /// The checksum stored when it was applied.
        recorded: String,
        /// The checksum of the SQL this binary carries.
        embedded: String,
    },

    /// The database has a schema version this binary does not know: it is older than the schema.
    #[error(
        "database schema is at version {database_version}, newer than this program knows \
         (latest {latest_known}); upgrade the program instead of running it against a newer schema"
    )]
    DatabaseNewer {
        /// The highest version recorded in the database.
        database_version: i32,
        /// The highest version in the migration list.
        latest_known: i32,
    },

    /// The database records a version that is not in the list, below the list's latest.
    #[error("database records migration {version}, which this program does not know")]
    UnknownApplied {
        /// The unknown recorded version.
        version: i32,
    },

    /// A pending migration is older than one already applied; applying it now would run the
    /// history in a different order than anywhere else.
    #[error(
        "migration {version} is pending but the database already has the later migration \
         {latest_applied}; migrations must be applied in order"
    )]
    OutOfOrder {
        /// The pending migration.
        version: i32,
        /// The highest applied version.
        latest_applied: i32,
    },

    /// A migration's SQL failed; its transaction was rolled back, nothing of it remains.
    #[error("migration {version} ({name}) failed and was rolled back: {source}")]
    MigrationFailed {
        /// The failing migration.
        version: i32,
        /// Its name.
        name: &'static str,
        /// The database's error.
        #[source]
        source: tokio_postgres::Error,
    },

    /// Reading or writing the migrations table, or the connection itself, failed.
    #[error("schema migrations bookkeeping failed: {0}")]
    Database(#[from] tokio_postgres::Error),
}

impl SchemaError {
    /// The SQLSTATE of the server's error behind this one, if there is one (a lock timeout is
    /// `55P03`, for instance).
    pub fn sqlstate(&self) -> Option<&tokio_postgres::error::SqlState> {
        match self {
            SchemaError::MigrationFailed { source, .. } | SchemaError::Database(source) => {
                source.code()
            }
            _ => None,
        }
    }
}
