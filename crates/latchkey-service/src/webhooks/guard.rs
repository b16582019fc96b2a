//! The SSRF guard (docs/security-baseline.md §8): webhook URLs are resolved by latchkey, and loopback,
//! private, link-local, metadata and other non-public addresses are refused before any
//! connection is made, unless configuration allows them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Which non-public addresses an endpoint may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddressPolicy {
    /// 127.0.0.0/8 and ::1 (development mode allows them by default).
    pub allow_loopback: bool,
    /// Private, shared, link-local and unique-local networks (metadata services included).
    pub allow_private: bool,
}

/// Why an address is refused, or `None` when the policy lets it through.
pub fn refusal(ip: IpAddr, policy: AddressPolicy) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4, policy),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return refusal_v4(v4, policy);
            }
            let seg = v6.segments();
            if v6.is_loopback() {
                (!policy.allow_loopback).then_some("a loopback address")
            } else if v6.is_unspecified() || v6.is_multicast() {
                Some("a reserved address")
            } else if (seg[0] & 0xfe00) == 0xfc00 || (seg[0] & 0xffc0) == 0xfe80 || (seg[0] & 0xffc0) == 0xfec0 {
                // Unique local (fd00:ec2::254 is a metadata service), link-local, site-local.
                (!policy.allow_private).then_some("a private address")
            } else if seg[0] == 0x2001 && seg[1] == 0x0db8 {
                Some("a documentation address")
            } else {
                None
            }
        }
    }
}

fn refusal_v4(ip: Ipv4Addr, policy: AddressPolicy) -> Option<&'static str> {
    let [a, b, _, _] = ip.octets();
    if ip.is_loopback() {
        (!policy.allow_loopback).then_some("a loopback address")
    } else if ip.is_private() || ip.is_link_local() || (a == 100 && (64..128).contains(&b)) {
        // 10/8, 172.16/12, 192.168/16, 169.254/16 (cloud metadata), 100.64/10 (shared).
        (!policy.allow_private).then_some("a private address")
    } else if a == 0 || ip.is_broadcast() || ip.is_multicast() || a >= 240 || (a == 198 && (b == 18 || b == 19)) {
        Some("a reserved address")
    } else if ip.is_documentation() {
        Some("a documentation address")
    } else {
        None
    }
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible or NAT64
/// (`64:ff9b::/96`) address, which reach that IPv4 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let seg = ip.segments();
    let tail = Ipv4Addr::new((seg[6] >> 8) as u8, seg[6] as u8, (seg[7] >> 8) as u8, seg[7] as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0] {
        return Some(tail);
    }
    (seg[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_loopback() && !ip.is_unspecified()).then_some(tail)
}

/// Resolves names for the webhook client and keeps only addresses the policy allows; a
/// name with none left fails to resolve, so no connection is attempted.
pub struct GuardedResolver {
    pub policy: AddressPolicy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                found.iter().copied().filter(|a| refusal(a.ip(), policy).is_none()).collect();
            if allowed.is_empty() {
                let why = found.first().and_then(|a| refusal(a.ip(), policy)).unwrap_or("no address");
                return Err(format!("{host} resolves to {why}, which webhooks may not reach").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn refused(ip: &str, policy: AddressPolicy) -> bool {
        refusal(ip.parse().unwrap(), policy).is_some()
    }

    #[test]
    fn non_public_addresses_are_refused_by_default() {
        let strict = AddressPolicy::default();
        for ip in [
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "10.0.0.7",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "198.18.0.1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "fc00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::a9fe:a9fe",
            "ff02::1",
        ] {
            assert!(refused(ip, strict), "{ip} should be refused");
        }
        for ip in ["93.184.215.14", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(!refused(ip, strict), "{ip} should be allowed");
        }
    }

    #[test]
    fn configuration_opens_loopback_and_private_networks_separately() {
        let loopback = AddressPolicy { allow_loopback: true, allow_private: false };
        assert!(!refused("127.0.0.1", loopback));
        assert!(!refused("::1", loopback));
        assert!(!refused("::ffff:127.0.0.1", loopback));
        assert!(refused("10.0.0.1", loopback));
        assert!(refused("169.254.169.254", loopback));
        let private = AddressPolicy { allow_loopback: false, allow_private: true };
        assert!(refused("127.0.0.1", private));
        assert!(!refused("10.0.0.1", private));
        assert!(!refused("fd00::1", private));
        // Never reachable, whatever the configuration.
        let open = AddressPolicy { allow_loopback: true, allow_private: true };
        assert!(refused("0.0.0.0", open));
        assert!(refused("224.0.0.1", open));
    }

    #[tokio::test]
    async fn names_resolving_to_refused_addresses_fail_to_resolve() {
        use reqwest::dns::Resolve;
        let strict = GuardedResolver { policy: AddressPolicy::default() };
        let err = match strict.resolve("localhost".parse().unwrap()).await {
            Ok(_) => panic!("localhost resolved"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("loopback"), "{err}");
        let dev = GuardedResolver { policy: AddressPolicy { allow_loopback: true, allow_private: false } };
        let addrs: Vec<SocketAddr> = dev.resolve("localhost".parse().unwrap()).await.unwrap().collect();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
