//! Indicators of compromise: their types, how each type's values are checked
//! and normalised (so that one indicator has one stored form however it was
//! written), and extraction of every indicator from free text.
//!
//! Normalisation refangs first (`hxxp`, `[.]`, `(dot)`, `[@]`, …), then per type:
//! domains lower-cased and IDNA-encoded, IPv6 in RFC 5952 form, CIDRs reduced to
//! their network address, hashes lower-case with the type checked against the
//! length, CVE and ASN upper-cased, registry roots spelled out.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use regex::Regex;

use crate::incident::string_enum;

string_enum!(IocType {
    Ipv4 = "ipv4",
    Ipv6 = "ipv6",
    Cidr = "cidr",
    Domain = "domain",
    Url = "url",
    Email = "email",
    Md5 = "md5",
    Sha1 = "sha1",
    Sha256 = "sha256",
    Sha512 = "sha512",
    Filename = "filename",
    FilePath = "file_path",
    RegistryKey = "registry_key",
    UserAgent = "user_agent",
    Asn = "asn",
    Cve = "cve",
});

/// Why a value is not a valid indicator of its type; names the type's rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {kind}: {rule}")]
pub struct IocError {
    pub kind: IocType,
    pub rule: String,
}

impl IocType {
    /// The rule a value of this type must follow, as told to a client.
    pub fn rule(self) -> &'static str {
        match self {
            IocType::Ipv4 => "four decimal octets 0-255 without leading zeros, e.g. 192.0.2.1",
            IocType::Ipv6 => "an IPv6 address, e.g. 2001:db8::1",
            IocType::Cidr => "an IPv4 or IPv6 network with a prefix length, e.g. 192.0.2.0/24",
            IocType::Domain => "a domain of at least two labels of letters, digits and '-', each 1-63 characters, 253 at most",
            IocType::Url => "an absolute URL with a scheme and a host, e.g. https://example.com/path",
            IocType::Email => "local@domain with a valid domain",
            IocType::Md5 => "32 hexadecimal digits",
            IocType::Sha1 => "40 hexadecimal digits",
            IocType::Sha256 => "64 hexadecimal digits",
            IocType::Sha512 => "128 hexadecimal digits",
            IocType::Filename => "a file name of 1-255 characters without '/' or '\\'",
            IocType::FilePath => "an absolute Windows or POSIX path, at most 4096 characters",
            IocType::RegistryKey => {
                "a key under HKEY_LOCAL_MACHINE, HKEY_CURRENT_USER, HKEY_CLASSES_ROOT, HKEY_USERS or HKEY_CURRENT_CONFIG (or HKLM, HKCU, …)"
            }
            IocType::UserAgent => "1-1024 printable characters",
            IocType::Asn => "an autonomous system number, e.g. AS13335",
            IocType::Cve => "CVE-YYYY-NNNN (four or more digits)",
        }
    }

    fn error(self) -> IocError {
        IocError { kind: self, rule: self.rule().to_owned() }
    }
}

/// Undoes the usual ways of defanging an indicator so it cannot be clicked.
pub fn refang(s: &str) -> String {
    static SCHEME: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)\b(h[xt]{2}p(s?)|fxp)(\[:\]|:)//"));
    static DOT: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)\s?[\[\(\{](?:\.|dot)[\]\)\}]\s?"));
    static AT: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)\s?[\[\(\{](?:@|at)[\]\)\}]\s?"));
    static COLON: LazyLock<Regex> = LazyLock::new(|| re(r"[\[\(\{]:[\]\)\}]"));
    static SLASH: LazyLock<Regex> = LazyLock::new(|| re(r"[\[\(\{](/+)[\]\)\}]"));
    let s = s.replace("[://]", "://").replace("[:]//", "://");
    let s = SCHEME.replace_all(&s, |c: &regex::Captures<'_>| {
        let scheme = c[1].to_ascii_lowercase();
        let scheme = if scheme.starts_with('f') { "ftp".to_owned() } else { format!("http{}", &c[2]) };
        format!("{scheme}://")
    });
    let s = DOT.replace_all(&s, ".");
    let s = AT.replace_all(&s, "@");
    let s = COLON.replace_all(&s, ":");
    SLASH.replace_all(&s, "$1").into_owned()
}

