//! The client address that rate limits count against.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use super::AppState;

/// Who a request counts against for rate limits: the peer address, or with
/// `PAPERBOY_TRUST_PROXY` the address our own proxy put last in `X-Forwarded-For` (earlier
/// entries are the client's own claims). An IPv6 client counts by its /64: one host
/// usually holds a whole /64, and would otherwise have 2^64 fresh addresses to rotate.
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let ip = match state.settings.web.trust_proxy {
            true => last_forwarded(&parts.headers).unwrap_or(peer),
            false => peer,
        };
        Ok(Self(rate_key(ip)))
    }
}

/// The last `X-Forwarded-For` entry (our proxy's view of the client), as an address or
/// `address:port`; `None` when it is missing or not an address.
fn last_forwarded(headers: &HeaderMap) -> Option<IpAddr> {
    let last = headers.get_all("x-forwarded-for").iter().next_back()?.to_str().ok()?;
    let entry = last.rsplit(',').next()?.trim();
    entry.parse::<IpAddr>().or_else(|_| entry.parse::<SocketAddr>().map(|s| s.ip())).ok()
}

/// IPv4 addresses as they are (also when mapped into IPv6); IPv6 by their /64 prefix.
pub fn rate_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn forwarded(values: &[&str]) -> Option<IpAddr> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        last_forwarded(&headers)
    }

    #[test]
    fn only_the_last_forwarded_entry_counts() {
        assert_eq!(forwarded(&["1.1.1.1, 2.2.2.2"]), Some([2, 2, 2, 2].into()));
        assert_eq!(forwarded(&["1.1.1.1", "3.3.3.3"]), Some([3, 3, 3, 3].into()));
        assert_eq!(forwarded(&["1.1.1.1, 4.4.4.4:5678"]), Some([4, 4, 4, 4].into()));
        assert_eq!(forwarded(&["[2001:db8::1]:443"]), Some("2001:db8::1".parse().unwrap()));
        // A garbage last entry does not fall back to the client's own claims.
        assert_eq!(forwarded(&["1.1.1.1, unknown"]), None);
        assert_eq!(forwarded(&[]), None);
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let a = rate_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = rate_key("2001:db8:1:2:bbbb::2".parse().unwrap());
        let other = rate_key("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, other);
        assert_eq!(rate_key("::ffff:1.2.3.4".parse().unwrap()), IpAddr::from([1, 2, 3, 4]));
        assert_eq!(rate_key("9.9.9.9".parse().unwrap()), IpAddr::from([9, 9, 9, 9]));
    }
}
