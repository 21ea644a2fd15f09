//! The search query language.
//!
//! ```text
//! ransomware "lateral movement" -test beacon OR c2 severity:high tag:apt29
//! assignee:me created:>2026-01-01 ioc:1.2.3.4
//! ```
//!
//! Words and `"phrases"` must all match (AND); `OR` between two terms makes
//! either enough; `-term` excludes; `field:value` filters. A malformed query is
//! an error carrying the byte position of the problem.

use std::fmt;

use crate::{Category, Severity, Status, Timestamp, Tlp};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    Word(String),
    Phrase(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Before,
    After,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    Severity(Severity),
    Status(Status),
    Category(Category),
    Tag(String),
    AssigneeMe,
    Tlp(Tlp),
    Created(Cmp, Timestamp),
    /// An indicator in any written form; normalised when the query runs.
    Ioc(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clause {
    /// At least one of these terms (one term: that term).
    Any(Vec<Term>),
    Not(Term),
    Filter(Filter),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    pub clauses: Vec<Clause>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at position {position})")]
pub struct QueryError {
    /// Byte offset in the query where the problem is.
    pub position: usize,
    pub message: String,
}

fn err(position: usize, message: impl Into<String>) -> QueryError {
    QueryError { position, message: message.into() }
}

/// Longest query accepted, in bytes.
pub const MAX_QUERY: usize = 2000;
/// Most clauses in one query.
pub const MAX_CLAUSES: usize = 64;

enum Token {
    Term(Term),
    Not(Term),
    Or,
    Filter(Filter),
}

fn parse_filter(field: &str, value: &str, at: usize) -> Result<Filter, QueryError> {
    let vat = at + field.len() + 1;
    let bad = |what: &str| err(vat, format!("{field}: expected {what}"));
    Ok(match field {
        "severity" => Filter::Severity(Severity::parse(value).ok_or_else(|| bad("low, medium, high or critical"))?),
        "status" => Filter::Status(Status::parse(value).ok_or_else(|| bad("a status"))?),
        "category" => Filter::Category(Category::parse(value).ok_or_else(|| bad("a category"))?),
        "tlp" => Filter::Tlp(Tlp::parse(value).ok_or_else(|| bad("clear, green, amber, amber+strict or red"))?),
        "tag" => {
            let ok = (1..=64).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b));
            if !ok {
                return Err(bad("a tag"));
            }
            Filter::Tag(value.to_ascii_lowercase())
        }
        "assignee" if value == "me" => Filter::AssigneeMe,
        "assignee" => return Err(bad("me")),
        "ioc" if !value.is_empty() => Filter::Ioc(value.to_owned()),
        "ioc" => return Err(bad("an indicator")),
        "created" => {
            let (cmp, date) = if let Some(d) = value.strip_prefix('>') {
                (Cmp::After, d)
            } else if let Some(d) = value.strip_prefix('<') {
                (Cmp::Before, d)
            } else {
                return Err(bad("> or < and a date, e.g. created:>2026-01-01"));
            };
            let ts = Timestamp::parse_rfc3339(date)
                .or_else(|| Timestamp::parse_rfc3339(&format!("{date}T00:00:00Z")))
                .ok_or_else(|| bad("a date (YYYY-MM-DD) or an RFC 3339 time"))?;
            Filter::Created(cmp, ts)
        }
        other => {
            return Err(err(at, format!("unknown field {other}; fields: severity, status, category, tag, assignee, tlp, created, ioc")))
        }
    })
}

const FIELDS: &[&str] = &["severity", "status", "category", "tag", "assignee", "tlp", "created", "ioc"];