fn re(pattern: &str) -> Regex {
    // Every pattern here is a literal checked by the tests; failing to compile
    // one is a programming error caught on the first test run.
    Regex::new(pattern).unwrap_or_else(|e| panic!("bad built-in pattern {pattern}: {e}"))
}

/// Checks `raw` as an indicator of type `kind` and returns its one normal form.
pub fn normalize(kind: IocType, raw: &str) -> Result<String, IocError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed.len() > 8192 {
        return Err(kind.error());
    }
    let fanged = refang(trimmed);
    let s = fanged.as_str();
    let out = match kind {
        IocType::Ipv4 => s.parse::<Ipv4Addr>().ok().map(|a| a.to_string()),
        IocType::Ipv6 => s.trim_start_matches('[').trim_end_matches(']').parse::<Ipv6Addr>().ok().map(|a| a.to_string()),
        IocType::Cidr => cidr(s),
        IocType::Domain => domain(s),
        IocType::Url => url(s),
        IocType::Email => email(s),
        IocType::Md5 | IocType::Sha1 | IocType::Sha256 | IocType::Sha512 => return hash(kind, s),
        IocType::Filename => {
            let ok = (1..=255).contains(&s.chars().count()) && !s.contains(['/', '\\']) && !has_control(s);
            ok.then(|| s.to_owned())
        }
        IocType::FilePath => {
            let windows = s.len() > 2 && s.as_bytes()[0].is_ascii_alphabetic() && s.as_bytes().get(1..3) == Some(b":\\".as_slice());
            let unc = s.starts_with("\\\\");
            let posix = s.starts_with('/');
            ((windows || unc || posix) && s.len() <= 4096 && !has_control(s)).then(|| s.to_owned())
        }
        IocType::RegistryKey => registry(s),
        IocType::UserAgent => ((1..=1024).contains(&s.chars().count()) && !has_control(s)).then(|| s.to_owned()),
        IocType::Asn => {
            let digits = s.strip_prefix("AS").or_else(|| s.strip_prefix("as")).or_else(|| s.strip_prefix("As")).unwrap_or(s);
            match digits.parse::<u32>() {
                Ok(n) if n > 0 && digits.bytes().all(|b| b.is_ascii_digit()) => Some(format!("AS{n}")),
                _ => None,
            }
        }
        IocType::Cve => {
            static CVE: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)^cve-(\d{4})-(\d{4,7})$"));
            CVE.captures(s).and_then(|c| {
                let year: u32 = c[1].parse().ok()?;
                (1999..=2100).contains(&year).then(|| format!("CVE-{}-{}", &c[1], &c[2]))
            })
        }
    };
    out.ok_or_else(|| kind.error())
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

fn cidr(s: &str) -> Option<String> {
    let (addr, len) = s.split_once('/')?;
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let len: u32 = len.parse().ok()?;
    match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) if len <= 32 => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            Some(format!("{}/{len}", Ipv4Addr::from(u32::from(a) & mask)))
        }
        IpAddr::V6(a) if len <= 128 => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            Some(format!("{}/{len}", Ipv6Addr::from(u128::from(a) & mask)))
        }
        _ => None,
    }
}

fn domain(s: &str) -> Option<String> {
    let s = s.strip_suffix('.').unwrap_or(s);
    let ascii = idna::domain_to_ascii(s).ok()?;
    let labels: Vec<&str> = ascii.split('.').collect();
    let ok = ascii.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        // A dotted quad is an address, not a domain.
        && labels.last().is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()));
    ok.then_some(ascii)
}

fn url(s: &str) -> Option<String> {
    let u = url::Url::parse(s).ok()?;
    if !matches!(u.scheme(), "http" | "https" | "ftp" | "ftps" | "sftp" | "ws" | "wss" | "smb" | "file") {
        return None;
    }
    match u.host()? {
        url::Host::Domain(d) => {
            domain(d)?;
        }
        url::Host::Ipv4(_) | url::Host::Ipv6(_) => {}
    }
    Some(u.to_string())
}

