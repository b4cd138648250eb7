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
/// capped at the classifier's `max_trusted` (default `High`).
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
        secret: Arc<[u8]>,
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

    /// Believe requests whose header `header` carries `secret`, compared in
    /// constant time.
    ///
    /// # Errors
    ///
    /// When `header` is not a valid header name or `secret` is empty.
    pub fn shared_secret(header: &str, secret: impl Into<Vec<u8>>) -> Result<Trust, ConfigError> {
        let name = HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
            ConfigError::new(
                "trust.header",
                format!("{header:?}"),
                "must be a valid header name",
            )
        })?;
        let secret: Vec<u8> = secret.into();
        if secret.is_empty() {
            return Err(ConfigError::new(
                "trust.secret",
                "\"\"",
                "must not be empty",
            ));
        }
        Ok(Trust {
            kind: Kind::SharedSecret {
                header: name,
                secret: secret.into(),
            },
        })
    }

    /// Believe requests from these peer addresses, as axum's
    /// `ConnectInfo<SocketAddr>` reports them (serve with
    /// `into_make_service_with_connect_info`). A request without
    /// `ConnectInfo` is not trusted.
    #[cfg(feature = "axum")]
    pub fn peers(ips: impl IntoIterator<Item = std::net::IpAddr>) -> Trust {
        Trust {
            kind: Kind::Peers(ips.into_iter().collect()),
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
            Kind::SharedSecret { header, secret } => head
                .headers
                .get(header)
                .is_some_and(|v| bool::from(v.as_bytes().ct_eq(secret))),
            #[cfg(feature = "axum")]
            Kind::Peers(ips) => head
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .is_some_and(|c| ips.contains(&c.0.ip())),
            Kind::When(f) => f(head),
        }
    }

    /// Whether this is [`Trust::never`].
    pub(crate) fn is_never(&self) -> bool {
        matches!(self.kind, Kind::Never)
    }
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
