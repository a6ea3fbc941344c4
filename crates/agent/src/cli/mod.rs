//! Device CLI grammar engine: pure, I/O-free parsing of one command line in the style of the
//! network devices of the seed documents (IOS / NX-OS).
//!
//! The command tree is data: each command is one pattern string (`license smart register idtoken
//! <token:WORD> [force]`) with a builder that turns the matched keywords and typed values (a
//! [`Bag`]) into a resolved [`Command`]. Patterns are merged into one tree per mode, built once by
//! [`Cli::new`]. The engine then gives every device behaviour for free: unique-prefix
//! abbreviation, `?` help, the `% Invalid input` marker, ambiguity and incompleteness errors.
//! Nothing here reads or writes: the caller owns the terminal, the state and the clock.

mod grammar;
#[cfg(test)]
mod tests;

pub use grammar::*;

use std::fmt;
use std::net::IpAddr;

/// The type of a typed argument of a pattern (`<name:KIND>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    /// One word (`WORD`); a quoted string is accepted too.
    Word,
    /// The rest of the line, verbatim (`LINE`).
    Line,
    /// A quoted string with spaces, or a bare word (`STRING`); quotes are removed.
    Quoted,
    /// An integer within an inclusive range (`<1-65535>`).
    Int(u64, u64),
    /// An `http://` or `https://` URL (`URL`).
    Url,
    /// An IPv4 or IPv6 address (`IP`).
    Ip,
    /// An IP address or a host name (`HOST`).
    Host,
    /// A time of day `HH:MM:SS` (`TIME`).
    Time,
    /// A month name, full or abbreviated to 3+ letters (`MONTH`).
    Month,
}

impl ArgKind {
    fn from_spec(spec: &str) -> ArgKind {
        match spec {
            "WORD" => ArgKind::Word,
            "LINE" => ArgKind::Line,
            "STRING" => ArgKind::Quoted,
            "URL" => ArgKind::Url,
            "IP" => ArgKind::Ip,
            "HOST" => ArgKind::Host,
            "TIME" => ArgKind::Time,
            "MONTH" => ArgKind::Month,
            range => {
                let (lo, hi) = range.split_once('-').unwrap_or_else(|| panic!("bad argument kind {range}"));
                ArgKind::Int(lo.parse().expect("range start"), hi.parse().expect("range end"))
            }
        }
    }

    /// The label `?` shows for the argument, as devices print it.
    pub fn label(&self) -> String {
        match self {
            ArgKind::Word => "WORD".into(),
            ArgKind::Line => "LINE".into(),
            ArgKind::Quoted => "STRING".into(),
            ArgKind::Int(lo, hi) => format!("<{lo}-{hi}>"),
            ArgKind::Url => "URL".into(),
            ArgKind::Ip => "A.B.C.D".into(),
            ArgKind::Host => "Hostname or A.B.C.D".into(),
            ArgKind::Time => "hh:mm:ss".into(),
            ArgKind::Month => "MONTH".into(),
        }
    }

