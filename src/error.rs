//! Errors returned by wisckey.

use std::path::PathBuf;

/// The result type of every fallible wisckey call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong.
///
/// The enum is `#[non_exhaustive]`: match the variants you care about and keep
/// a catch-all arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O error, with what was being done when it happened.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What the engine was doing (for example `"reading 000004.vlog"`).
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Bytes on disk are not what the engine wrote: a checksum failed, a
    /// length is impossible, a record names the wrong key.
    #[error("corruption in {file} at offset {offset}: {reason}")]
    Corruption {
        /// The damaged file.
        file: PathBuf,
        /// The byte offset in that file where the damage was detected.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// Another handle, in this process or another, holds the database directory.
    #[error("database directory {0} is locked by another handle or process")]
    Locked(PathBuf),
    /// The operation is not supported by this table kind or configuration.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// An argument was out of range (for example a key over the size limit).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A failed fsync or a crashed background worker: reads may go on,
    /// writes are refused until the database is reopened.
    #[error("database is poisoned (reopen it): {0}")]
    Poisoned(String),
    /// The database was opened read-only ([`crate::Options::read_only`]):
    /// the call would have written.
    #[error("database {0} is open read-only")]
    ReadOnly(PathBuf),
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// A corruption error for `file` at `offset`.
    pub(crate) fn corruption(
        file: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        Error::Corruption {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }

    /// True for [`Error::Corruption`].
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }

    /// A copy suitable for handing to several callers (I/O errors keep their kind
    /// and message, not their original payload).
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Io { context, source } => Error::Io {
                context: context.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            Error::Corruption {
                file,
                offset,
                reason,
            } => Error::Corruption {
                file: file.clone(),
                offset: *offset,
                reason: reason.clone(),
            },
            Error::Locked(p) => Error::Locked(p.clone()),
            Error::Unsupported(s) => Error::Unsupported(s.clone()),
            Error::InvalidArgument(s) => Error::InvalidArgument(s.clone()),
            Error::Poisoned(s) => Error::Poisoned(s.clone()),
            Error::ReadOnly(p) => Error::ReadOnly(p.clone()),
        }
    }
}
