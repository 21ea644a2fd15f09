//! Evidence: what kind of file it is, and the actions of its chain of custody.

use crate::incident::string_enum;

string_enum!(EvidenceKind {
    LogFile = "log_file",
    MemoryDump = "memory_dump",
    DiskImage = "disk_image",
    NetworkCapture = "network_capture",
    Screenshot = "screenshot",
    Document = "document",
    MalwareSample = "malware_sample",
    Other = "other",
});

string_enum!(
    /// One step in the chain of custody of a piece of evidence: `collected`
    /// (who collected it and when, as the uploader declared), `uploaded`,
    /// `downloaded`, `transferred` (handed to another party; a manual record),
    /// `integrity_failure` (the stored file no longer matched its hash on a
    /// download) and `deleted` (the file was removed; this history remains).
    CustodyAction {
        Collected = "collected",
        Uploaded = "uploaded",
        Downloaded = "downloaded",
        Transferred = "transferred",
        IntegrityFailure = "integrity_failure",
        Deleted = "deleted",
    }
);

/// Whether `s` is a 64-digit lower- or upper-case hex SHA-256.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A file name as given, made safe to show and to put in a
/// `Content-Disposition` header: no path, no control characters, nothing
/// invisible that would change how it reads (`"\u{202e}txt.exe"` is
/// `txt.exe`), at most 255 characters. `None` when nothing is left.
pub fn clean_file_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base.chars().filter(|c| !c.is_control() && !crate::validate::is_invisible(*c)).take(255).collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty() && cleaned != "." && cleaned != "..").then(|| cleaned.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_paths_and_controls() {
        assert_eq!(clean_file_name("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(clean_file_name("C:\\Users\\x\\dump.mem").as_deref(), Some("dump.mem"));
        assert_eq!(clean_file_name("a\r\nb.txt").as_deref(), Some("ab.txt"));
        assert_eq!(clean_file_name("invoice\u{202e}fdp.exe").as_deref(), Some("invoicefdp.exe"));
        assert_eq!(clean_file_name("a\u{200b}b\u{feff}.txt").as_deref(), Some("ab.txt"));
        assert_eq!(clean_file_name(".."), None);
        assert_eq!(clean_file_name("dir/"), None);
        assert_eq!(clean_file_name(&"x".repeat(300)).map(|s| s.len()), Some(255));
    }

    #[test]
    fn sha256_shape() {
        assert!(is_sha256_hex(&"a".repeat(64)));
        assert!(!is_sha256_hex(&"a".repeat(63)));
        assert!(!is_sha256_hex(&"g".repeat(64)));
    }
}