fn tokens(q: &str) -> Result<Vec<Token>, QueryError> {
    let mut out = Vec::new();
    let b = q.as_bytes();
    let mut i = 0;
    let space_at = |i: usize| q[i..].chars().next().filter(|c| c.is_whitespace()).map(char::len_utf8);
    while i < b.len() {
        if let Some(n) = space_at(i) {
            i += n;
            continue;
        }
        let start = i;
        let negated = b[i] == b'-' && i + 1 < b.len() && space_at(i + 1).is_none();
        if negated {
            i += 1;
        }
        let term = if b[i] == b'"' {
            let close = q[i + 1..].find('"').ok_or_else(|| err(i, "unterminated phrase"))? + i + 1;
            let text: String = q[i + 1..close].split_whitespace().collect::<Vec<_>>().join(" ");
            if text.is_empty() {
                return Err(err(i, "empty phrase"));
            }
            i = close + 1;
            Token::Term(Term::Phrase(text))
        } else {
            let end = q[i..].find(|c: char| c.is_whitespace()).map_or(q.len(), |e| e + i);
            let word = &q[i..end];
            if word.contains('"') {
                return Err(err(i + word.find('"').unwrap_or(0), "a quote inside a word"));
            }
            i = end;
            match word.split_once(':') {
                Some((field, value)) if FIELDS.contains(&field) => {
                    if negated {
                        return Err(err(start, "filters cannot be excluded"));
                    }
                    out.push(Token::Filter(parse_filter(field, value, start)?));
                    continue;
                }
                Some((field, value))
                    if !field.is_empty()
                        && field.bytes().all(|c| c.is_ascii_lowercase())
                        && !value.is_empty()
                        && !value.starts_with('/') =>
                {
                    return Err(err(start, format!("unknown field {field}; fields: {}", FIELDS.join(", "))));
                }
                _ => {}
            }
            if word == "OR" && !negated {
                out.push(Token::Or);
                continue;
            }
            Token::Term(Term::Word(word.to_owned()))
        };
        match term {
            Token::Term(t) if negated => out.push(Token::Not(t)),
            t => out.push(t),
        }
    }
    Ok(out)
}

/// Parses a query. Every failure names its position.
pub fn parse(q: &str) -> Result<Query, QueryError> {
    if q.len() > MAX_QUERY {
        return Err(err(MAX_QUERY, format!("the query is longer than {MAX_QUERY} bytes")));
    }
    if q.trim().is_empty() {
        return Err(err(0, "the query is empty"));
    }
    // A NUL or another control character has no place in a query, and the
    // full-text engines refuse some of them outright.
    if let Some((at, _)) = q.char_indices().find(|(_, c)| c.is_control() && !c.is_whitespace()) {
        return Err(err(at, "the query contains a control character"));
    }
    let toks = tokens(q)?;
    let mut clauses: Vec<Clause> = Vec::new();
    let mut pending_or = false;
    for (n, t) in toks.into_iter().enumerate() {
        match t {
            Token::Or => {
                let after_term = matches!(clauses.last(), Some(Clause::Any(_)));
                if !after_term || pending_or {
                    return Err(err(position_of_token(q, n), "OR must stand between two words or phrases"));
                }
                pending_or = true;
            }
            Token::Term(term) => {
                if pending_or {
                    if let Some(Clause::Any(group)) = clauses.last_mut() {
                        group.push(term);
                    }
                    pending_or = false;
                } else {
                    clauses.push(Clause::Any(vec![term]));
                }
            }
            other => {
                if pending_or {
                    return Err(err(position_of_token(q, n), "OR must stand between two words or phrases"));
                }
                clauses.push(match other {
                    Token::Not(t) => Clause::Not(t),
                    Token::Filter(f) => Clause::Filter(f),
                    Token::Or | Token::Term(_) => continue,
                });
            }
        }
    }
    if pending_or {
        return Err(err(q.trim_end().len(), "OR must stand between two words or phrases"));
    }
    if clauses.len() > MAX_CLAUSES {
        return Err(err(0, format!("at most {MAX_CLAUSES} terms and filters")));
    }
    Ok(Query { clauses })
}

/// The byte offset where the `n`-th whitespace-separated piece starts (for
/// error positions of tokens that carry none).
fn position_of_token(q: &str, n: usize) -> usize {
    let mut count = 0;
    let mut in_word = false;
    let mut in_phrase = false;
    for (i, c) in q.char_indices() {
        if c == '"' {
            if !in_word {
                if count == n {
                    return i;
                }
                count += 1;
                in_word = true;
            }
            in_phrase = !in_phrase;
            continue;
        }
        if c.is_whitespace() && !in_phrase {
            in_word = false;
        } else if !in_word {
            if count == n {
                return i;
            }
            count += 1;
            in_word = true;
        }
    }
    q.len()
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Word(w) => f.write_str(w),
            Term::Phrase(p) => write!(f, "\"{p}\""),
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Severity(s) => write!(f, "severity:{s}"),
            Filter::Status(s) => write!(f, "status:{s}"),
            Filter::Category(c) => write!(f, "category:{c}"),
            Filter::Tag(t) => write!(f, "tag:{t}"),
            Filter::AssigneeMe => f.write_str("assignee:me"),
            Filter::Tlp(t) => write!(f, "tlp:{t}"),
            Filter::Created(Cmp::After, t) => write!(f, "created:>{}", t.to_rfc3339()),
            Filter::Created(Cmp::Before, t) => write!(f, "created:<{}", t.to_rfc3339()),
            Filter::Ioc(v) => write!(f, "ioc:{v}"),
        }
    }
}

