//! Reading a TOML file into typed settings, with errors that name the place:
//! `file:line:column: key: reason`. The config and the holiday calendar are both read this way,
//! so neither depends on the other for it.

use std::path::{Path, PathBuf};

/// A configuration the gateway refuses, naming where and why: `file:line:column: key: reason`
/// (the position when the key or the syntax error is found in the file, else `file: key:
/// reason`).
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// Where in the file: TOML's own position for a syntax or type error, else the value of
    /// `key` (or the table nearest to it that is there). `None` when the file cannot be read
    /// or the key is not in it.
    pub position: Option<Position>,
    /// Dotted key of the offending setting (empty when the file itself is the problem).
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

/// A place in a config file: 1-based line and column (the column counts characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1, in characters.
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` in `text` (clamped to its end and to a character boundary).
    pub fn of(text: &str, offset: usize) -> Position {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Position {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(Position { line, column }) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl ConfigError {
    /// A problem at `key` of `file` (its position is found by [`ConfigError::locate`]).
    pub fn new(file: &Path, key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            position: None,
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// The same problem, at the position of its key in `text` (the file's contents), unless
    /// it has a position already.
    pub fn located_in(mut self, text: &str) -> Self {
        if self.position.is_none() {
            self.position = position_of_key(text, &self.key);
        }
        self
    }

    /// The same problem, at the position of its key in its file, read again (unless it has a
    /// position already, or the file cannot be read).
    pub fn locate(self) -> Self {
        if self.position.is_some() || self.key.is_empty() {
            return self;
        }
        match std::fs::read_to_string(&self.file) {
            Ok(text) => self.located_in(&text),
            Err(_) => self,
        }
    }
}

/// One step of a dotted key: a table key or an array index.
#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    /// A quoted key: never split or joined.
    Quoted(String),
    Index(usize),
}

/// `departments.tax.timeout_ms`, `auth.clients[0].scopes`, `matters."tax.registration".kind`.
fn steps(key: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut chars = key.chars().peekable();
    let mut word = String::new();
    let flush = |word: &mut String, steps: &mut Vec<Step>| {
        if !word.is_empty() {
            steps.push(Step::Key(std::mem::take(word)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '.' => flush(&mut word, &mut steps),
            '"' => {
                flush(&mut word, &mut steps);
                let mut quoted = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => quoted.extend(chars.next()),
                        '"' => break,
                        c => quoted.push(c),
                    }
                }
                steps.push(Step::Quoted(quoted));
            }
            '[' => {
                flush(&mut word, &mut steps);
                let digits: String = chars.by_ref().take_while(|c| *c != ']').collect();
                match digits.parse() {
                    Ok(i) => steps.push(Step::Index(i)),
                    Err(_) => return steps,
                }
            }
            c => word.push(c),
        }
    }
    flush(&mut word, &mut steps);
    steps
}

/// Where the value at `key` starts in the TOML `text`, or the table nearest to it that is
/// there; `None` when the text does not parse or not even the first step is in it. A key
/// named by serde (unquoted) may hold dots: when a step is not a key of its table, it is tried
/// joined with the steps after it.
fn position_of_key(text: &str, key: &str) -> Option<Position> {
    use toml::de::{DeTable, DeValue};
    let document = DeTable::parse(text).ok()?;
    let steps = steps(key);
    let mut table: &DeTable<'_> = document.get_ref();
    let mut found: Option<std::ops::Range<usize>> = None;
    let mut value: Option<&DeValue<'_>> = None;
    let mut i = 0;
    while i < steps.len() {
        let next = match (&steps[i], value) {
            (Step::Index(n), Some(DeValue::Array(array))) => {
                i += 1;
                array.get(*n)
            }
            (Step::Index(_), _) => None,
            (Step::Quoted(name), None) => {
                i += 1;
                table.get(name.as_str())
            }
            (Step::Key(_), None) => {
                // The longest run of unquoted steps that is a key of this table.
                let run = steps[i..]
                    .iter()
                    .take_while(|s| matches!(s, Step::Key(_)))
                    .count();
                (1..=run).rev().find_map(|n| {
                    let name = steps[i..i + n]
                        .iter()
                        .map(|s| match s {
                            Step::Key(k) => k.as_str(),
                            _ => "",
                        })
                        .collect::<Vec<_>>()
                        .join(".");
                    table.get(name.as_str()).inspect(|_| i += n)
                })
            }
            (Step::Key(_) | Step::Quoted(_), Some(_)) => None,
        };
        let Some(next) = next else { break };
        found = Some(next.span());
        match next.get_ref() {
            DeValue::Table(inner) => {
                table = inner;
                value = None;
            }
            other => value = Some(other),
        }
    }
    found.map(|span| Position::of(text, span.start))
}

/// Deserialize TOML, naming the dotted key of the first problem.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, ConfigError> {
    let at = |span: Option<std::ops::Range<usize>>| span.map(|s| Position::of(text, s.start));
    let de = toml::Deserializer::parse(text).map_err(|e| ConfigError {
        position: at(e.span()),
        ..ConfigError::new(path, "", e.message().trim_end())
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let key = if key == "." { String::new() } else { key };
        let inner = e.into_inner();
        ConfigError {
            position: at(inner.span()),
            ..ConfigError::new(path, key, inner.message().trim_end())
        }
        .located_in(text)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "catalogue = \"c\"\n[server]\nlisten = \"x\"\n\n[departments.tax]\ntimeout_ms = 5\n[departments.tax.tls]\nca = \"q\"\n[[auth.clients]]\nid = \"a\"\n[[auth.clients]]\nid = \"b\"\nscopes = [\"x\", \"y\"]\n[matters.\"tax.registration\"]\nname = \"登记\"\n";

    fn at(key: &str) -> Option<(usize, usize)> {
        position_of_key(TEXT, key).map(|p| (p.line, p.column))
    }

    #[test]
    fn a_key_is_found_at_its_value_or_the_nearest_table_that_is_there() {
        assert_eq!(at("server.listen"), Some((3, 10)));
        assert_eq!(at("departments.tax.timeout_ms"), Some((6, 14)));
        assert_eq!(
            at("departments.tax.tls"),
            Some((7, 1)),
            "a table: its header"
        );
        assert_eq!(
            at("departments.tax.tls.client_cert"),
            Some((7, 1)),
            "absent: its table"
        );
        assert_eq!(at("auth.clients[1].scopes[1]"), Some((13, 16)));
        assert_eq!(at("auth.clients[1]"), Some((11, 1)));
        assert_eq!(at("matters.\"tax.registration\".name"), Some((15, 8)));
        assert_eq!(
            at("matters.tax.registration.name"),
            Some((15, 8)),
            "serde's unquoted path"
        );
        assert_eq!(
            at("admin.operators"),
            None,
            "not even the first step is there"
        );
        assert_eq!(at(""), None);
    }

    #[test]
    fn columns_count_characters_and_errors_print_file_line_column_key_reason() {
        let text = "name = \"登记中心\"\nx = 1\n";
        assert_eq!(Position::of(text, text.find("x").unwrap()).column, 1);
        assert_eq!(Position::of(text, 10), Position { line: 1, column: 9 });
        let error = ConfigError::new(Path::new("g.toml"), "x", "bad").located_in(text);
        assert_eq!(error.to_string(), "g.toml:2:5: x: bad");
        let unplaced = ConfigError::new(Path::new("g.toml"), "y", "missing").located_in(text);
        assert_eq!(unplaced.to_string(), "g.toml: y: missing");
        let syntax = parse_toml::<toml::Table>(Path::new("g.toml"), "a = \n").unwrap_err();
        assert!(syntax.to_string().starts_with("g.toml:1:5: "), "{syntax}");
    }
}