    /// Parses one token (or, for `LINE`, the rest of the line). The error is the character
    /// offset inside the token of the first wrong character, for the `^` marker.
    fn parse(&self, tok: &Token, rest: &str) -> Result<Value, usize> {
        let t = tok.text.as_str();
        let bad_char = |ok: &dyn Fn(char) -> bool| t.chars().position(|c| !ok(c));
        match *self {
            ArgKind::Word | ArgKind::Quoted => Ok(Value::Text(t.to_string())),
            ArgKind::Line => Ok(Value::Text(rest.trim_end().to_string())),
            _ if tok.quoted => Err(0),
            ArgKind::Int(lo, hi) => {
                if let Some(p) = bad_char(&|c| c.is_ascii_digit()) {
                    return Err(p);
                }
                match t.parse::<u64>() {
                    Ok(n) if (lo..=hi).contains(&n) => Ok(Value::Int(n)),
                    _ => Err(0),
                }
            }
            ArgKind::Url => {
                let lower = t.to_ascii_lowercase();
                for scheme in ["https://", "http://"] {
                    if lower.starts_with(scheme) && lower.len() > scheme.len() {
                        let host = &t[scheme.len()..];
                        return match host.chars().position(|c| c.is_whitespace() || c == '"') {
                            Some(p) => Err(scheme.len() + p),
                            None => Ok(Value::Text(t.to_string())),
                        };
                    }
                }
                // First character where the token leaves both schemes.
                let p = ["https://", "http://"]
                    .iter()
                    .map(|s| lower.chars().zip(s.chars()).take_while(|(a, b)| a == b).count())
                    .max()
                    .unwrap_or(0);
                Err(p.min(t.chars().count().saturating_sub(1)))
            }
            ArgKind::Ip => t.parse::<IpAddr>().map(Value::Ip).map_err(|_| 0),
            ArgKind::Host => {
                if let Ok(ip) = t.parse::<IpAddr>() {
                    return Ok(Value::Ip(ip));
                }
                if let Some(p) = bad_char(&|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
                    return Err(p);
                }
                if t.starts_with(['-', '.']) {
                    return Err(0);
                }
                Ok(Value::Text(t.to_string()))
            }
            ArgKind::Time => {
                let parts: Vec<&str> = t.split(':').collect();
                let limits = [23u8, 59, 59];
                let mut out = [0u8; 3];
                let mut offset = 0;
                for (i, limit) in limits.iter().enumerate() {
                    let part = parts.get(i).copied().unwrap_or("");
                    let ok = !part.is_empty() && part.len() <= 2 && part.bytes().all(|b| b.is_ascii_digit());
                    match part.parse::<u8>() {
                        Ok(n) if ok && n <= *limit => out[i] = n,
                        _ => return Err(offset.min(t.len().saturating_sub(1))),
                    }
                    offset += part.len() + 1;
                }
                if parts.len() != 3 {
                    return Err(offset - 1);
                }
                Ok(Value::Time(out[0], out[1], out[2]))
            }
            ArgKind::Month => {
                let lower = t.to_ascii_lowercase();
                let hits: Vec<usize> = MONTHS
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| lower.len() >= 3 && m.to_ascii_lowercase().starts_with(&lower))
                    .map(|(i, _)| i)
                    .collect();
                match hits.as_slice() {
                    [i] => Ok(Value::Month(*i as u8 + 1)),
                    _ => Err(0),
                }
            }
        }
    }
}

/// Full month names, January first.
pub const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A typed argument value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Int(u64),
    Ip(IpAddr),
    /// Hours, minutes, seconds.
    Time(u8, u8, u8),
    /// 1 = January.
    Month(u8),
}

impl Value {
    /// The value as text (IP addresses and numbers are rendered).
    pub fn to_text(&self) -> String {
        match self {
            Value::Text(s) => s.clone(),
            Value::Int(n) => n.to_string(),
            Value::Ip(ip) => ip.to_string(),
            Value::Time(h, m, s) => format!("{h:02}:{m:02}:{s:02}"),
            Value::Month(m) => MONTHS[*m as usize - 1].to_string(),
        }
    }
}

