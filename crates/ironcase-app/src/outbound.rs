//! Requests to addresses an organisation chose (its OpenID provider, its
//! webhook endpoints): they
//! reach the public Internet only unless the operator allows more, so that
//! a tenant cannot point the server at the server's own network, a cloud's
//! metadata service or another tenant's internal services (SSRF).
//!
//! Two gates, because reqwest resolves names but connects to a literal
//! address directly: names resolve through [`PublicOnly`], which keeps only
//! public addresses at connect time (a name that changes its answer between
//! a check and the request, DNS rebinding, is caught there); literal
//! addresses are checked on each request by [`Guarded`].

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use ironcase_domain::net::is_public;
use openidconnect::{AsyncHttpClient, HttpClientError, HttpRequest, HttpResponse};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The longest a name's lookup is waited for when an address is set.
const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Resolves names to their public addresses only; a name with none is an
/// error.
pub(crate) struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.filter(|a| is_public(a.ip())).collect();
            if found.is_empty() {
                return Err(format!("{} has no public address", name.as_str()).into());
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

/// The literal address a URL's host is, if it is one (`[::1]` too).
fn literal(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// Whether `host` is a literal address that is not public (which the
/// resolver never sees: it is checked before each request).
pub(crate) fn literal_is_private(host: &str) -> bool {
    literal(host).is_some_and(|ip| !is_public(ip))
}

/// A reqwest client whose names resolve to public addresses only, unless
/// `allow_private` (webhooks; literal addresses are checked per request
/// with [`literal_is_private`]).
pub(crate) fn client(builder: reqwest::ClientBuilder, allow_private: bool) -> reqwest::Result<reqwest::Client> {
    if allow_private { builder } else { builder.dns_resolver(Arc::new(PublicOnly)) }.build()
}

/// Whether `host` (a name or a literal address) is reachable at public
/// addresses only: a literal that is public, or a name whose every address
/// is. Checked when a tenant sets an address, to refuse it with a reason;
/// the gates above hold at every request.
pub(crate) async fn host_is_public(host: &str, port: u16) -> bool {
    if let Some(ip) = literal(host) {
        return is_public(ip);
    }
    match tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host, port))).await {
        Ok(Ok(addrs)) => {
            let all: Vec<SocketAddr> = addrs.collect();
            !all.is_empty() && all.iter().all(|a| is_public(a.ip()))
        }
        _ => false,
    }
}

/// An HTTP client for openidconnect that refuses literal non-public
/// addresses (unless allowed) and otherwise is the reqwest client it wraps,
/// built with [`PublicOnly`] when private addresses are not allowed.
pub(crate) struct Guarded {
    client: reqwest::Client,
    allow_private: bool,
}

impl Guarded {
    pub(crate) fn new(builder: reqwest::ClientBuilder, allow_private: bool) -> reqwest::Result<Guarded> {
        Ok(Guarded { client: client(builder, allow_private)?, allow_private })
    }
}

type Answer<'c> = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpClientError<reqwest::Error>>> + Send + Sync + 'c>>;

impl<'c> AsyncHttpClient<'c> for Guarded {
    type Error = HttpClientError<reqwest::Error>;
    type Future = Answer<'c>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        let host = request.uri().host().unwrap_or("");
        if !self.allow_private && literal_is_private(host) {
            let refused = HttpClientError::Other(format!("{host} is not a public address"));
            return Box::pin(async move { Err(refused) });
        }
        self.client.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn get(client: &Guarded, url: &str) -> bool {
        let request = openidconnect::http::Request::builder().uri(url).body(Vec::new()).expect("request");
        client.call(request).await.is_ok()
    }

    /// A listener on this machine: the guarded client never connects to it,
    /// by name or by address; allowed private addresses, it does.
    #[tokio::test]
    async fn the_server_is_not_sent_into_its_own_network() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let served = tokio::spawn(async move {
            let mut n = 0;
            while let Ok(Ok((mut s, _))) = tokio::time::timeout(Duration::from_secs(2), listener.accept()).await {
                n += 1;
                let mut buf = [0u8; 1024];
                let _ = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await;
                let _ = tokio::io::AsyncWriteExt::write_all(&mut s, b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
            }
            n
        });
        let guarded = Guarded::new(reqwest::Client::builder(), false).expect("client");
        for url in [format!("http://127.0.0.1:{port}/"), format!("http://localhost:{port}/"), format!("http://[::ffff:127.0.0.1]:{port}/")]
        {
            assert!(!get(&guarded, &url).await, "{url} refused");
        }
        assert!(!host_is_public("localhost", port).await && !host_is_public("[::1]", port).await);
        let open = Guarded::new(reqwest::Client::builder(), true).expect("client");
        assert!(get(&open, &format!("http://127.0.0.1:{port}/")).await, "allowed private addresses, it connects");
        assert_eq!(served.await.expect("listener"), 1, "only the allowed client connected");
    }
}
