//! Diagnostics as resources produce them, and their protocol form.
//!
//! Every message here may end up in a terminal or a CI log, so nothing that builds one may include a password.

use crate::proto::tfplugin6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// What a diagnostic is about, for callers that treat some kinds differently (validation lets a value that
/// is not known yet pass; configuration does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiagnosticKind {
    #[default]
    Other,
    /// A value Terraform only knows after apply.
    NotKnownYet,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub kind: DiagnosticKind,
    pub summary: String,
    pub detail: String,
    /// Top-level attribute the diagnostic is about, so Terraform points at the right line of configuration.
    pub attribute: Option<String>,
}

impl Diagnostic {
    pub fn error(summary: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            kind: DiagnosticKind::Other,
            summary: summary.into(),
            detail: detail.into(),
            attribute: None,
        }
    }

    pub fn warning(summary: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(summary, detail)
        }
    }

    pub fn of_kind(mut self, kind: DiagnosticKind) -> Self {
        self.kind = kind;
        self
    }

    pub fn on_attribute(mut self, attribute: impl Into<String>) -> Self {
        self.attribute = Some(attribute.into());
        self
    }

    pub fn attribute_error(
        attribute: &str,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self::error(summary, detail).on_attribute(attribute)
    }
}

/// What most resource operations return on failure: one or more diagnostics, at least one an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn into_proto(self) -> Vec<tfplugin6::Diagnostic> {
        self.0.into_iter().map(to_proto).collect()
    }

    /// Errors as one `Result`: `Ok(())` when nothing is an error (warnings are dropped by the caller's choice).
    pub fn into_result(self) -> Result<(), Diagnostics> {
        if self.has_errors() { Err(self) } else { Ok(()) }
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(diagnostic: Diagnostic) -> Self {
        Self(vec![diagnostic])
    }
}

fn to_proto(d: Diagnostic) -> tfplugin6::Diagnostic {
    use tfplugin6::attribute_path::{Step, step::Selector};
    tfplugin6::Diagnostic {
        severity: match d.severity {
            Severity::Error => tfplugin6::diagnostic::Severity::Error as i32,
            Severity::Warning => tfplugin6::diagnostic::Severity::Warning as i32,
        },
        summary: d.summary,
        detail: d.detail,
        attribute: d.attribute.map(|name| tfplugin6::AttributePath {
            steps: vec![Step {
                selector: Some(Selector::AttributeName(name)),
            }],
        }),
    }
}
