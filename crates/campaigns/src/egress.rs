//! Where webhooks may go. A webhook URL is chosen by workspace staff; left unchecked it could
//! make the platform call its own network (a cloud metadata service, an internal admin API)
//! and report back what answered. Unless the deployment allows private addresses, webhook
//! hosts must resolve to public addresses only, checked when the connection is made (so a
//! DNS answer that changes after the channel was saved cannot get around it), and URLs with a
//! private IP literal are refused outright.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// What the resolver says when it refuses a name; delivery recognises it as final.
pub(crate) const REFUSED: &str = "resolves only to private addresses, which webhooks may not reach";

/// Resolves names to their public addresses only.
pub(crate) struct PublicAddressesOnly;

impl Resolve for PublicAddressesOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(format!("{host} {REFUSED}").into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// Whether a delivery error is this guard's refusal (somewhere in its chain of causes).
pub(crate) fn refused(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if current.to_string().contains(REFUSED) {
            return true;
        }
        cause = current.source();
    }
    false
}

/// Whether a URL names its host by a private IP address (the resolver never sees those).
pub(crate) fn private_ip_literal(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else { return false };
    let host = parsed.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    host.parse::<IpAddr>().is_ok_and(|ip| !is_public(ip))
}

/// Not loopback, private, link-local, shared (CGNAT), documentation, multicast or unspecified.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(ip),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || first == 0x2001 && ip.segments()[1] == 0x0db8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn private_ip_literals_in_urls_are_spotted() {
        assert!(private_ip_literal("http://169.254.169.254/latest/meta-data"));
        assert!(private_ip_literal("http://[::1]:8080/x"));
        assert!(private_ip_literal("http://127.0.0.1:9/hook"));
        assert!(!private_ip_literal("https://hooks.example.com/x"));
        assert!(!private_ip_literal("https://8.8.8.8/x"));
    }
}
