//! Where a connection goes and how: the database URL read once (as libpq
//! reads it, `sslmode` and `sslrootcert` included), the TLS configuration
//! made from it, and the limits that keep a connection from waiting forever.
//!
//! `sslmode`, as libpq: `disable` (never TLS), `allow` (without TLS, with it
//! if the server refuses), `prefer` (the default: TLS when the server offers
//! it, the certificate unchecked), `require` (TLS or nothing; as `verify-ca`
//! when a root certificate is given or `~/.postgresql/root.crt` exists),
//! `verify-ca` (the certificate chains to a root) and `verify-full` (and
//! names the host). `sslrootcert` is a PEM file of root certificates, or
//! `system` for the machine's. TLS is rustls (with ring, the provider the
//! rest of the tree already uses). Unix sockets never use TLS.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use crate::{Result, StoreError};

/// How a connection uses TLS (libpq's `sslmode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<SslMode> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => return Err(bad_url(format!("sslmode={other} is none of disable, allow, prefer, require, verify-ca, verify-full"))),
        })
    }

    /// TLS is asked for first (`allow` asks only when refused without).
    pub(crate) fn tls_first(self) -> bool {
        matches!(self, SslMode::Prefer | SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull)
    }

    /// Without TLS, no connection.
    pub(crate) fn tls_required(self) -> bool {
        matches!(self, SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

/// How long a connection may wait for the server.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest wait for the server to answer, or to take what is written;
    /// also how long it may be silent before TCP keepalive probes begin, and
    /// how long written bytes may stay unacknowledged. `None`: no limit (the
    /// owner's connection, whose `vacuum` or migrations may run long).
    pub io: Option<Duration>,
    /// The server's `statement_timeout` for the connection; `None`: the
    /// server's own setting.
    pub statement: Option<Duration>,
}

impl Limits {
    /// No time limit (keepalive still on).
    pub const NONE: Limits = Limits { io: None, statement: None };

    /// The application's connections: the server must answer within
    /// `wait`, and no statement runs longer.
    pub fn within(wait: Duration) -> Limits {
        Limits { io: Some(wait), statement: Some(wait) }
    }
}

/// A database URL, read once: where to connect, as whom, and how.
#[derive(Clone)]
pub struct Target {
    pub(crate) config: tokio_postgres::Config,
    pub(crate) ssl: SslMode,
    /// The TLS client's configuration (`None` with `sslmode=disable`).
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) limits: Limits,
}

impl std::fmt::Debug for Target {
    // The URL may carry a password: only where it points is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("hosts", &self.config.get_hosts()).field("ssl", &self.ssl).finish_non_exhaustive()
    }
}

fn bad_url(why: String) -> StoreError {
    StoreError::Database(format!("bad database URL: {why}"))
}

impl Target {
    /// Reads `url` (`postgres://…` or `key=value …`).
    pub fn parse(url: &str, limits: Limits) -> Result<Target> {
        let (rest, ssl, root) = take_tls_options(url);
        let config: tokio_postgres::Config = rest.parse().map_err(|e| bad_url(format!("{e}")))?;
        let ssl = ssl.map_or(Ok(SslMode::Prefer), |s| SslMode::parse(&s))?;
        let tls = tls_config(ssl, root)?;
        Ok(Target { config, ssl, tls, limits })
    }

    /// The same place with other limits.
    pub fn with_limits(&self, limits: Limits) -> Target {
        Target { limits, ..self.clone() }
    }
}

/// Takes `sslmode` and `sslrootcert` out of a URL (or a `key=value` string),
/// which `tokio_postgres::Config` reads only in part.
fn take_tls_options(url: &str) -> (String, Option<String>, Option<String>) {
    let (mut ssl, mut root) = (None, None);
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else { return (url.to_owned(), None, None) };
        let mut kept = form_urlencoded::Serializer::new(String::new());
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "sslmode" => ssl = Some(v.into_owned()),
                "sslrootcert" => root = Some(v.into_owned()),
                _ => {
                    kept.append_pair(&k, &v);
                }
            }
        }
        let kept = kept.finish();
        let rest = if kept.is_empty() { base.to_owned() } else { format!("{base}?{kept}") };
        return (rest, ssl, root);
    }
    let mut kept = Vec::new();
    for word in url.split_whitespace() {
        if let Some(v) = word.strip_prefix("sslmode=") {
            ssl = Some(v.trim_matches('\'').to_owned());
        } else if let Some(v) = word.strip_prefix("sslrootcert=") {
            root = Some(v.trim_matches('\'').to_owned());
        } else {
            kept.push(word);
        }
    }
    (kept.join(" "), ssl, root)
}

