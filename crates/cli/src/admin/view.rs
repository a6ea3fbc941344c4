//! Printing answers: aligned plain-text tables, `key: value` records, or the JSON as is.

use anyhow::{Context, Result};
use serde_json::Value;

/// A table column: header and the JSON field it shows.
pub type Col = (&'static str, &'static str);

/// How a command shows a successful answer (with `--json`, every JSON answer is printed whole).
#[derive(Debug, PartialEq)]
pub enum Show {
    /// The list under this key, one row per element.
    Table(&'static str, &'static [Col]),
    /// One object as aligned `key: value` lines.
    Record,
    /// Only this string field, for `$(...)` in scripts.
    Field(&'static str),
    /// Only the first field on stdout, as `Field`; the second, labelled, on stderr ([`note`]).
    Code(&'static str, &'static str),
    /// A pool's tag lines (with the lending view) and its substitutions.
    Licenses,
    /// The body verbatim (CSV reports).
    Text,
}

const TAG_LINES: &[Col] = &[
    ("TAG", "tag"),
    ("PURCHASED", "purchased_display"),
    ("IN USE", "in_use"),
    ("RESERVED", "reserved"),
    ("BALANCE", "balance"),
    ("STATUS", "status"),
];
const SUBSTITUTIONS: &[Col] = &[("REQUESTED", "requested"), ("FULFILLED BY", "fulfilled_by"), ("QUANTITY", "quantity")];

/// The text to print for an answer body.
pub fn render(show: &Show, body: &str, json: bool) -> Result<String> {
    let v: Value = match (show, body.trim()) {
        (Show::Text, _) | (_, "") => Value::Null,
        (_, text) => serde_json::from_str(text).context("the manager's answer is not JSON")?,
    };
    if json && *show != Show::Text {
        return Ok(serde_json::to_string_pretty(&v)? + "\n");
    }
    Ok(match show {
        Show::Text => body.to_owned(),
        Show::Table(key, cols) => table(list(&v, key)?, cols),
        Show::Record => record(&v),
        Show::Field(key) | Show::Code(key, _) => format!("{}\n", v[key].as_str().with_context(|| missing(key))?),
        Show::Licenses => {
            let mut out =
                format!("{} / {}: {}\n", cell(&v["smart_account"]), cell(&v["virtual_account"]), cell(&v["status"]));
            out += &table(list(&v, "licenses")?, TAG_LINES);
            let subs = list(&v, "substitutions").unwrap_or_default();
            if !subs.is_empty() {
                out += "\nSubstitutions:\n";
                out += &table(subs, SUBSTITUTIONS);
            }
            out
        }
    })
}

/// What goes to stderr beside the stdout text, so stdout stays pasteable: the second field of
/// [`Show::Code`], e.g. `Confirmation code: 17488c1f`.
pub fn note(show: &Show, body: &str) -> Result<Option<String>> {
    let Show::Code(_, key) = show else { return Ok(None) };
    let v: Value = serde_json::from_str(body).context("the manager's answer is not JSON")?;
    let value = v[key].as_str().with_context(|| missing(key))?;
    let mut label = key.replace('_', " ");
    label[..1].make_ascii_uppercase();
    Ok(Some(format!("{label}: {value}\n")))
}

fn missing(key: &str) -> String {
    format!("unexpected answer from the manager: no `{key}`")
}

fn list<'a>(v: &'a Value, key: &str) -> Result<&'a [Value]> {
    v[key].as_array().map(Vec::as_slice).with_context(|| missing(key))
}

/// Columns padded to their widest cell, two spaces apart, no trailing blanks.
pub fn table(rows: &[Value], cols: &[Col]) -> String {
    let header = cols.iter().map(|(h, _)| h.to_string()).collect();
    let lines: Vec<Vec<String>> =
        std::iter::once(header).chain(rows.iter().map(|r| cols.iter().map(|(_, k)| cell(&r[k])).collect())).collect();
    let widths: Vec<usize> =
        (0..cols.len()).map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for line in &lines {
        let padded: Vec<String> = line.iter().zip(&widths).map(|(c, w)| format!("{c:w$}")).collect();
        out += padded.join("  ").trim_end();
        out.push('\n');
    }
    out
}

