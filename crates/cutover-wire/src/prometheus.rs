//! The Prometheus text format as the gateway writes it: label values with a backslash, a
//! double quote and a line feed written as `\\`, `\"` and `\n`, escaped while the page
//! is written (no copy of the value per series: `/metrics` is scraped often), and each
//! series' `# HELP` / `# TYPE` header.

use std::fmt;
use std::fmt::Write;

/// `value` as it must appear between the quotes of a label: `format!("{{route=\"{}\"}}",
/// LabelValue(&name))`. Every label value of the page goes through it, whatever the
/// configuration allows, so that one odd name cannot break the page for every scraper.
#[derive(Debug, Clone, Copy)]
pub struct LabelValue<'a>(pub &'a str);

impl fmt::Display for LabelValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['\\', '"', '\n']) {
            f.write_str(&rest[..at])?;
            f.write_str(match rest.as_bytes()[at] {
                b'\\' => "\\\\",
                b'"' => "\\\"",
                _ => "\\n",
            })?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

/// Appends a series' `# HELP` and `# TYPE` lines to `out`. Writing into a `String`
/// cannot fail.
pub fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backslash_quote_and_line_feed_are_escaped_and_nothing_else() {
        let cases = [
            ("default", "default"),
            ("", ""),
            ("a\\b", "a\\\\b"),
            ("say \"hi\"", "say \\\"hi\\\""),
            ("two\nlines", "two\\nlines"),
            ("\\\"\n", "\\\\\\\"\\n"),
            ("tab\there, cr\r, é", "tab\there, cr\r, é"),
        ];
        for (value, escaped) in cases {
            assert_eq!(LabelValue(value).to_string(), escaped, "{value:?}");
        }
    }
}