fn email(s: &str) -> Option<String> {
    let (local, dom) = s.rsplit_once('@')?;
    let local_ok = (1..=64).contains(&local.len()) && !local.contains(char::is_whitespace) && !local.contains('@') && !has_control(local);
    if !local_ok {
        return None;
    }
    Some(format!("{}@{}", local.to_lowercase(), domain(dom)?))
}

fn hash(kind: IocType, s: &str) -> Result<String, IocError> {
    let h = s.to_ascii_lowercase();
    if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(kind.error());
    }
    let by_len = match h.len() {
        32 => Some(IocType::Md5),
        40 => Some(IocType::Sha1),
        64 => Some(IocType::Sha256),
        128 => Some(IocType::Sha512),
        _ => None,
    };
    match by_len {
        Some(k) if k == kind => Ok(h),
        Some(k) => Err(IocError { kind, rule: format!("{}; this value has the length of a {k}", kind.rule()) }),
        None => Err(kind.error()),
    }
}

fn registry(s: &str) -> Option<String> {
    const ROOTS: &[(&str, &str)] = &[
        ("HKLM", "HKEY_LOCAL_MACHINE"),
        ("HKCU", "HKEY_CURRENT_USER"),
        ("HKCR", "HKEY_CLASSES_ROOT"),
        ("HKU", "HKEY_USERS"),
        ("HKCC", "HKEY_CURRENT_CONFIG"),
    ];
    let s = s.replace('/', "\\");
    let (root, rest) = s.split_once('\\').unwrap_or((&s, ""));
    let upper = root.to_ascii_uppercase();
    let full = ROOTS.iter().find(|(short, long)| upper == *short || upper == *long).map(|(_, long)| *long)?;
    let rest = rest.trim_end_matches('\\');
    if has_control(rest) || s.len() > 4096 {
        return None;
    }
    Some(if rest.is_empty() { full.to_owned() } else { format!("{full}\\{rest}") })
}

/// One indicator found in text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub kind: IocType,
    /// The normal form.
    pub value: String,
    /// As it stood in the text (after refanging).
    pub raw: String,
}

/// Extensions that make `name.ext` a file name rather than a domain.
const FILE_EXTENSIONS: &[&str] = &[
    "exe", "dll", "sys", "scr", "bat", "cmd", "ps1", "vbs", "vbe", "js", "jse", "hta", "lnk", "msi", "jar", "py", "sh", "elf", "bin",
    "dat", "tmp", "log", "txt", "csv", "pdf", "doc", "docx", "docm", "xls", "xlsx", "xlsm", "ppt", "pptx", "rtf", "iso", "img", "vhd",
    "rar", "7z", "gz", "tar", "cab", "dmp", "evtx", "pcap", "pcapng", "html", "htm", "php", "aspx", "jpg", "jpeg", "png", "gif", "eml",
    "msg", "one",
];

/// Most indicators one text yields: past it, extraction stops (the rest of a
/// larger text is not read), so one request's work is bounded.
pub const MAX_EXTRACTED: usize = 10_000;

