//! Text for a terminal: whatever a stored string or a server's answer
//! holds, what `warden` prints can never move the cursor, clear a line or
//! split a table row.

use std::fmt::Write as _;

/// Longest text printed for one value, in characters.
const MAX_CHARS: usize = 1000;

/// `text` with every control character escaped (`\n`, `\t`, `\r`,
/// `\u{1b}` …, a backslash as `\\`), cut to a printable length.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_CHARS));
    for c in text.chars().take(MAX_CHARS) {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(printable("plain élan"), "plain élan");
        assert_eq!(printable("a\r\x1b[2Kb\nc\td"), "a\\r\\u{1b}[2Kb\\nc\\td");
        assert_eq!(printable("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(printable("back\\slash"), "back\\\\slash");
        assert_eq!(printable(&"x".repeat(5000)).len(), MAX_CHARS);
    }
}
