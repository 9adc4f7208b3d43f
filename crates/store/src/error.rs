use kite_domain::FieldErrors;

/// Everything the storage layer can answer besides success. The server maps each
/// variant to one HTTP status; `code`s are keys of the message catalogue.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    /// A uniqueness or state conflict (duplicate ID number, stale version, open flow).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// Too many requests of one kind (one-time codes): try again later.
    #[error("throttled")]
    Throttled,
    #[error("invalid input")]
    Invalid(FieldErrors),
    /// A write whose transaction did not commit (a batch's commit failed, or the
    /// writer stopped): nothing of it was stored, and a retry may succeed.
    #[error("not stored: {0}")]
    NotStored(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    pub fn invalid(field: &'static str, code: &'static str) -> Self {
        let mut e = FieldErrors::default();
        e.add(field, code);
        StoreError::Invalid(e)
    }

    pub(crate) fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Db(sqlx::Error::Database(d)) if d.is_unique_violation())
    }

    /// PostgreSQL broke a lock cycle by failing this statement.
    pub(crate) fn is_deadlock(&self) -> bool {
        matches!(self, StoreError::Db(sqlx::Error::Database(d)) if d.code().as_deref() == Some("40P01"))
    }
}
