//! What a rule looks at: [`Match`] and the request view it reads, [`RequestHead`].

use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

use crate::glob::Glob;

/// The parts of a request a rule may read. Borrowed from the request: making
/// one costs nothing.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// The method.
    pub method: &'a Method,
    /// The URI.
    pub uri: &'a Uri,
    /// The headers (gRPC metadata included).
    pub headers: &'a HeaderMap,
    /// The extensions (e.g. axum's `ConnectInfo`).
    pub extensions: &'a http::Extensions,
}

impl<'a> RequestHead<'a> {
    /// The view of `req`.
    pub fn of<B>(req: &'a http::Request<B>) -> Self {
        RequestHead {
            method: req.method(),
            uri: req.uri(),
            headers: req.headers(),
            extensions: req.extensions(),
        }
    }

    /// The path.
    pub fn path(&self) -> &'a str {
        self.uri.path()
    }
}

/// A predicate over a [`RequestHead`], for rules and trust policies.
pub type Predicate = Arc<dyn Fn(&RequestHead<'_>) -> bool + Send + Sync>;

/// One test a rule applies to a request.
#[derive(Clone)]
#[non_exhaustive]
pub enum Match {
    /// The path starts with this prefix at a segment boundary: `/health`
    /// matches `/health` and `/health/live` but not `/healthcare`; `/voice/`
    /// matches `/voice/x` but not `/voice`.
    PathPrefix(String),
    /// The path is exactly this.
    PathExact(String),
    /// The path matches this glob: `*` is one segment, `**` any number.
    PathGlob(Glob),
    /// The method is this.
    Method(Method),
    /// The header is present.
    HeaderPresent(HeaderName),
    /// The header has exactly this value.
    HeaderEquals(HeaderName, HeaderValue),
    /// The gRPC full method (`/pkg.Service/Method`): an exact path.
    GrpcMethod(String),
    /// Any method of the gRPC service (`pkg.Service`).
    GrpcService(String),
    /// All of these match.
    All(Vec<Match>),
    /// Anything else, as a closure.
    Custom(Predicate),
}

impl Match {
    /// Whether `head` matches. Allocates nothing.
    pub fn matches(&self, head: &RequestHead<'_>) -> bool {
        match self {
            Match::PathPrefix(prefix) => path_has_prefix(head.path(), prefix),
            Match::PathExact(path) => head.path() == path,
            Match::PathGlob(glob) => glob.matches(head.path()),
            Match::Method(m) => head.method == m,
            Match::HeaderPresent(name) => head.headers.contains_key(name),
            Match::HeaderEquals(name, value) => {
                head.headers.get_all(name).iter().any(|v| v == value)
            }
            Match::GrpcMethod(full) => head.path() == full,
            Match::GrpcService(service) => head
                .path()
                .strip_prefix('/')
                .and_then(|p| p.strip_prefix(service.as_str()))
                .is_some_and(|rest| {
                    rest.starts_with('/') && rest.len() > 1 && !rest[1..].contains('/')
                }),
            Match::All(all) => all.iter().all(|m| m.matches(head)),
            Match::Custom(f) => f(head),
        }
    }
}

/// Whether `path` starts with `prefix` at a segment boundary.
fn path_has_prefix(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        None => false,
        // A prefix ending in `/` ends at a boundary by itself.
        Some(_) if prefix.ends_with('/') => true,
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
    }
}

impl fmt::Debug for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Match::PathPrefix(p) => f.debug_tuple("PathPrefix").field(p).finish(),
            Match::PathExact(p) => f.debug_tuple("PathExact").field(p).finish(),
            Match::PathGlob(g) => f.debug_tuple("PathGlob").field(g).finish(),
            Match::Method(m) => f.debug_tuple("Method").field(m).finish(),
            Match::HeaderPresent(h) => f.debug_tuple("HeaderPresent").field(h).finish(),
            Match::HeaderEquals(h, v) => f.debug_tuple("HeaderEquals").field(h).field(v).finish(),
            Match::GrpcMethod(m) => f.debug_tuple("GrpcMethod").field(m).finish(),
            Match::GrpcService(s) => f.debug_tuple("GrpcService").field(s).finish(),
            Match::All(all) => f.debug_tuple("All").field(all).finish(),
            Match::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::path_has_prefix;

    #[test]
    fn prefixes_match_at_segment_boundaries_only() {
        assert!(path_has_prefix("/health", "/health"));
        assert!(path_has_prefix("/health/live", "/health"));
        assert!(!path_has_prefix("/healthcare", "/health"));
        assert!(!path_has_prefix("/api/healthcare", "/health"));
        assert!(!path_has_prefix("/api/health", "/health"));
        assert!(path_has_prefix("/voice/transcribe", "/voice/"));
        assert!(!path_has_prefix("/voice", "/voice/"));
        assert!(!path_has_prefix("/voices/x", "/voice/"));
    }
}
