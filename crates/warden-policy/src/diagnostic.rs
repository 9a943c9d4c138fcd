//! Cedar's `miette` diagnostics rendered as [`SourceProblem`]s: file, line,
//! column, message, hint and the underlined source line, as plain text
//! (no terminal colours, no `miette` graphical handler).

use miette::Diagnostic;

use crate::error::SourceProblem;

/// The problems `diag` reports about `text`, the contents of `file`: the
/// diagnostic itself, then any related ones (Cedar puts the second and
/// later schema parse errors there).
pub(crate) fn problems(file: &str, text: &str, diag: &dyn Diagnostic) -> Vec<SourceProblem> {
    let mut out = vec![problem(file, text, diag)];
    if let Some(related) = diag.related() {
        out.extend(related.map(|d| problem(file, text, d)));
    }
    out
}

/// One diagnostic, positioned at its first label.
pub(crate) fn problem(file: &str, text: &str, diag: &dyn Diagnostic) -> SourceProblem {
    let mut problem = SourceProblem::in_file(file, diag.to_string());
    problem.help = diag.help().map(|h| h.to_string());
    let label = diag.labels().and_then(|mut labels| labels.next());
    if let Some(label) = label
        && let Some(at) = Position::of(text, label.offset(), label.len())
    {
        problem.line = Some(at.line);
        problem.column = Some(at.column);
        problem.excerpt = Some(at.excerpt(label.label()));
    }
    problem
}

/// Where a span starts, and the line it starts on.
struct Position<'a> {
    line: usize,
    column: usize,
    line_text: &'a str,
    /// Characters of the span on its first line (at least 1).
    width: usize,
}

impl<'a> Position<'a> {
    /// `None` when `offset` is not a character boundary of `text` (a label
    /// into some other text than the one we hold).
    fn of(text: &'a str, offset: usize, len: usize) -> Option<Self> {
        let before = text.get(..offset)?;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let rest = text.get(offset..)?;
        let line_end = offset + rest.find('\n').unwrap_or(rest.len());
        let in_line = text.get(offset..line_end.min(offset.saturating_add(len)))?;
        Some(Self {
            line: before.matches('\n').count() + 1,
            column: text.get(line_start..offset)?.chars().count() + 1,
            line_text: text.get(line_start..line_end)?.trim_end_matches('\r'),
            width: in_line.chars().count().max(1),
        })
    }

    /// The line with the span underlined, rustc-style.
    fn excerpt(&self, label: Option<&str>) -> String {
        let number = self.line.to_string();
        let gutter = " ".repeat(number.len());
        let pad = " ".repeat(self.column.saturating_sub(1));
        let marks = "^".repeat(self.width);
        let note = label.map(|l| format!(" {l}")).unwrap_or_default();
        format!(
            "{gutter} |\n{number} | {}\n{gutter} | {pad}{marks}{note}",
            self.line_text
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Position;

    #[test]
    fn positions_are_one_based_and_in_characters() {
        let text = "a\nbé cd\nx";
        let at = Position::of(text, text.find("cd").unwrap(), 2).unwrap();
        assert_eq!((at.line, at.column, at.line_text, at.width), (2, 4, "bé cd", 2));
        assert_eq!(at.excerpt(Some("here")), "  |\n2 | bé cd\n  |    ^^ here");
    }

    #[test]
    fn a_span_past_the_line_is_cut_at_its_end() {
        let at = Position::of("ab\ncd", 1, 10).unwrap();
        assert_eq!((at.line, at.column, at.width), (1, 2, 1));
    }

    #[test]
    fn an_offset_outside_the_text_has_no_position() {
        assert!(Position::of("abc", 7, 1).is_none());
        assert!(Position::of("é", 1, 1).is_none());
    }
}