/// An object as `key: value` lines with the values aligned.
pub fn record(v: &Value) -> String {
    let Value::Object(fields) = v else {
        return format!("{}\n", cell(v));
    };
    let width = fields.keys().map(|k| k.chars().count()).max().unwrap_or(0) + 1;
    fields.iter().map(|(k, v)| format!("{:width$} {}\n", format!("{k}:"), cell(v))).collect()
}

/// One value as table text: `-` for absent or empty, yes/no, lists comma-separated, usage
/// entries as `tag=count`. Control characters become spaces: hostnames and serial numbers
/// come from devices and must not reach the operator's terminal as escape sequences.
pub fn cell(v: &Value) -> String {
    let text = match v {
        Value::Null => String::new(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(", "),
        Value::Object(o) => match (o.get("tag"), o.get("count")) {
            (Some(tag), Some(count)) => format!("{}={}", cell(tag), cell(count)),
            _ => v.to_string(),
        },
    };
    match text.is_empty() {
        true => "-".to_owned(),
        false => text.replace(char::is_control, " "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_and_mark_missing_values() {
        let rows = [
            json!({ "name": "Default", "is_default": true, "description": "" }),
            json!({ "name": "Lab East", "is_default": false, "description": "bench\x1b[31m" }),
        ];
        let cols: &[Col] = &[("NAME", "name"), ("DEFAULT", "is_default"), ("DESCRIPTION", "description")];
        assert_eq!(
            table(&rows, cols),
            "NAME      DEFAULT  DESCRIPTION\n\
             Default   yes      -\n\
             Lab East  no       bench [31m\n"
        );
        assert_eq!(table(&[], cols), "NAME  DEFAULT  DESCRIPTION\n");
    }

    #[test]
    fn cells() {
        assert_eq!(cell(&json!([{ "tag": "dna", "count": 2 }, { "tag": "net", "count": 1 }])), "dna=2, net=1");
        assert_eq!(cell(&json!([])), "-");
        assert_eq!(cell(&json!(["a", "b"])), "a, b");
        assert_eq!(cell(&json!({ "x": 1 })), r#"{"x":1}"#);
    }

    #[test]
    fn license_view_shows_lending_and_substitutions() {
        let answer = json!({
            "smart_account": "example.com", "virtual_account": "Lab", "status": "Out Of Compliance",
            "licenses": [
                { "tag": "dna-advantage", "purchased_display": "12 (-10)", "in_use": 1, "reserved": 0, "balance": 1, "status": "In Compliance" },
                { "tag": "dna-essentials", "purchased_display": "0 (+10)", "in_use": 9, "reserved": 2, "balance": -1, "status": "Out Of Compliance" }
            ],
            "substitutions": [{ "requested": "dna-essentials", "fulfilled_by": "dna-advantage", "quantity": 10 }]
        });
        let out = render(&Show::Licenses, &answer.to_string(), false).unwrap();
        assert_eq!(
            out,
            "example.com / Lab: Out Of Compliance\n\
             TAG             PURCHASED  IN USE  RESERVED  BALANCE  STATUS\n\
             dna-advantage   12 (-10)   1       0         1        In Compliance\n\
             dna-essentials  0 (+10)    9       2         -1       Out Of Compliance\n\
             \n\
             Substitutions:\n\
             REQUESTED       FULFILLED BY   QUANTITY\n\
             dna-essentials  dna-advantage  10\n"
        );
        let json = render(&Show::Licenses, &answer.to_string(), true).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), answer);
    }

    #[test]
    fn records_fields_and_text() {
        let answer = r#"{"max_uses":null,"token":"abc","uses":0}"#;
        assert_eq!(render(&Show::Field("token"), answer, false).unwrap(), "abc\n");
        let code = r#"{"authorization_code":"<specificPLR/>","confirmation_code":"17488c1f"}"#;
        let show = Show::Code("authorization_code", "confirmation_code");
        assert_eq!(render(&show, code, false).unwrap(), "<specificPLR/>\n");
        assert_eq!(note(&show, code).unwrap().as_deref(), Some("Confirmation code: 17488c1f\n"));
        assert_eq!(note(&Show::Record, code).unwrap(), None);
        assert_eq!(render(&Show::Record, answer, false).unwrap(), "max_uses: -\ntoken:    abc\nuses:     0\n");
        assert_eq!(render(&Show::Text, "a,b\n1,2\n", true).unwrap(), "a,b\n1,2\n");
        assert!(render(&Show::Table("rows", &[]), "{}", false).is_err());
        assert!(render(&Show::Record, "<html>", false).is_err());
    }
}
