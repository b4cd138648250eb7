//! [`Trust`]: when a client-supplied priority may be believed.

use std::fmt;
use std::sync::Arc;

use http::HeaderName;
use subtle::ConstantTimeEq;
use tower_pressure_core::ConfigError;

use crate::matcher::{Predicate, RequestHead};

/// When the classifier believes a priority the request states about itself
/// (the priority header, or the same key in gRPC metadata).
///
/// The default is [`Trust::never`]: anything read from a request is
/// untrusted, and a client can never raise its own priority. Trust only
/// callers you control — your own services behind a mesh, a gateway that
/// strips the header from outside traffic — and even then a trusted value is
/// capped at the classifier's `max_trusted` (default `High`). Trusting the
/// peer address of a service behind a load balancer or proxy trusts every
/// client of that balancer: the peer is then the balancer.
#[derive(Clone, Default)]
pub struct Trust {
    kind: Kind,
}

#[derive(Clone, Default)]
enum Kind {
    #[default]
    Never,
    Always,
    SharedSecret {
        header: HeaderName,
        /// The secrets' tags (see [`tag`]), never the secrets.
        tags: Arc<[[u64; 2]]>,
        keys: Arc<[std::hash::RandomState; 2]>,
    },
    #[cfg(feature = "axum")]
    Peers(Arc<[std::net::IpAddr]>),
    When(Predicate),
}

impl Trust {
    /// Never believe a request's own priority. The default.
    pub fn never() -> Trust {
        Trust { kind: Kind::Never }
    }

    /// Always believe it (still capped). Only for services that no untrusted
    /// client can reach.
    pub fn always() -> Trust {
        Trust { kind: Kind::Always }
    }

    /// Believe requests whose header `header` carries `secret`. The value a
    /// request sends is compared with the secret through keyed hashes of
    /// both, in constant time: neither the secret's bytes nor its length
    /// show in how long a wrong guess takes.
    ///
    /// # Errors
    ///
    /// When `header` is not a valid header name, or `secret` is empty or not
    /// a valid header value (it could never be sent).
    pub fn shared_secret(header: &str, secret: impl Into<Vec<u8>>) -> Result<Trust, ConfigError> {
        Trust::shared_secrets(header, [secret])
    }

    /// Like [`shared_secret`](Self::shared_secret), believing any of
    /// `secrets`: to rotate a secret, add the new one, move the callers to
    /// it, then drop the old one.
    ///
    /// # Errors
    ///
    /// As [`shared_secret`](Self::shared_secret), for any of them, and when
    /// there are none.
    pub fn shared_secrets<S: Into<Vec<u8>>>(
        header: &str,
        secrets: impl IntoIterator<Item = S>,
    ) -> Result<Trust, ConfigError> {
        let name = HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
            ConfigError::new(
                "trust.header",
                format!("{header:?}"),
                "must be a valid header name",
            )
        })?;
        let keys = [std::hash::RandomState::new(), std::hash::RandomState::new()];
        let mut tags = Vec::new();
        for secret in secrets {
            let secret: Vec<u8> = secret.into();
            if secret.is_empty() {
                return Err(ConfigError::new(
                    "trust.secret",
                    "\"\"",
                    "must not be empty",
                ));
            }
            if http::HeaderValue::from_bytes(&secret).is_err() {
                // Never quote the secret.
                return Err(ConfigError::new(
                    "trust.secret",
                    format!("{} bytes", secret.len()),
                    "must be a valid header value (visible ASCII, no control bytes)",
                ));
            }
            tags.push(tag(&keys, &secret));
        }
        if tags.is_empty() {
            return Err(ConfigError::new(
                "trust.secret",
                "none",
                "give at least one secret",
            ));
        }
        Ok(Trust {
            kind: Kind::SharedSecret {
                header: name,
                tags: tags.into(),
                keys: Arc::new(keys),
            },
        })
    }

    /// Believe requests from these peer addresses, as axum's
    /// `ConnectInfo<SocketAddr>` reports them (serve with
    /// `into_make_service_with_connect_info`). A request without
    /// `ConnectInfo` is not trusted. IPv4 addresses match their IPv6-mapped
    /// form (`::ffff:a.b.c.d`), as a dual-stack listener reports them.
    /// Behind a load balancer or proxy, the peer is the balancer: trusting it
    /// trusts everyone.
    #[cfg(feature = "axum")]
    pub fn peers(ips: impl IntoIterator<Item = std::net::IpAddr>) -> Trust {
        Trust {
            kind: Kind::Peers(ips.into_iter().map(|ip| ip.to_canonical()).collect()),
        }
    }

    /// Believe requests for which `f` returns `true`.
    pub fn when<F>(f: F) -> Trust
    where
        F: Fn(&RequestHead<'_>) -> bool + Send + Sync + 'static,
    {
        Trust {
            kind: Kind::When(Arc::new(f)),
        }
    }

    /// Whether the request seen through `head` is trusted.
    pub fn trusts(&self, head: &RequestHead<'_>) -> bool {
        match &self.kind {
            Kind::Never => false,
            Kind::Always => true,
            Kind::SharedSecret { header, tags, keys } => {
                let Some(v) = head.headers.get(header) else {
                    return false;
                };
                let sent = tag(keys, v.as_bytes());
                // Every secret is compared, in constant time.
                tags.iter()
                    .fold(subtle::Choice::from(0), |any, t| {
                        any | t[0].ct_eq(&sent[0]) & t[1].ct_eq(&sent[1])
                    })
                    .into()
            }
            #[cfg(feature = "axum")]
            Kind::Peers(ips) => head
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .is_some_and(|c| ips.contains(&c.0.ip().to_canonical())),
            Kind::When(f) => f(head),
        }
    }

    /// Whether this is [`Trust::never`].
    pub(crate) fn is_never(&self) -> bool {
        matches!(self.kind, Kind::Never)
    }

    /// The header carrying a shared secret, if that is how trust is given.
    pub(crate) fn secret_header(&self) -> Option<&HeaderName> {
        match &self.kind {
            Kind::SharedSecret { header, .. } => Some(header),
            _ => None,
        }
    }
}

/// A 128-bit tag of `bytes` under two random keys (SipHash, a keyed
/// pseudo-random function): equal tags mean equal bytes but for a chance
/// of 2^-128, and computing it takes time that depends on `bytes` alone.
fn tag(keys: &[std::hash::RandomState; 2], bytes: &[u8]) -> [u64; 2] {
    use std::hash::BuildHasher;
    [keys[0].hash_one(bytes), keys[1].hash_one(bytes)]
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Never => "never",
            Kind::Always => "always",
            // Never print the secret.
            Kind::SharedSecret { .. } => "shared secret",
            #[cfg(feature = "axum")]
            Kind::Peers(_) => "peers",
            Kind::When(_) => "predicate",
        };
        f.debug_tuple("Trust").field(&kind).finish()
    }
}