/// What a builder receives: the canonical keywords matched, in order, the typed arguments, and
/// the whole line in canonical form.
#[derive(Clone, Debug, Default)]
pub struct Bag {
    words: Vec<&'static str>,
    args: Vec<(&'static str, Value, usize)>,
    /// The line in canonical form: full keywords, values as given (quoted when they hold spaces).
    canonical: Vec<String>,
}

impl Bag {
    /// Whether the keyword was on the line (`force`, `no`, ...).
    pub fn has(&self, keyword: &str) -> bool {
        self.words.contains(&keyword)
    }
    /// The keyword that followed `keyword`: picks among alternatives (`renew {id|auth}`).
    pub fn after(&self, keyword: &str) -> Option<&'static str> {
        let i = self.words.iter().position(|w| *w == keyword)?;
        self.words.get(i + 1).copied()
    }
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.args.iter().find(|(n, _, _)| *n == name).map(|(_, v, _)| v)
    }
    /// An argument as text; empty when absent (patterns guarantee presence).
    pub fn text(&self, name: &str) -> String {
        self.value(name).map(Value::to_text).unwrap_or_default()
    }
    pub fn opt_text(&self, name: &str) -> Option<String> {
        self.value(name).map(Value::to_text)
    }
    /// The matched line in canonical form, without a leading `no`: what a running configuration
    /// keeps of lines the agent does not interpret (`ip name-server …`).
    pub fn canonical(&self) -> String {
        let skip = usize::from(self.words.first() == Some(&"no"));
        self.canonical[skip..].join(" ")
    }
    pub fn int(&self, name: &str) -> Option<u64> {
        match self.value(name)? {
            Value::Int(n) => Some(*n),
            Value::Month(m) => Some(u64::from(*m)),
            _ => None,
        }
    }
}

/// A builder refuses a combination of values by naming the argument to point the marker at.
pub type Reject = &'static str;
/// Turns a matched pattern into a resolved command.
pub type Build<C> = fn(&Bag) -> Result<C, Reject>;

/// The result of parsing one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed<C> {
    /// Blank line or a `!` comment: nothing to do.
    Empty,
    /// A fully resolved command.
    Command(C),
    /// `?` help: (name, help text) pairs, in display order; see [`format_help`].
    Help(Vec<(String, String)>),
}

/// A parse error; `Display` renders it as the device prints it after echoing the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CliError {
    /// `% Invalid input detected at '^' marker.`; `pos` is the character column in `line`.
    Invalid { line: String, pos: usize },
    /// `% Ambiguous command:  "line"`.
    Ambiguous { line: String },
    /// `% Incomplete command.`
    Incomplete,
    /// `% Unrecognized command` (a `?` on a prefix nothing starts with).
    Unrecognized,
}

impl CliError {
    /// The message line(s) without the echoed input: for an interactive terminal, where the
    /// line is already on screen after a prompt `prompt_width` characters wide.
    pub fn render_after_prompt(&self, prompt_width: usize) -> String {
        match self {
            CliError::Invalid { pos, .. } => {
                format!("{}^\n% Invalid input detected at '^' marker.", " ".repeat(prompt_width + pos))
            }
            other => other.to_string(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Invalid { line, pos } => {
                write!(f, "{line}\n{}^\n% Invalid input detected at '^' marker.", " ".repeat(*pos))
            }
            CliError::Ambiguous { line } => write!(f, "% Ambiguous command:  \"{line}\""),
            CliError::Incomplete => write!(f, "% Incomplete command."),
            CliError::Unrecognized => write!(f, "% Unrecognized command"),
        }
    }
}

impl std::error::Error for CliError {}

/// An output filter after `|`, as on IOS (`show running-config | include license`); the
/// pattern is matched as plain text, case-sensitive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    /// Lines holding the pattern.
    Include(String),
    /// Lines not holding it.
    Exclude(String),
    /// From the first line holding it.
    Begin(String),
    /// Sections (a top-level line and the indented lines under it) with a line holding it.
    Section(String),
}

