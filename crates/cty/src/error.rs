//! Errors raised while decoding or encoding values, located by their path inside the value.

use std::fmt;

use crate::number::ParseNumberError;

/// One step from a value to a value nested inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    /// An object attribute.
    Attr(String),
    /// An element of a list, set or tuple.
    Index(usize),
    /// An element of a map.
    Key(String),
}

/// Where inside a value something went wrong; empty for the value itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Path(Vec<PathStep>);

impl Path {
    pub fn steps(&self) -> &[PathStep] {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<PathStep>> for Path {
    fn from(steps: Vec<PathStep>) -> Self {
        Path(steps)
    }
}

impl fmt::Display for Path {
    /// Renders like Terraform does: `.tenants[2].name`, `.labels["team"]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in &self.0 {
            match step {
                PathStep::Attr(name) => write!(f, ".{name}")?,
                PathStep::Index(index) => write!(f, "[{index}]")?,
                PathStep::Key(key) => write!(f, "[{key:?}]")?,
            }
        }
        Ok(())
    }
}

/// A decoding or encoding failure and where in the value it happened.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{kind}", LocationPrefix(.path))]
pub struct CtyError {
    pub path: Path,
    pub kind: ErrorKind,
}

impl CtyError {
    pub(crate) fn at(path: &[PathStep], kind: ErrorKind) -> Self {
        CtyError {
            path: Path(path.to_vec()),
            kind,
        }
    }

    pub(crate) fn root(kind: ErrorKind) -> Self {
        CtyError {
            path: Path::default(),
            kind,
        }
    }
}

/// `".a.b: "` for nested paths, nothing for the root so messages stay short.
struct LocationPrefix<'a>(&'a Path);

impl fmt::Display for LocationPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_root() {
            Ok(())
        } else {
            write!(f, "{}: ", self.0)
        }
    }
}

/// What went wrong. Messages name types and attributes, never the values themselves,
/// because values may be secrets.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    #[error("expected {expected}, got {found}")]
    Mismatch {
        expected: String,
        found: &'static str,
    },
    #[error("unexpected end of input")]
    UnexpectedEnd,
    #[error("{0} unexpected bytes after the value")]
    TrailingBytes(usize),
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    #[error("unsupported attribute {0:?}")]
    UnsupportedAttribute(String),
    #[error("duplicate key {0:?}")]
    DuplicateKey(String),
    #[error("expected a tuple of {expected} elements, got {found}")]
    TupleLength { expected: usize, found: usize },
    #[error("invalid number: {0}")]
    InvalidNumber(#[from] ParseNumberError),
    #[error("invalid type: {0}")]
    InvalidType(String),
    #[error("invalid dynamic value: {0}")]
    InvalidDynamic(&'static str),
    #[error("invalid JSON at byte {offset}: {reason}")]
    InvalidJson { offset: usize, reason: &'static str },
    #[error("unknown values cannot be written as JSON")]
    UnknownInJson,
    #[error("infinity cannot be written as JSON")]
    InfinityInJson,
    #[error("{0} elements are too many for msgpack")]
    TooLarge(usize),
    #[error("nested deeper than {0} levels")]
    TooDeep(usize),
}
