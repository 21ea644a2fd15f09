//! Address ranges: the proxies whose `X-Forwarded-For` is believed, the
//! allow-lists an organisation or an API key is held to, and which
//! addresses are the public Internet's (where the server may be sent by a
//! tenant).

use std::fmt;
use std::net::IpAddr;

use crate::validate::ValidationErrors;

/// An address range, `10.0.0.0/8`, `::1/128` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse::<u8>().ok().filter(|p| *p <= max)?,
            Some(_) => return None,
            None => max,
        };
        Some(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 client reaching an IPv6 socket shows as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(self.prefix)) };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(self.prefix)) };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    /// The range's first address (host bits cleared).
    fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(self.prefix)) };
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(self.prefix)) };
                IpAddr::V6((u128::from(a) & mask).into())
            }
        }
    }
}

/// Canonical: the network address and the prefix, `192.0.2.0/24`.
impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

/// The ranges requests may come from; empty: anywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(Vec<Cidr>);

impl AllowList {
    /// At most this many ranges in one list.
    pub const MAX: usize = 100;

    /// A list as a client gave it: every entry an address or a range, at
    /// most [`AllowList::MAX`], duplicates dropped.
    pub fn parse(field: &str, raw: &[String], errs: &mut ValidationErrors) -> AllowList {
        if raw.len() > Self::MAX {
            errs.push(field, format!("at most {} ranges", Self::MAX));
            return AllowList::default();
        }
        let mut out: Vec<Cidr> = Vec::with_capacity(raw.len());
        for (i, s) in raw.iter().enumerate() {
            match Cidr::parse(s) {
                Some(c) => {
                    let c = Cidr { addr: c.network(), prefix: c.prefix };
                    if !out.contains(&c) {
                        out.push(c);
                    }
                }
                None => errs.push(&format!("{field}[{i}]"), "must be an IPv4 or IPv6 address or range, e.g. 192.0.2.0/24"),
            }
        }
        AllowList(out)
    }

    /// A list as stored: ranges separated by spaces (written by
    /// [`AllowList::stored`]); `None` when something else is there.
    pub fn from_stored(s: &str) -> Option<AllowList> {
        s.split_ascii_whitespace().map(Cidr::parse).collect::<Option<Vec<_>>>().map(AllowList)
    }

    pub fn stored(&self) -> String {
        self.ranges().join(" ")
    }

    pub fn ranges(&self) -> Vec<String> {
        self.0.iter().map(Cidr::to_string).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a request from `ip` is allowed: always with an empty list;
    /// with a list, only from an address inside it (an unknown address is
    /// outside).
    pub fn permits(&self, ip: Option<IpAddr>) -> bool {
        self.0.is_empty() || ip.is_some_and(|ip| self.0.iter().any(|c| c.contains(ip)))
    }
}

/// Whether `ip` is an address of the public Internet: not this machine's,
/// not a private, shared (carrier-grade NAT), link-local (cloud metadata),
/// documentation, benchmarking, multicast or reserved range, nor an IPv6
/// form of one (IPv4-mapped, NAT64, 6to4). Requests a tenant points the
/// server at go only there.
pub fn is_public(ip: IpAddr) -> bool {
    use std::net::{Ipv4Addr, Ipv6Addr};
    fn v4(a: Ipv4Addr) -> bool {
        let [o0, o1, o2, _] = a.octets();
        !(a.is_unspecified()
            || a.is_loopback()
            || a.is_private()
            || a.is_link_local()
            || a.is_broadcast()
            || a.is_multicast()
            || a.is_documentation()
            || o0 == 0
            || (o0 == 100 && (o1 & 0xc0) == 64) // 100.64.0.0/10, shared
            || (o0 == 192 && o1 == 0 && o2 == 0) // 192.0.0.0/24, protocol assignments
            || (o0 == 198 && (o1 & 0xfe) == 18) // 198.18.0.0/15, benchmarking
            || o0 >= 240) // reserved
    }
    fn v6(a: Ipv6Addr) -> bool {
        if let Some(inner) = a.to_ipv4_mapped() {
            return v4(inner);
        }
        let s = a.segments();
        // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address.
        if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
            return v4(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8));
        }
        if s[0] == 0x2002 {
            return v4(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8));
        }
        !(a.is_unspecified()
            || a.is_loopback()
            || a.is_multicast()
            || (s[0] & 0xfe00) == 0xfc00 // unique local
            || (s[0] & 0xffc0) == 0xfe80 // link-local
            || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
            || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
            || s[0] == 0x0100 && s[1..4] == [0; 3] // discard-only
            || s[..6] == [0; 6]) // IPv4-compatible (deprecated)
    }
    match ip {
        IpAddr::V4(a) => v4(a),
        IpAddr::V6(a) => v6(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_internets_addresses_are_public() {
        let public = ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"];
        let not = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "::127.0.0.1",
        ];
        for a in public {
            assert!(is_public(a.parse().expect(a)), "{a} is public");
        }
        for a in not {
            assert!(!is_public(a.parse().expect(a)), "{a} is not public");
        }
    }

    #[test]
    fn ranges_parse_print_and_contain() {
        assert!(Cidr::parse("10.0.0.0/33").is_none() && Cidr::parse("nope").is_none() && Cidr::parse("10.0.0.0/+8").is_none());
        assert_eq!(Cidr::parse("10.1.2.3/8").expect("v4").to_string(), "10.0.0.0/8");
        assert_eq!(Cidr::parse("2001:db8::1").expect("v6").to_string(), "2001:db8::1/128");
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert!(Cidr::parse("0.0.0.0/0").expect("any").contains(ip("198.51.100.9")));
        assert!(!Cidr::parse("::1").expect("v6").contains(ip("10.1.2.3")));
        assert!(Cidr::parse("192.0.2.0/24").expect("v4").contains(ip("::ffff:192.0.2.7")));

        let mut errs = ValidationErrors::default();
        let list = AllowList::parse("cidrs", &["192.0.2.9/24".into(), "192.0.2.0/24".into(), "2001:db8::/32".into()], &mut errs);
        assert!(errs.is_empty());
        assert_eq!(list.ranges(), ["192.0.2.0/24", "2001:db8::/32"]);
        assert_eq!(AllowList::from_stored(&list.stored()), Some(list.clone()));
        assert!(list.permits(Some(ip("192.0.2.200"))) && list.permits(Some(ip("2001:db8::5"))));
        assert!(!list.permits(Some(ip("198.51.100.1"))) && !list.permits(None));
        assert!(AllowList::default().permits(None));
        AllowList::parse("cidrs", &["300.0.0.1".into()], &mut errs);
        assert!(!errs.is_empty());
    }
}
