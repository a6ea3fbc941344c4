//! Checks on operator input, shared by the REST API and the device protocol so that one rule
//! produces one message everywhere.

/// A rejected input: which field and why, in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

impl Invalid {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Invalid { field, message: message.into() }
    }
}

/// Largest quantity accepted in one license deposit, transfer or usage report.
pub const MAX_COUNT: i64 = 1_000_000;
/// Longest display name, virtual account name or entitlement tag.
pub const MAX_NAME: usize = 128;
/// Longest free-text description.
pub const MAX_DESCRIPTION: usize = 512;

/// A smart account domain such as `example.com`.
pub fn domain(value: &str) -> Result<String, Invalid> {
    let v = value.trim().to_ascii_lowercase();
    let ok_chars = v.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if v.is_empty() || v.len() > 253 || !ok_chars || !v.contains('.') || v.starts_with('.') || v.ends_with('.') {
        return Err(Invalid::new(
            "domain",
            format!("'{}' is not a domain name (letters, digits, '-' and '.', like example.com)", shorten(value)),
        ));
    }
    Ok(v)
}

/// A name shown to people: non-empty, printable, at most `max` characters.
pub fn text(field: &'static str, value: &str, max: usize) -> Result<String, Invalid> {
    let v = value.trim();
    if v.is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    optional_text(field, v, max)
}

/// Like [`text`] but may be empty.
pub fn optional_text(field: &'static str, value: &str, max: usize) -> Result<String, Invalid> {
    let v = value.trim();
    if v.chars().count() > max {
        return Err(Invalid::new(field, format!("is longer than {max} characters")));
    }
    if v.chars().any(char::is_control) {
        return Err(Invalid::new(field, "must not contain control characters"));
    }
    Ok(v.to_string())
}

/// A quantity of licenses: at least 1, at most [`MAX_COUNT`].
pub fn count(field: &'static str, value: i64) -> Result<i64, Invalid> {
    if !(1..=MAX_COUNT).contains(&value) {
        return Err(Invalid::new(field, format!("must be between 1 and {MAX_COUNT}, got {value}")));
    }
    Ok(value)
}

/// A usage count reported by a device: 0 (stop using) up to [`MAX_COUNT`].
pub fn usage(field: &'static str, value: i64) -> Result<i64, Invalid> {
    if !(0..=MAX_COUNT).contains(&value) {
        return Err(Invalid::new(field, format!("must be between 0 and {MAX_COUNT}, got {value}")));
    }
    Ok(value)
}

fn shorten(value: &str) -> String {
    let mut s: String = value.chars().take(40).collect();
    if value.chars().count() > 40 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        assert_eq!(domain(" Example.COM ").unwrap(), "example.com");
        for bad in ["", "nodot", "a b.com", ".x.com", "x.com.", &"a".repeat(300)] {
            assert!(domain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn texts_and_counts() {
        assert!(text("name", "  ", 10).is_err());
        assert!(text("name", "abcdefghijk", 10).is_err());
        assert!(text("name", "a\u{7}b", 10).is_err());
        assert_eq!(text("name", " ok ", 10).unwrap(), "ok");
        assert!(count("count", 0).is_err());
        assert!(count("count", -5).is_err());
        assert!(count("count", MAX_COUNT + 1).is_err());
        assert_eq!(usage("count", 0).unwrap(), 0);
    }
}
