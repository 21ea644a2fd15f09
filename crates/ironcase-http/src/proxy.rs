//! The client's address: the TCP peer, or, when the peer is a configured
//! trusted proxy, the nearest address in `X-Forwarded-For` that is not one of
//! them. A client can put anything in that header; only what trusted proxies
//! appended is believed.

use std::net::IpAddr;

use axum::http::HeaderMap;

pub use ironcase_domain::net::Cidr;

/// The client's address (see the module).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut hops: Vec<IpAddr> = Vec::new();
    for v in headers.get_all("x-forwarded-for") {
        let Ok(s) = v.to_str() else { return peer };
        for part in s.split(',') {
            match part.trim().parse::<IpAddr>() {
                Ok(ip) => hops.push(ip),
                // A malformed entry: nothing to its left can be believed.
                Err(_) => hops.clear(),
            }
        }
    }
    // From the nearest hop outwards, the first address that is not a trusted proxy.
    hops.into_iter().rev().find(|ip| !is_trusted(*ip)).unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().expect("header"));
        }
        h
    }

    #[test]
    fn only_trusted_proxies_are_believed() {
        let trusted = [Cidr::parse("10.0.0.0/8").expect("cidr"), Cidr::parse("::1").expect("cidr")];
        let proxy: IpAddr = "10.1.2.3".parse().expect("ip");
        let stranger: IpAddr = "198.51.100.9".parse().expect("ip");
        // Through a trusted proxy: the nearest untrusted hop.
        assert_eq!(client_ip(proxy, &headers(&["203.0.113.7"]), &trusted).to_string(), "203.0.113.7");
        assert_eq!(client_ip(proxy, &headers(&["1.1.1.1, 203.0.113.7, 10.9.9.9"]), &trusted).to_string(), "203.0.113.7");
        assert_eq!(client_ip(proxy, &headers(&["1.1.1.1", "203.0.113.7"]), &trusted).to_string(), "203.0.113.7");
        // A client's own header, not through a trusted proxy: ignored.
        assert_eq!(client_ip(stranger, &headers(&["203.0.113.7"]), &trusted), stranger);
        // Nothing usable: the proxy itself.
        assert_eq!(client_ip(proxy, &headers(&[]), &trusted), proxy);
        assert_eq!(client_ip(proxy, &headers(&["203.0.113.7, garbage"]), &trusted), proxy);
    }
}
