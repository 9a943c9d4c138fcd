//! The crate's one error type, and [`SourceProblem`]: one readable
//! diagnostic about a schema or policy file.

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong loading policies or deciding a request.
///
/// Loading errors ([`Schema`](Self::Schema), [`Policies`](Self::Policies),
/// [`Io`](Self::Io), [`NoPolicies`](Self::NoPolicies)) mean the set is not
/// usable: keep the one in force. Request errors (the rest but
/// [`TestFile`](Self::TestFile)) mean no decision was made: deny.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The schema does not parse or is inconsistent.
    #[error("invalid schema:\n{}", Problems(.0))]
    Schema(Vec<SourceProblem>),
    /// Policies that do not parse, do not validate against the schema in
    /// strict mode, or lack a unique `@id`; every problem in every file.
    #[error("invalid policies:\n{}", Problems(.0))]
    Policies(Vec<SourceProblem>),
    /// A policy directory or file could not be read.
    #[error("reading `{}`: {error}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said (in the message, so not also a `source`).
        error: std::io::Error,
    },
    /// A policy directory holds no `*.cedar` file (everything would be
    /// denied, which is more likely a wrong path than an intent).
    #[error("no policy files (`*.cedar`) in `{}`", .0.display())]
    NoPolicies(PathBuf),
    /// A token subject without a known namespace (`user:`, `svc:`, `agent:`)
    /// or with an empty name.
    #[error("subject `{0}` is not `user:NAME`, `svc:NAME` or `agent:NAME`")]
    Subject(String),
    /// An action the schema does not declare.
    #[error("unknown action `{0}`")]
    UnknownAction(String),
    /// An entity type the schema does not declare.
    #[error("unknown entity type `{0}`")]
    UnknownEntityType(String),
    /// The request does not conform to the schema: a resource type the
    /// action does not apply to, a missing or mistyped attribute, a bad
    /// context value.
    #[error("invalid request: {0}")]
    Request(String),
    /// A policy test file that does not parse.
    #[error("invalid policy test file: {0}")]
    TestFile(String),
}

/// One diagnostic about a schema or policy file, with its position.
///
/// Displays as `FILE:LINE:COLUMN: MESSAGE`, then the source line with the
/// span underlined, then `help: …` when Cedar has a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceProblem {
    /// The file name as given to [`PolicyEngine::from_sources`](crate::PolicyEngine::from_sources).
    pub file: String,
    /// 1-based line, when the problem has a position.
    pub line: Option<usize>,
    /// 1-based column (in characters), when the problem has a position.
    pub column: Option<usize>,
    /// Cedar's message (or ours), one line.
    pub message: String,
    /// Cedar's hint, if any.
    pub help: Option<String>,
    /// The source line and the underlined span, ready to print.
    pub excerpt: Option<String>,
}

impl SourceProblem {
    /// A problem about a whole file, without position.
    pub(crate) fn in_file(file: &str, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            line: None,
            column: None,
            message: message.into(),
            help: None,
            excerpt: None,
        }
    }
}

impl fmt::Display for SourceProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "{}:{line}:{column}: {}", self.file, self.message)?,
            _ => write!(f, "{}: {}", self.file, self.message)?,
        }
        if let Some(excerpt) = &self.excerpt {
            write!(f, "\n{excerpt}")?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n    help: {help}")?;
        }
        Ok(())
    }
}

/// A list of problems, one per paragraph, indented.
struct Problems<'a>(&'a [SourceProblem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "  {}", problem.to_string().replace('\n', "\n  "))?;
        }
        Ok(())
    }
}