impl Filter {
    const KINDS: [&'static str; 4] = ["begin", "exclude", "include", "section"];

    /// Splits `line` at its first `|` outside quotes: the command, and the filter after it.
    pub fn split(line: &str) -> Result<(&str, Option<Filter>), CliError> {
        let mut quoted = false;
        for (i, c) in line.char_indices() {
            match c {
                '"' => quoted = !quoted,
                '|' if !quoted => return Filter::parse(line, i + 1).map(|f| (&line[..i], Some(f))),
                _ => {}
            }
        }
        Ok((line, None))
    }

    fn parse(line: &str, start: usize) -> Result<Filter, CliError> {
        let rest = line[start..].trim_start();
        let at = line.len() - rest.len();
        let (word, pattern) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let pattern = pattern.trim().to_string();
        let hits: Vec<&str> = Filter::KINDS.into_iter().filter(|k| starts_with_ci(k, word)).collect();
        match hits.as_slice() {
            _ if word.is_empty() => Err(CliError::Incomplete),
            [] => Err(invalid(line, at)),
            [_] if pattern.is_empty() => Err(CliError::Incomplete),
            ["begin"] => Ok(Filter::Begin(pattern)),
            ["exclude"] => Ok(Filter::Exclude(pattern)),
            ["include"] => Ok(Filter::Include(pattern)),
            [_] => Ok(Filter::Section(pattern)),
            _ => Err(CliError::Ambiguous { line: line.trim().to_string() }),
        }
    }

    /// The lines of `text` the filter lets through.
    pub fn apply(&self, text: &str) -> String {
        let lines: Vec<&str> = text.lines().collect();
        let kept: Vec<&str> = match self {
            Filter::Include(p) => lines.into_iter().filter(|l| l.contains(p.as_str())).collect(),
            Filter::Exclude(p) => lines.into_iter().filter(|l| !l.contains(p.as_str())).collect(),
            Filter::Begin(p) => lines.into_iter().skip_while(|l| !l.contains(p.as_str())).collect(),
            Filter::Section(p) => {
                let mut sections: Vec<Vec<&str>> = Vec::new();
                for line in lines {
                    match sections.last_mut() {
                        Some(section) if line.starts_with(char::is_whitespace) => section.push(line),
                        _ => sections.push(vec![line]),
                    }
                }
                sections.into_iter().filter(|s| s.iter().any(|l| l.contains(p.as_str()))).flatten().collect()
            }
        };
        kept.iter().map(|l| format!("{l}\n")).collect()
    }
}

/// Renders help pairs the way devices align them: two spaces, the name padded to the widest,
/// two spaces, the help text.
pub fn format_help(items: &[(String, String)]) -> String {
    let width = items.iter().map(|(n, _)| n.chars().count()).max().unwrap_or(0);
    items
        .iter()
        .map(|(n, h)| if h.is_empty() { format!("  {n}") } else { format!("  {n:width$}  {h}") })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One token of an input line; `start` is a byte offset into the line.
#[derive(Clone, Debug)]
struct Token {
    text: String,
    start: usize,
    quoted: bool,
}

/// Splits a line into words; `"..."` is one token with its quotes removed. An unterminated
/// quote is an error at the quote.
fn tokenize(line: &str) -> Result<Vec<Token>, usize> {
    let mut out = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut text = String::new();
        if c == '"' {
            chars.next();
            let mut closed = false;
            for (_, c) in chars.by_ref() {
                if c == '"' {
                    closed = true;
                    break;
                }
                text.push(c);
            }
            if !closed {
                return Err(start);
            }
            out.push(Token { text, start, quoted: true });
        } else {
            while let Some(&(_, c)) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                text.push(c);
                chars.next();
            }
            out.push(Token { text, start, quoted: false });
        }
    }
    Ok(out)
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum NodeKind {
    Keyword(&'static str),
    Arg(&'static str, ArgKind),
}

struct Node<C> {
    kind: NodeKind,
    help: &'static str,
    children: Vec<usize>,
    build: Option<Build<C>>,
}

/// A command tree with several roots (one per mode); nodes live in an arena so that a subtree
/// can be shared (`do` in configuration modes reaches the exec commands).
pub struct Tree<C> {
    nodes: Vec<Node<C>>,
}

/// Resolves help text for a pattern element: (previous element, element) → text.
pub type HelpFn = fn(&str, &str) -> &'static str;

impl<C> Default for Tree<C> {
    fn default() -> Self {
        Tree { nodes: Vec::new() }
    }
}

impl<C> Tree<C> {
    /// A new, empty root.
    pub fn root(&mut self) -> usize {
        self.push(NodeKind::Keyword(""), "")
    }

    fn push(&mut self, kind: NodeKind, help: &'static str) -> usize {
        self.nodes.push(Node { kind, help, children: Vec::new(), build: None });
        self.nodes.len() - 1
    }

    /// Adds a keyword child `keyword` of `parent` that shares the children of `target`.
    pub fn link(&mut self, parent: usize, keyword: &'static str, help: &'static str, target: usize) {
        let id = self.push(NodeKind::Keyword(keyword), help);
        self.nodes[id].children = self.nodes[target].children.clone();
        self.nodes[parent].children.push(id);
    }

    /// Inserts a pattern under `root`. Syntax: keywords, `<name:KIND>` arguments, `{a|b}`
    /// alternatives, `[x]` optional parts. Panics on a malformed pattern or a command defined
    /// twice: both are programming errors caught by the tests.
    pub fn insert(&mut self, root: usize, pattern: &'static str, build: Build<C>, help: HelpFn) {
        let toks = pattern_tokens(pattern);
        let mut i = 0;
        let paths = expand(&toks, &mut i);
        assert_eq!(i, toks.len(), "unbalanced pattern {pattern}");
        for path in paths {
            let mut cur = root;
            let mut prev = "";
            for elem in path {
                let (kind, name) = match elem.strip_prefix('<').and_then(|e| e.strip_suffix('>')) {
                    Some(arg) => {
                        let (name, spec) = arg.split_once(':').unwrap_or_else(|| panic!("bad argument {elem}"));
                        (NodeKind::Arg(name, ArgKind::from_spec(spec)), name)
                    }
                    None => (NodeKind::Keyword(elem), elem),
                };
                let found = self.nodes[cur].children.iter().copied().find(|&c| self.nodes[c].kind == kind);
                cur = match found {
                    Some(c) => c,
                    None => {
                        // Arguments are looked up as `<name>`, keywords as themselves.
                        let key = if elem.starts_with('<') { format!("<{name}>") } else { name.to_string() };
                        let id = self.push(kind, help(prev, &key));
                        self.nodes[cur].children.push(id);
                        id
                    }
                };
                prev = name;
            }
            assert!(self.nodes[cur].build.is_none(), "command defined twice: {pattern}");
            self.nodes[cur].build = Some(build);
        }
    }

    /// The nodes that have no help text (the tests require none).
    pub fn missing_help(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.help.is_empty() && n.kind != NodeKind::Keyword(""))
            .map(|n| format!("{:?}", n.kind))
            .collect()
    }

    /// Parses one line from the mode whose root is `root`.
    pub fn parse(&self, root: usize, line: &str) -> Result<Parsed<C>, CliError> {
        let trimmed = line.trim_end();
        if let Some(body) = trimmed.strip_suffix('?') {
            // Errors echo the whole line as typed, `?` included.
            return self.help(root, body).map(Parsed::Help).map_err(|e| match e {
                CliError::Invalid { pos, .. } => CliError::Invalid { line: trimmed.to_string(), pos },
                CliError::Ambiguous { .. } => CliError::Ambiguous { line: trimmed.to_string() },
                other => other,
            });
        }
        let toks = tokenize(trimmed).map_err(|p| invalid(trimmed, p))?;
        if toks.is_empty() || toks[0].text.starts_with('!') && !toks[0].quoted {
            return Ok(Parsed::Empty);
        }
        let (node, bag) = self.walk(root, trimmed, &toks)?;
        let build = self.nodes[node].build.ok_or(CliError::Incomplete)?;
        build(&bag).map(Parsed::Command).map_err(|arg| {
            let pos = bag.args.iter().find(|(n, _, _)| *n == arg).map_or(0, |(_, _, p)| *p);
            invalid(trimmed, pos)
        })
    }

    /// Follows the tokens from `root`; returns the node reached and what was matched.
    fn walk(&self, root: usize, line: &str, toks: &[Token]) -> Result<(usize, Bag), CliError> {
        let mut cur = root;
        let mut bag = Bag::default();
        for tok in toks {
            let children = &self.nodes[cur].children;
            let keyword = |c: &usize| match self.nodes[*c].kind {
                NodeKind::Keyword(k) if !tok.quoted => Some((*c, k)),
                _ => None,
            };
            let exact = children.iter().filter_map(keyword).find(|(_, k)| k.eq_ignore_ascii_case(&tok.text));
            let prefixed: Vec<(usize, &'static str)> =
                children.iter().filter_map(keyword).filter(|(_, k)| starts_with_ci(k, &tok.text)).collect();
            let chosen = match (exact, prefixed.as_slice()) {
                (Some(hit), _) => Some(hit),
                (None, [hit]) => Some(*hit),
                (None, [_, _, ..]) => return Err(CliError::Ambiguous { line: line.trim().to_string() }),
                _ => None,
            };
            if let Some((c, k)) = chosen {
                bag.words.push(k);
                bag.canonical.push(k.to_string());
                cur = c;
                continue;
            }
            // Arguments, in declaration order; remember how far each candidate got.
            let mut furthest = 0;
            let mut matched = None;
            for &c in children {
                match self.nodes[c].kind {
                    NodeKind::Keyword(k) => furthest = furthest.max(common_prefix_ci(k, &tok.text)),
                    NodeKind::Arg(name, kind) => match kind.parse(tok, &line[tok.start..]) {
                        Ok(v) => {
                            matched = Some((c, name, v, kind));
                            break;
                        }
                        Err(p) => furthest = furthest.max(p + usize::from(tok.quoted)),
                    },
                }
            }
            let Some((c, name, value, kind)) = matched else {
                let col = line[..tok.start].chars().count() + furthest;
                return Err(CliError::Invalid { line: line.to_string(), pos: col });
            };
            let text = value.to_text();
            bag.canonical.push(if tok.quoted { format!("\"{text}\"") } else { text });
            bag.args.push((name, value, tok.start));
            cur = c;
            if kind == ArgKind::Line {
                break;
            }
        }
        Ok((cur, bag))
    }

    /// `?` help for the text before the `?`.
    fn help(&self, root: usize, body: &str) -> Result<Vec<(String, String)>, CliError> {
        let toks = tokenize(body).map_err(|p| invalid(body, p))?;
        let partial = !body.is_empty() && !body.ends_with(char::is_whitespace);
        let (done, last) = match (partial, toks.split_last()) {
            (true, Some((last, done))) => (done, Some(last)),
            _ => (toks.as_slice(), None),
        };
        let (node, _) = self.walk(root, body, done)?;
        let mut args = Vec::new();
        let mut words = Vec::new();
        for &c in &self.nodes[node].children {
            let n = &self.nodes[c];
            match (&n.kind, last) {
                (NodeKind::Keyword(k), None) => words.push((k.to_string(), n.help.to_string())),
                (NodeKind::Keyword(k), Some(t)) if !t.quoted && starts_with_ci(k, &t.text) => {
                    words.push((k.to_string(), n.help.to_string()))
                }
                // A partial value may still become valid: every argument is a candidate.
                (NodeKind::Arg(_, kind), _) => args.push((kind.label(), n.help.to_string())),
                _ => {}
            }
        }
        words.sort();
        args.extend(words);
        if last.is_none() && self.nodes[node].build.is_some() {
            args.push(("<cr>".to_string(), String::new()));
        }
        if args.is_empty() {
            return Err(CliError::Unrecognized);
        }
        Ok(args)
    }

    /// Tab completion of the last word of `line` (a partial keyword): each keyword it may
    /// become, as the whole line with every keyword written out (`sh lic` → `show license `),
    /// values kept as typed. None after a blank, in a value, or past what does not parse.
    pub fn complete(&self, root: usize, line: &str) -> Vec<String> {
        let Ok(toks) = tokenize(line) else { return Vec::new() };
        let Some((last, done)) = toks.split_last() else { return Vec::new() };
        if last.quoted || line.ends_with(char::is_whitespace) {
            return Vec::new();
        }
        let Ok((node, bag)) = self.walk(root, line, done) else { return Vec::new() };
        let mut keywords = bag.words.iter();
        let mut head = String::new();
        for tok in done {
            let keyword = !bag.args.iter().any(|(_, _, start)| *start == tok.start);
            match keyword.then(|| keywords.next()).flatten() {
                Some(k) => head.push_str(k),
                None if tok.quoted => head.push_str(&format!("\"{}\"", tok.text)),
                None => head.push_str(&tok.text),
            }
            head.push(' ');
        }
        let mut lines: Vec<String> = (self.nodes[node].children.iter())
            .filter_map(|&c| match self.nodes[c].kind {
                NodeKind::Keyword(k) if starts_with_ci(k, &last.text) => Some(format!("{head}{k} ")),
                _ => None,
            })
            .collect();
        lines.sort();
        lines
    }
}

fn invalid(line: &str, byte_pos: usize) -> CliError {
    CliError::Invalid { line: line.to_string(), pos: line[..byte_pos.min(line.len())].chars().count() }
}

fn starts_with_ci(word: &str, prefix: &str) -> bool {
    word.len() >= prefix.len() && word.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

fn common_prefix_ci(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).take_while(|(x, y)| x.eq_ignore_ascii_case(y)).count()
}

/// Splits a pattern into elements; `{ } [ ] |` stand alone.
fn pattern_tokens(pattern: &'static str) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in pattern.char_indices() {
        let special = "{}[]|".contains(c);
        if c.is_whitespace() || special {
            if let Some(s) = start.take() {
                out.push(&pattern[s..i]);
            }
            if special {
                out.push(&pattern[i..i + 1]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push(&pattern[s..]);
    }
    out
}

/// Expands a sequence of pattern elements into every concrete path, stopping at `|`, `}` or `]`.
fn expand(toks: &[&'static str], i: &mut usize) -> Vec<Vec<&'static str>> {
    let mut paths: Vec<Vec<&'static str>> = vec![Vec::new()];
    while let Some(&t) = toks.get(*i) {
        let options: Vec<Vec<&'static str>> = match t {
            "|" | "}" | "]" => break,
            "{" | "[" => {
                *i += 1;
                let mut opts = if t == "[" { vec![Vec::new()] } else { Vec::new() };
                loop {
                    opts.extend(expand(toks, i));
                    match toks.get(*i).copied() {
                        Some("|") => *i += 1,
                        Some("}") if t == "{" => break,
                        Some("]") if t == "[" => break,
                        other => panic!("unbalanced pattern at {other:?}"),
                    }
                }
                opts
            }
            word => vec![vec![word]],
        };
        *i += 1;
        paths = paths.iter().flat_map(|p| options.iter().map(move |o| p.iter().chain(o).copied().collect())).collect();
    }
    paths
}

/// Collects a pasted PEM certificate for `crypto pki authenticate`: the device reads lines
/// until a blank line, `quit`, or the `-----END CERTIFICATE-----` line. Pure: the caller feeds
/// the lines it reads.
#[derive(Clone, Debug, Default)]
pub struct PemCollector {
    lines: Vec<String>,
}

impl PemCollector {
    /// What the device prints before reading (seed 004).
    pub const PROMPT: [&'static str; 2] =
        ["Enter the base 64 encoded CA certificate.", "End with a blank line or the word \"quit\" on a line by itself"];

    /// Feeds one line; returns true when the input is complete.
    pub fn push(&mut self, line: &str) -> bool {
        let line = line.trim();
        if line.is_empty() || line == "quit" {
            return !self.lines.is_empty() || line == "quit";
        }
        self.lines.push(line.to_string());
        line.starts_with("-----END ")
    }

    /// The collected text, one line each, ending with a newline.
    pub fn text(&self) -> String {
        self.lines.iter().map(|l| format!("{l}\n")).collect()
    }
}