/// Every indicator in `text`, defanged or not, each once (by type and normal
/// form), in order of first appearance, at most [`MAX_EXTRACTED`]. A URL's
/// host is reported as well. Linear in the text: each match is checked
/// against the spans taken so far by one ordered look-up, and against the
/// indicators found by one hash look-up.
pub fn extract(text: &str) -> Vec<Found> {
    static PATTERNS: LazyLock<Vec<(IocType, Regex)>> = LazyLock::new(|| {
        vec![
            (IocType::Url, re(r#"(?i)\b(?:https?|ftps?|sftp|wss?|smb)://[^\s<>"'`]+"#)),
            (IocType::Email, re(r"(?i)\b[a-z0-9._%+\-]+@(?:[a-z0-9\-]+\.)+[a-z]{2,63}\b")),
            (
                IocType::RegistryKey,
                re(
                    r#"(?i)\b(?:HKLM|HKCU|HKCR|HKU|HKCC|HKEY_(?:LOCAL_MACHINE|CURRENT_USER|CLASSES_ROOT|USERS|CURRENT_CONFIG))\\[^\s"'<>]+"#,
                ),
            ),
            (IocType::FilePath, re(r#"(?i)\b[a-z]:\\[^\s"'<>|*?]+|(?:^|\s)(/(?:[\w.\-]+/)+[\w.\-]+)"#)),
            (IocType::Cidr, re(r"\b(?:\d{1,3}\.){3}\d{1,3}/\d{1,2}\b")),
            (IocType::Ipv4, re(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")),
            (IocType::Ipv6, re(r"(?i)(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?:/\d{1,3})?")),
            (IocType::Sha512, re(r"(?i)\b[0-9a-f]{128}\b")),
            (IocType::Sha256, re(r"(?i)\b[0-9a-f]{64}\b")),
            (IocType::Sha1, re(r"(?i)\b[0-9a-f]{40}\b")),
            (IocType::Md5, re(r"(?i)\b[0-9a-f]{32}\b")),
            (IocType::Cve, re(r"(?i)\bCVE-\d{4}-\d{4,7}\b")),
            (IocType::Asn, re(r"\bAS\d{1,10}\b")),
            (IocType::Filename, re(&format!(r"(?i)\b[\w\-]+(?:\.[\w\-]+)*\.(?:{})\b", FILE_EXTENSIONS.join("|")))),
            (IocType::Domain, re(r"(?i)\b(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9\-]{0,62}\b")),
        ]
    });
    let text = refang(text);
    // Spans taken, start → end; they never overlap, so the one that starts
    // last before `e` is the only one that can reach past `s`.
    let mut taken: BTreeMap<usize, usize> = BTreeMap::new();
    let overlaps = |taken: &BTreeMap<usize, usize>, s: usize, e: usize| taken.range(..e).next_back().is_some_and(|(_, &end)| end > s);
    let mut found: Vec<(usize, Found)> = Vec::new();
    let mut seen: HashSet<(IocType, String)> = HashSet::new();
    let mut push = |found: &mut Vec<(usize, Found)>, at: usize, kind: IocType, raw: &str| {
        if let Ok(value) = normalize(kind, raw) {
            if seen.insert((kind, value.clone())) {
                found.push((at, Found { kind, value, raw: raw.to_owned() }));
            }
        }
    };
    'patterns: for (kind, pattern) in PATTERNS.iter() {
        for caps in pattern.captures_iter(&text) {
            if found.len() >= MAX_EXTRACTED {
                break 'patterns;
            }
            // The POSIX-path alternative captures the path without its leading space.
            let Some(m) = caps.get(1).or_else(|| caps.get(0)) else { continue };
            let raw = m.as_str().trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '}', '\'', '"']);
            let (start, end) = (m.start(), m.start() + raw.len());
            if raw.is_empty() || overlaps(&taken, start, end) {
                continue;
            }
            let mut kind = *kind;
            if kind == IocType::Ipv6 && (raw.matches(':').count() < 2 || raw.parse::<Ipv6Addr>().is_err()) {
                if let Some((addr, _)) = raw.split_once('/') {
                    if addr.parse::<Ipv6Addr>().is_ok() {
                        kind = IocType::Cidr;
                    } else {
                        continue;
                    }
                } else {
                    continue;
                }
            }
            if kind == IocType::Domain {
                let tld = raw.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
                if FILE_EXTENSIONS.contains(&tld.as_str()) {
                    kind = IocType::Filename;
                }
            }
            let before = found.len();
            push(&mut found, start, kind, raw);
            if found.len() > before || normalize(kind, raw).is_ok() {
                taken.insert(start, end);
            }
            if kind == IocType::Url {
                if let Ok(u) = url::Url::parse(raw) {
                    match u.host() {
                        Some(url::Host::Domain(d)) => push(&mut found, start, IocType::Domain, d),
                        Some(url::Host::Ipv4(a)) => push(&mut found, start, IocType::Ipv4, &a.to_string()),
                        Some(url::Host::Ipv6(a)) => push(&mut found, start, IocType::Ipv6, &a.to_string()),
                        None => {}
                    }
                }
            }
        }
    }
    found.sort_by_key(|(at, _)| *at);
    found.truncate(MAX_EXTRACTED);
    found.into_iter().map(|(_, f)| f).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use IocType::*;

    #[test]
    fn normal_forms() {
        let cases: &[(IocType, &str, &str)] = &[
            (Ipv4, "192.0.2.1", "192.0.2.1"),
            (Ipv4, " 192[.]0[.]2[.]1 ", "192.0.2.1"),
            (Ipv4, "192(.)0(.)2(.)1", "192.0.2.1"),
            (Ipv4, "192{.}0{.}2{.}1", "192.0.2.1"),
            (Ipv4, "10[dot]0[dot]0[dot]1", "10.0.0.1"),
            (Ipv6, "2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
            (Ipv6, "[2001:db8::1]", "2001:db8::1"),
            (Ipv6, "2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
            (Ipv6, "::FFFF:192.0.2.1", "::ffff:192.0.2.1"),
            (Cidr, "10.1.2.3/8", "10.0.0.0/8"),
            (Cidr, "192[.]168[.]1[.]0/24", "192.168.1.0/24"),
            (Cidr, "2001:db8::1/32", "2001:db8::/32"),
            (Cidr, "0.0.0.0/0", "0.0.0.0/0"),
            (Domain, "Example.COM", "example.com"),
            (Domain, "example[.]com", "example.com"),
            (Domain, "evil(dot)example(dot)org", "evil.example.org"),
            (Domain, "mail.example.com.", "mail.example.com"),
            (Domain, "bücher.example", "xn--bcher-kva.example"),
            (Domain, "ПРИМЕР.РФ", "xn--e1afmkfd.xn--p1ai"),
            (Url, "hxxp://evil[.]example/login", "http://evil.example/login"),
            (Url, "hXXps://Evil.Example:443/a?b=c", "https://evil.example/a?b=c"),
            (Url, "hxxps[://]evil[.]example/x", "https://evil.example/x"),
            (Url, "http[:]//198[.]51[.]100[.]7:8080/gate.php", "http://198.51.100.7:8080/gate.php"),
            (Url, "fxp://files.example/drop.zip", "ftp://files.example/drop.zip"),
            (Url, "https://bücher.example/", "https://xn--bcher-kva.example/"),
            (Email, "Alice[@]Example[.]com", "alice@example.com"),
            (Email, "bob(at)mail(dot)example(dot)org", "bob@mail.example.org"),
            (Email, "ceo@EXAMPLE.com", "ceo@example.com"),
            (Md5, "D41D8CD98F00B204E9800998ECF8427E", "d41d8cd98f00b204e9800998ecf8427e"),
            (Sha1, "da39a3ee5e6b4b0d3255bfef95601890afd80709", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
            (
                Sha256,
                "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            (Sha512, &"AB".repeat(64), &"ab".repeat(64)),
            (Filename, " invoice.pdf.exe ", "invoice.pdf.exe"),
            (FilePath, "C:\\Users\\Public\\svchost.exe", "C:\\Users\\Public\\svchost.exe"),
            (FilePath, "/tmp/.x/kworker", "/tmp/.x/kworker"),
            (FilePath, "\\\\fileserver\\share\\a.dll", "\\\\fileserver\\share\\a.dll"),
            (
                RegistryKey,
                "HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\",
                "HKEY_LOCAL_MACHINE\\Software\\Microsoft\\Windows\\CurrentVersion\\Run",
            ),
            (RegistryKey, "hkcu/Software/Evil", "HKEY_CURRENT_USER\\Software\\Evil"),
            (RegistryKey, "HKEY_USERS\\S-1-5-21", "HKEY_USERS\\S-1-5-21"),
            (UserAgent, " Mozilla/5.0 (compatible; EvilBot/1.0) ", "Mozilla/5.0 (compatible; EvilBot/1.0)"),
            (Asn, "as13335", "AS13335"),
            (Asn, "13335", "AS13335"),
            (Cve, "cve-2021-44228", "CVE-2021-44228"),
            (Cve, "CVE-2024-1234567", "CVE-2024-1234567"),
        ];
        for (kind, raw, want) in cases {
            assert_eq!(normalize(*kind, raw).as_deref(), Ok(*want), "{kind} {raw:?}");
        }
    }

    #[test]
    fn invalid_values_name_the_rule() {
        let cases: &[(IocType, &str)] = &[
            (Ipv4, "256.1.1.1"),
            (Ipv4, "01.2.3.4"),
            (Ipv4, "1.2.3"),
            (Ipv4, "example.com"),
            (Ipv6, "2001:db8::g"),
            (Ipv6, "1:2:3:4:5:6:7:8:9"),
            (Cidr, "10.0.0.0/33"),
            (Cidr, "10.0.0.0/"),
            (Cidr, "2001:db8::/129"),
            (Domain, "localhost"),
            (Domain, "-bad.example"),
            (Domain, "a..example"),
            (Domain, "1.2.3.4"),
            (Domain, &format!("{}.example", "a".repeat(64))),
            (Url, "evil.example/login"),
            (Url, "javascript:alert(1)"),
            (Url, "http://"),
            (Email, "no-at.example.com"),
            (Email, "a@localhost"),
            (Md5, "xyz"),
            (Md5, "d41d8cd98f00b204e9800998ecf8427"),
            (Sha256, "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
            (Filename, "a/b.exe"),
            (FilePath, "relative\\path"),
            (RegistryKey, "HKXX\\Software"),
            (Asn, "AS0"),
            (Asn, "AS99999999999"),
            (Cve, "CVE-21-44228"),
            (Cve, "CVE-2021-123"),
            (UserAgent, "   "),
        ];
        for (kind, raw) in cases {
            let e = normalize(*kind, raw).expect_err(raw);
            assert_eq!(e.kind, *kind);
            assert!(e.rule.starts_with(kind.rule()), "{kind}: {}", e.rule);
        }
        let e = normalize(Sha256, "da39a3ee5e6b4b0d3255bfef95601890afd80709").expect_err("sha1 length");
        assert!(e.rule.contains("sha1"), "{}", e.rule);
        assert_eq!(e.to_string(), format!("not a valid sha256: {}", e.rule));
    }

    #[test]
    fn extracts_every_indicator_from_a_realistic_report() {
        let report = r#"
Subject: [EXTERNAL] Incident 2026-118 — initial findings

At 03:12 UTC the EDR flagged powershell.exe on FIN-WS-042 spawning
C:\Users\jdoe\AppData\Roaming\upd\svchost.exe (SHA256 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08,
MD5 098f6bcd4621d373cade4e832627b4f6). The dropper was delivered by a phishing mail from
billing[@]invoices-secure[.]com linking to hxxps://invoices-secure[.]com/view?id=77, which redirected
to http[:]//198[.]51[.]100[.]23:8080/gate.php. Beaconing went to 203.0.113.9 and to
2001:DB8:0:0:0:0:0:BAD every 60s (10:30:00 is not an address); the C2 range is 203.0.113.0/24, hosted in AS64500.
Persistence: HKCU\Software\Microsoft\Windows\CurrentVersion\Run\Updater.
The actor exploited CVE-2021-44228 and cve-2023-4966 on citrix.example.org. Payload staged at /tmp/.cache/kworkerd.
Attachment: Invoice_7781.docm. Second-stage hash: da39a3ee5e6b4b0d3255bfef95601890afd80709.
"#;
        let found = extract(report);
        let has = |kind: IocType, value: &str| found.iter().any(|f| f.kind == kind && f.value == value);
        let expected: &[(IocType, &str)] = &[
            (FilePath, "C:\\Users\\jdoe\\AppData\\Roaming\\upd\\svchost.exe"),
            (Sha256, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
            (Md5, "098f6bcd4621d373cade4e832627b4f6"),
            (Email, "billing@invoices-secure.com"),
            (Url, "https://invoices-secure.com/view?id=77"),
            (Domain, "invoices-secure.com"),
            (Url, "http://198.51.100.23:8080/gate.php"),
            (Ipv4, "198.51.100.23"),
            (Ipv4, "203.0.113.9"),
            (Ipv6, "2001:db8::bad"),
            (Cidr, "203.0.113.0/24"),
            (Asn, "AS64500"),
            (RegistryKey, "HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\Updater"),
            (Cve, "CVE-2021-44228"),
            (Cve, "CVE-2023-4966"),
            (Domain, "citrix.example.org"),
            (FilePath, "/tmp/.cache/kworkerd"),
            (Filename, "powershell.exe"),
            (Filename, "Invoice_7781.docm"),
            (Sha1, "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ];
        for (kind, value) in expected {
            assert!(has(*kind, value), "missing {kind} {value}; found {found:#?}");
        }
        // Nothing spurious: times are not IPv6, file names are not domains,
        // and each indicator appears once.
        assert!(!found.iter().any(|f| f.value.starts_with("10:30")), "{found:#?}");
        assert!(!has(Domain, "powershell.exe"));
        assert!(!found.iter().any(|f| f.kind == Ipv4 && f.value == "203.0.113.0"), "the CIDR's address is not a host");
        let mut keys: Vec<(IocType, &str)> = found.iter().map(|f| (f.kind, f.value.as_str())).collect();
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n, "duplicates in {found:#?}");
        assert_eq!(found.len(), expected.len(), "unexpected extras in {found:#?}");
    }

    #[test]
    fn extraction_stops_at_its_bound_in_order() {
        let text: String = (0..MAX_EXTRACTED + 500).map(|i| format!("10.{}.{}.{} ", i / 65536, (i / 256) % 256, i % 256)).collect();
        let found = extract(&text);
        assert_eq!(found.len(), MAX_EXTRACTED);
        assert_eq!(found[0].value, "10.0.0.0");
        assert_eq!(found[MAX_EXTRACTED - 1].value, format!("10.0.{}.{}", (MAX_EXTRACTED - 1) / 256, (MAX_EXTRACTED - 1) % 256));
        // Repeats and overlapping forms still count once.
        let found = extract(&"192.0.2.1 192[.]0[.]2[.]1 ".repeat(5_000));
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn extraction_never_panics_on_odd_input() {
        for s in ["", "[.]", "hxxp://", "::::::::", "a@b", "HKLM\\", "C:\\", "1.2.3.4/99", "\u{0}\u{7f}[@]", &"a.".repeat(500)] {
            let _ = extract(s);
        }
    }

    proptest::proptest! {
        /// Arbitrary text never panics, and a normal form is its own normal form.
        #[test]
        fn normal_forms_are_fixed_points(text in "\\PC{0,200}", kind in proptest::sample::select(IocType::ALL.to_vec())) {
            for f in extract(&text) {
                proptest::prop_assert_eq!(normalize(f.kind, &f.value), Ok(f.value.clone()));
            }
            if let Ok(v) = normalize(kind, &text) {
                proptest::prop_assert_eq!(normalize(kind, &v), Ok(v.clone()));
            }
        }

        #[test]
        fn defanged_forms_normalise_like_plain_ones(a in "[a-z]{1,12}", b in "[a-z]{2,8}", o in proptest::array::uniform4(0u8..=255)) {
            let d = format!("{a}.{b}");
            proptest::prop_assert_eq!(normalize(IocType::Domain, &format!("{a}[.]{b}")), normalize(IocType::Domain, &d));
            proptest::prop_assert_eq!(normalize(IocType::Url, &format!("hxxps://{a}[.]{b}/x")), normalize(IocType::Url, &format!("https://{d}/x")));
            let ip = format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3]);
            proptest::prop_assert_eq!(normalize(IocType::Ipv4, &ip.replace('.', "[.]")), Ok(ip.clone()));
        }
    }
}
