//! CSV as the reports download it (RFC 4180), safe to open in a spreadsheet: shared by the
//! server's reports and the fleet orchestrator's, so both neutralise formulas the same way.

use std::borrow::Cow;

/// A field a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, carriage return
/// first) gets a leading `'`, so a device's hostname cannot inject one; numbers stay numbers.
fn neutral(field: &str) -> Cow<'_, str> {
    let risky = field.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && field.parse::<f64>().is_err() {
        format!("'{field}").into()
    } else {
        field.into()
    }
}

/// Renders rows as RFC 4180 CSV: quotes every field that needs it, and neutralises formulas.
pub fn to_csv(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut out = header.join(",");
    out.push_str("\r\n");
    out.push_str(&csv_rows(rows));
    out
}

/// The rows of [`to_csv`] without its header: a report sent in parts renders each part so.
pub fn csv_rows(rows: impl Iterator<Item = Vec<String>>) -> String {
    fn field(s: &str) -> String {
        let s = &neutral(s);
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    }
    let mut out = String::new();
    for row in rows {
        out.push_str(&row.iter().map(|s| field(s)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{neutral, to_csv};

    #[test]
    fn formula_starts_are_neutralised_and_numbers_kept() {
        for risky in ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutral(risky), format!("'{risky}"));
        }
        for kept in ["-10", "+5", "sw1", "", "C9500-32C"] {
            assert_eq!(neutral(kept), kept);
        }
    }

    #[test]
    fn fields_needing_it_are_quoted() {
        let rows = [vec!["a,b".to_string(), "say \"hi\"".to_string(), "=x".to_string()]];
        assert_eq!(to_csv(&["h1", "h2", "h3"], rows.into_iter()), "h1,h2,h3\r\n\"a,b\",\"say \"\"hi\"\"\",'=x\r\n");
    }
}
