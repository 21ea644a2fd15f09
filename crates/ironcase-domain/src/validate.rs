//! Field-level validation errors, and the small value types whose only
//! constructor checks them.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError { field: field.to_owned(), message: message.into() });
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn one(field: &str, message: impl Into<String>) -> Self {
        let mut e = Self::default();
        e.push(field, message);
        e
    }
    /// `Ok(())` when nothing was pushed.
    pub fn into_result(self) -> Result<(), Self> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
}

/// Characters that change how text around them is shown without showing
/// themselves: bidirectional embeddings, overrides, isolates and marks
/// (`"\u{202e}txt.exe"` shows as `exe.txt`), zero-width characters and the
/// byte-order mark. A name or a title has no use for them.
pub fn is_invisible(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// Trimmed single-line text of bounded length.
pub fn text(field: &str, raw: &str, min: usize, max: usize, errs: &mut ValidationErrors) -> String {
    let t = raw.trim();
    let n = t.chars().count();
    if n < min {
        errs.push(field, format!("must be at least {min} characters"));
    } else if n > max || raw.chars().count() > max {
        // As sent, too: the OpenAPI document bounds the raw string.
        errs.push(field, format!("must be at most {max} characters"));
    } else if t.contains(['\n', '\r']) || has_control(t) {
        errs.push(field, "must be a single line without control characters");
    } else if t.chars().any(is_invisible) {
        errs.push(field, "must not contain invisible or text-direction characters");
    }
    t.to_owned()
}

/// Multi-line text of bounded length (descriptions, comments).
pub fn long_text(field: &str, raw: &str, max: usize, errs: &mut ValidationErrors) -> String {
    if raw.chars().count() > max {
        errs.push(field, format!("must be at most {max} characters"));
    } else if has_control(raw) {
        errs.push(field, "must not contain control characters");
    }
    raw.to_owned()
}

/// An e-mail address, lower-cased. Deliberately simple: one `@`, a dot in the
/// domain (or `localhost`), no spaces.
pub fn email(field: &str, raw: &str, errs: &mut ValidationErrors) -> String {
    let e = raw.trim().to_lowercase();
    let ok = e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && match e.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && (domain == "localhost" || (domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')))
            }
            None => false,
        };
    if !ok {
        errs.push(field, "must be an e-mail address");
    }
    e
}

/// A URL-safe organisation slug: 2–63 of `a-z 0-9 -`, not starting or ending with `-`.
pub fn slug(field: &str, raw: &str, errs: &mut ValidationErrors) -> String {
    let ok = (2..=63).contains(&raw.len())
        && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !raw.starts_with('-')
        && !raw.ends_with('-');
    if !ok {
        errs.push(field, "must be 2-63 characters of a-z, 0-9 and '-', not starting or ending with '-'");
    }
    raw.to_owned()
}

/// Passwords (ASVS 4.0.3 V2.1, NIST SP 800-63B): at least 12 characters, at
/// most 1024 bytes (argon2's input bound), no composition rules, and not
/// common. Common is what zxcvbn, which carries 30,000 common passwords and
/// the most used names and words in the binary, guesses in fewer than 10^8
/// tries (score below 3): a listed password, with digits or symbols added,
/// in l33t, reversed, a keyboard walk or a repeat. Only the first 100
/// characters are judged (zxcvbn's time grows with length; 100 characters
/// that are not common are enough).
pub fn password(field: &str, raw: &str, errs: &mut ValidationErrors) {
    if raw.chars().count() < 12 {
        errs.push(field, "must be at least 12 characters");
    } else if raw.len() > 1024 {
        errs.push(field, "must be at most 1024 bytes");
    } else {
        let head: String = raw.chars().take(100).collect();
        let judged = zxcvbn::zxcvbn(&head, &[]);
        if u8::from(judged.score()) < 3 {
            let why = judged.feedback().and_then(|f| f.warning()).map(|w| format!(" ({w})")).unwrap_or_default();
            errs.push(field, format!("is too common or too easy to guess{why}; a few uncommon words make a good password"));
        }
    }
}

/// Tags: at most 32, each 1–64 characters of `a-z 0-9 _ - . :`, lower-cased and de-duplicated.
pub fn tags(field: &str, raw: &[String], errs: &mut ValidationErrors) -> Vec<String> {
    if raw.len() > 32 {
        errs.push(field, "at most 32 tags");
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for t in raw {
        let t = t.trim().to_lowercase();
        let ok = (1..=64).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.:".contains(&b));
        if !ok {
            errs.push(field, "each tag must be 1-64 characters of a-z, 0-9, '_', '-', '.', ':'");
            return Vec::new();
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        let mut e = ValidationErrors::default();
        assert_eq!(email("e", " Admin@LocalHost ", &mut e), "admin@localhost");
        assert!(e.is_empty());
        for bad in ["", "a", "a@", "@b.c", "a b@c.d", "a@b", "a@.b", "a@b@c.d"] {
            let mut e = ValidationErrors::default();
            email("e", bad, &mut e);
            assert!(!e.is_empty(), "{bad} accepted");
        }
    }

    #[test]
    fn common_passwords_are_refused() {
        for bad in ["password1234", "123456789012", "qwertyuiop123", "P@ssw0rd2024!", "iloveyou1234", "aaaaaaaaaaaa", "abcdefghijkl"] {
            let mut e = ValidationErrors::default();
            password("p", bad, &mut e);
            assert!(!e.is_empty(), "{bad} accepted");
        }
        for good in ["correct horse battery staple", "tangerine-ocelot-viaduct", "Vq7#mZ2r!pLx9"] {
            let mut e = ValidationErrors::default();
            password("p", good, &mut e);
            assert!(e.is_empty(), "{good} refused: {e:?}");
        }
    }

    #[test]
    fn tags_are_normalised() {
        let mut e = ValidationErrors::default();
        let t = tags("tags", &["Ransomware".into(), "ransomware".into(), "apt:29".into()], &mut e);
        assert!(e.is_empty());
        assert_eq!(t, vec!["ransomware", "apt:29"]);
        tags("tags", &["has space".into()], &mut e);
        assert_eq!(e.0.len(), 1);
    }
}