impl fmt::Display for Query {
    /// The canonical text of the query: parsing it gives the same query back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .clauses
            .iter()
            .map(|c| match c {
                Clause::Any(terms) => terms.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(" OR "),
                Clause::Not(t) => format!("-{t}"),
                Clause::Filter(flt) => flt.to_string(),
            })
            .collect();
        f.write_str(&parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_language() {
        let q = parse(r#"ransomware "lateral   movement" -test beacon OR c2 OR "cobalt strike" severity:high tag:APT29 assignee:me created:>2026-01-01 ioc:1.2.3.4 tlp:amber+strict"#)
            .expect("parses");
        assert_eq!(
            q.clauses,
            vec![
                Clause::Any(vec![Term::Word("ransomware".into())]),
                Clause::Any(vec![Term::Phrase("lateral movement".into())]),
                Clause::Not(Term::Word("test".into())),
                Clause::Any(vec![Term::Word("beacon".into()), Term::Word("c2".into()), Term::Phrase("cobalt strike".into())]),
                Clause::Filter(Filter::Severity(Severity::High)),
                Clause::Filter(Filter::Tag("apt29".into())),
                Clause::Filter(Filter::AssigneeMe),
                Clause::Filter(Filter::Created(Cmp::After, Timestamp::parse_rfc3339("2026-01-01T00:00:00Z").expect("date"))),
                Clause::Filter(Filter::Ioc("1.2.3.4".into())),
                Clause::Filter(Filter::Tlp(Tlp::AmberStrict)),
            ]
        );
        assert_eq!(parse(&q.to_string()), Ok(q));
        // URLs and IPv6 in plain words are words, not unknown fields.
        assert!(parse("http://evil.example 2001:db8::1 ioc:2001:db8::1").is_ok());
    }

    #[test]
    fn errors_carry_positions() {
        let cases: &[(&str, usize)] = &[
            ("", 0),
            ("   ", 0),
            ("ransom \"lateral", 7),
            ("severity:huge", 9),
            ("a created:yesterday", 10),
            ("OR a", 0),
            ("a OR", 4),
            ("a OR OR b", 5),
            ("a OR severity:high", 5),
            ("a\u{0}", 1),
            ("ok é\u{7f}", 5),
            ("colour:red", 0),
            ("-severity:high", 0),
            ("ab\"cd", 2),
            ("\"\"", 0),
        ];
        for (q, pos) in cases {
            let e = parse(q).expect_err(q);
            assert_eq!(e.position, *pos, "{q:?}: {e}");
        }
        assert!(parse(&"a ".repeat(65)).is_err());
        assert!(parse(&"a".repeat(MAX_QUERY + 1)).is_err());
    }

    fn term() -> impl Strategy<Value = Term> {
        prop_oneof![
            "[a-z0-9]{1,10}".prop_filter("not OR", |w| w != "OR").prop_map(Term::Word),
            "[a-z0-9]{1,6}( [a-z0-9]{1,6}){0,3}".prop_map(Term::Phrase),
        ]
    }

    fn clause() -> impl Strategy<Value = Clause> {
        prop_oneof![
            prop::collection::vec(term(), 1..4).prop_map(Clause::Any),
            term().prop_map(Clause::Not),
            prop::sample::select(Severity::ALL.to_vec()).prop_map(|s| Clause::Filter(Filter::Severity(s))),
            prop::sample::select(Status::ALL.to_vec()).prop_map(|s| Clause::Filter(Filter::Status(s))),
            "[a-z0-9_]{1,12}".prop_map(|t| Clause::Filter(Filter::Tag(t))),
            Just(Clause::Filter(Filter::AssigneeMe)),
            (0i64..4_000_000_000_000).prop_map(|ms| Clause::Filter(Filter::Created(Cmp::After, Timestamp(ms)))),
        ]
    }

    proptest! {
        #[test]
        fn never_panics(q in "\\PC{0,120}") {
            let _ = parse(&q);
        }

        #[test]
        fn round_trips(clauses in prop::collection::vec(clause(), 1..10)) {
            let q = Query { clauses };
            prop_assert_eq!(parse(&q.to_string()), Ok(q.clone()), "{}", q);
        }

        #[test]
        fn error_positions_are_inside_the_query(q in "[a-z\" :>OR-]{0,40}") {
            if let Err(e) = parse(&q) {
                prop_assert!(e.position <= q.len());
            }
        }
    }
}
