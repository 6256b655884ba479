//! The one error type of the store.

use std::fmt;

#[derive(Debug)]
pub enum StoreError {
    /// The database URL could not be understood.
    Url(String),
    /// Filesystem trouble, or the worker thread is gone.
    Io(String),
    /// SQLite reported an error (or stored data could not be decoded).
    Sqlite(String),
    /// A uniqueness rule would be broken (e.g. a duplicate provider name).
    Conflict(String),
    /// The addressed record does not exist.
    NotFound(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Url(m) => write!(f, "invalid database URL {m}"),
            StoreError::Io(m) => write!(f, "store I/O error: {m}"),
            StoreError::Sqlite(m) => write!(f, "SQLite error: {m}"),
            // Shown to API clients as is.
            StoreError::Conflict(m) | StoreError::NotFound(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Conflict(e.to_string()),
            _ => StoreError::Sqlite(e.to_string()),
        }
    }
}
