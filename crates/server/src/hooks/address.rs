//! Which addresses wagate calls with tenants' webhooks. A tenant chooses the URL, so without a
//! check any tenant could make wagate call the machine it runs on or its private network (the
//! database, a cloud metadata service) and read the answers' status codes in the delivery log.
//! By default only public addresses are called: a URL naming a private host is refused when it is
//! registered, and a name that resolves only to private addresses fails at delivery (checked
//! after resolution, so a name cannot point elsewhere later). Set
//! `WAGATE_HOOKS_ALLOW_PRIVATE_URLS=true` where the receivers are on the same private network.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether an address is on the public internet (not loopback, private, link-local, shared,
/// multicast, documentation or unspecified).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                // 100.64.0.0/10, carrier-grade NAT; 0.0.0.0/8; 192.0.0.0/24; 198.18.0.0/15; 240/4.
                || (a == 100 && (64..128).contains(&b))
                || a == 0
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                // 2001:db8::/32, documentation.
                || (v6.segments()[0] == 0x2001 && v6.segments()[1] == 0x0db8))
        }
    }
}

/// Why a URL's host may not be called, when it names a private host outright (an address or
/// `localhost`); names are checked again once resolved.
pub fn refuse_host(host: &url::Host<&str>) -> Option<&'static str> {
    let private = match host {
        url::Host::Ipv4(ip) => !is_public(IpAddr::V4(*ip)),
        url::Host::Ipv6(ip) => !is_public(IpAddr::V6(*ip)),
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    };
    private.then_some(
        "points at a loopback or private address; wagate only calls public endpoints (an operator can allow private ones with WAGATE_HOOKS_ALLOW_PRIVATE_URLS=true)",
    )
}

/// Resolves names for webhook deliveries and keeps only public addresses.
#[derive(Debug, Default)]
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| is_public(a.ip()))
                .collect();
            if public.is_empty() {
                let reason = if found.is_empty() {
                    format!("{host} has no address")
                } else {
                    format!(
                        "{host} resolves only to private addresses; wagate only calls public endpoints"
                    )
                };
                return Err(reason.into());
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// The resolver to give the delivery client, or `None` to use the system's as it is.
pub fn resolver(allow_private: bool) -> Option<Arc<PublicOnly>> {
    (!allow_private).then(|| Arc::new(PublicOnly))
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
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_naming_private_hosts_are_refused() {
        for url in [
            "http://127.0.0.1:9000/in",
            "http://localhost/in",
            "http://api.localhost/in",
            "http://[::1]/in",
            "http://169.254.169.254/latest/meta-data",
        ] {
            let parsed = url::Url::parse(url).unwrap();
            assert!(refuse_host(&parsed.host().unwrap()).is_some(), "{url}");
        }
        let public = url::Url::parse("https://hooks.example.com/in").unwrap();
        assert!(refuse_host(&public.host().unwrap()).is_none());
    }

    #[tokio::test]
    async fn a_name_that_resolves_only_to_loopback_is_not_called() {
        let name: Name = "localhost".parse().unwrap();
        let refused = match PublicOnly.resolve(name).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(error) => error.to_string(),
        };
        assert!(refused.contains("private"), "{refused}");
    }
}
