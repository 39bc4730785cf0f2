//! Which peer addresses the embedded TURN server relays to: public unicast
//! ones only, so a client cannot use the relay to reach this machine or its
//! network (loopback, private, link-local, multicast, unspecified...).
//!
//! Pure: it decides, the guard and the relay sockets enforce.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The peer address policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerPolicy {
    /// Relay to loopback peers too (`--turn-allow-loopback-peers`): for
    /// tests and demos where both browsers run on this machine.
    pub allow_loopback: bool,
}

impl PeerPolicy {
    /// Why relaying to `ip` is refused, or `None` when it is allowed.
    pub fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        let why = match ip {
            IpAddr::V4(v4) => v4_class(v4),
            IpAddr::V6(v6) => v6_class(v6),
        }?;
        if why == "loopback" && self.allow_loopback { None } else { Some(why) }
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_private() || (a == 100 && (b & 0xc0) == 64) {
        // 10/8, 172.16/12, 192.168/16, and the carrier-grade NAT range 100.64/10.
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some("multicast or reserved")
    } else {
        None
    }
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfec0 {
        // Unique local fc00::/7 and the old site-local fec0::/10.
        Some("private")
    } else if (first & 0xffc0) == 0xfe80 {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast or reserved")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(ip: &str, allow_loopback: bool) -> Option<&'static str> {
        PeerPolicy { allow_loopback }.refusal(ip.parse().expect("an IP"))
    }

    #[test]
    fn public_unicast_is_allowed() {
        for ip in ["8.8.8.8", "1.2.3.4", "100.128.0.1", "2001:4860:4860::8888", "::ffff:8.8.8.8"] {
            assert_eq!(refusal(ip, false), None, "{ip}");
        }
    }

    #[test]
    fn local_and_special_addresses_are_refused() {
        for (ip, why) in [
            ("127.0.0.1", "loopback"),
            ("127.9.9.9", "loopback"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("::", "unspecified"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "private"),
            ("::ffff:192.168.0.1", "private"),
            ("fd00::1", "private"),
            ("169.254.1.1", "link-local"),
            ("fe80::1", "link-local"),
            ("224.0.0.1", "multicast or reserved"),
            ("255.255.255.255", "multicast or reserved"),
            ("ff02::1", "multicast or reserved"),
        ] {
            assert_eq!(refusal(ip, false), Some(why), "{ip}");
        }
    }

    #[test]
    fn the_flag_allows_loopback_and_nothing_else() {
        assert_eq!(refusal("127.0.0.1", true), None);
        assert_eq!(refusal("::1", true), None);
        assert_eq!(refusal("10.0.0.1", true), Some("private"));
        assert_eq!(refusal("0.0.0.0", true), Some("unspecified"));
    }
}