/// The root certificates to check the server's against: `system`, a PEM
/// file, or libpq's default file when it exists.
fn roots(root: Option<String>) -> Result<Option<rustls::RootCertStore>> {
    let mut store = rustls::RootCertStore::empty();
    let path = match root.as_deref() {
        Some("system") => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(bad_url("sslrootcert=system, and this machine has no root certificates".into()));
            }
            return Ok(Some(store));
        }
        Some(p) => PathBuf::from(p),
        None => match std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".postgresql/root.crt")) {
            Some(p) if p.exists() => p,
            _ => return Ok(None),
        },
    };
    let certs = CertificateDer::pem_file_iter(&path)
        .and_then(|i| i.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| bad_url(format!("cannot read sslrootcert {}: {e}", path.display())))?;
    let (added, _) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(bad_url(format!("sslrootcert {} holds no certificate", path.display())));
    }
    Ok(Some(store))
}

fn tls_config(ssl: SslMode, root: Option<String>) -> Result<Option<Arc<rustls::ClientConfig>>> {
    if ssl == SslMode::Disable {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = match ssl {
        // libpq checks nothing here, whatever root file there is.
        SslMode::Allow | SslMode::Prefer => None,
        _ => roots(root)?,
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Database(format!("TLS: {e}")))?;
    let chain = match (ssl, roots) {
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
            return Err(bad_url("sslmode=verify-ca and verify-full need sslrootcert (a PEM file of root certificates, or `system`)".into()))
        }
        (_, None) => None,
        (_, Some(roots)) => Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| StoreError::Database(format!("TLS: {e}")))?,
        ),
    };
    let verifier = Verifier { chain, names: ssl == SslMode::VerifyFull, algorithms: provider.signature_verification_algorithms };
    Ok(Some(Arc::new(builder.dangerous().with_custom_certificate_verifier(Arc::new(verifier)).with_no_client_auth())))
}

/// The server's certificate checked as far as `sslmode` says: not at all
/// (`prefer`, `require` without a root: the traffic is encrypted, the
/// certificate taken as it comes, as libpq does), its chain (`verify-ca`,
/// `require` with a root), or its chain and the host's name
/// (`verify-full`). The handshake's signatures are always checked.
#[derive(Debug)]
struct Verifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    names: bool,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else { return Ok(ServerCertVerified::assertion()) };
        // The name is checked after the chain: a wrong name means the chain held.
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }))
                if !self.names =>
            {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_options_are_read_from_either_form_and_the_rest_kept() {
        let (rest, ssl, root) = take_tls_options("postgres://u:p@h:5/db?sslmode=verify-full&application_name=x&sslrootcert=%2Fca.pem");
        assert_eq!(
            (rest.as_str(), ssl.as_deref(), root.as_deref()),
            ("postgres://u:p@h:5/db?application_name=x", Some("verify-full"), Some("/ca.pem"))
        );
        let (rest, ssl, root) = take_tls_options("host=h user=u sslmode=require dbname=d");
        assert_eq!((rest.as_str(), ssl.as_deref(), root), ("host=h user=u dbname=d", Some("require"), None));
        let bad = Target::parse("postgres://u@h/db?sslmode=sometimes", Limits::NONE).map(|_| ()).expect_err("unknown sslmode");
        assert!(bad.to_string().contains("sslmode=sometimes"), "{bad}");
        let no_root = Target::parse("postgres://u@h/db?sslmode=verify-full&sslrootcert=/nonexistent", Limits::NONE).map(|_| ());
        assert!(no_root.expect_err("missing root").to_string().contains("/nonexistent"));
    }

    #[test]
    fn a_password_stays_out_of_debug_output() {
        let t = Target::parse("postgres://u:hunter2@h/db", Limits::NONE).expect("url");
        assert!(!format!("{t:?}").contains("hunter2"));
    }
}
