//! The typed error of the conformance library.

use std::path::PathBuf;

/// Why a suite or an expectation manifest could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The suite's data set was never fetched, or its fetch did not finish
    /// (no `COMPLETE` marker in its directory).
    #[error(
        "test data for suite '{suite}' is missing or incomplete at {} — run `cargo xtask fetch-data` first",
        dir.display()
    )]
    MissingData {
        /// The suite's name (`onnx-node`, `onnx-models`).
        suite: &'static str,
        /// Where its data was looked for.
        dir: PathBuf,
    },
    /// The suite's directory holds another number of cases than its
    /// `COMPLETE` marker records.
    #[error("suite '{suite}' at {} has {found} cases, its COMPLETE marker says {expected}", dir.display())]
    CaseCount {
        /// The suite's name.
        suite: &'static str,
        /// The suite's directory.
        dir: PathBuf,
        /// Cases found on disk.
        found: usize,
        /// Cases the marker records.
        expected: usize,
    },
    /// A file or directory could not be read.
    #[error("reading {}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A file or directory could not be written.
    #[error("writing {}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// The conformance library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A read failure of `path`.
    pub(crate) fn read(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Read { path, source }
    }

    /// A write failure of `path`.
    pub(crate) fn write(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Write { path, source }
    }
}
