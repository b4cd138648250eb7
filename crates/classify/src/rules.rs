//! [`Rules`]: ordered matchers, first hit wins.

use std::sync::Arc;

use http::{HeaderName, HeaderValue, Method};
use tower_pressure_core::{ConfigError, Priority};

use crate::glob::Glob;
use crate::matcher::{Match, RequestHead};

/// Ordered classification rules: the first rule whose matcher matches gives
/// the request's priority; no match gives the default (`Normal` unless set).
///
/// Rules read what a client sends, so a path dressed up to look like another
/// one earns nothing: a path with a `.`, `..` or empty segment, or a
/// percent-encoded `.` or `/`, gets at most the default priority (a proxy or
/// a wildcard route may resolve `/health/../api/x` to `/api/x`, but it must
/// not be classified as `/health`); a rule may still lower it. A path longer
/// than 1 KiB is not matched at all (matching costs time in proportion to
/// it) and gets the lowest priority any rule or the default gives.
///
/// ```
/// use tower_pressure_classify::{RequestHead, Rules};
/// use tower_pressure_core::Priority;
///
/// let rules = Rules::builder()
///     .path_prefix("/voice/", Priority::High)
///     .path_glob("/api/*/report", Priority::Low)
///     .method("DELETE", Priority::Bulk)
///     .build()
///     .unwrap();
/// let req = http::Request::get("/voice/transcribe").body(()).unwrap();
/// assert_eq!(rules.classify(&RequestHead::of(&req)), Priority::High);
/// ```
#[derive(Debug, Clone)]
pub struct Rules {
    rules: Vec<(Match, Priority)>,
    default: Priority,
    /// The lowest priority any rule or the default gives.
    floor: Priority,
}

/// The most rules a set may hold: every request is tried against them in
/// turn.
const MAX_RULES: usize = 256;
/// The longest path the rules look at, in bytes.
const MAX_PATH: usize = 1024;

impl Rules {
    /// A builder with no rules and default `Normal`.
    pub fn builder() -> RulesBuilder {
        RulesBuilder::default()
    }

    /// The classification of a voice service's API:
    ///
    /// | path | priority |
    /// | --- | --- |
    /// | `/health`, `/metrics` (exactly) | `Critical` |
    /// | `/voice/…`, `/stream/…` | `High` |
    /// | `/user/…`, `/auth/…` | `Normal` |
    /// | `/analytics/…`, `/report/…` | `Low` |
    /// | anything else | `Normal` |
    ///
    /// Every pattern is a prefix anchored at the start of the path and ends
    /// at a segment boundary: `/health` matches `/health` and `/health/live`,
    /// not `/healthcare`, `/api/health` or `/users/health`. Matching a
    /// substring anywhere in the path would let a client choose such a path
    /// to make its request `Critical`.
    pub fn voice_service() -> Rules {
        RulesBuilder::voice_service()
            .build()
            .expect("the preset rules are valid")
    }

    /// The priority of the request seen through `head`.
    pub fn classify(&self, head: &RequestHead<'_>) -> Priority {
        let path = head.path();
        if path.len() > MAX_PATH {
            return self.floor;
        }
        let p = self
            .rules
            .iter()
            .find(|(m, _)| m.matches(head))
            .map_or(self.default, |&(_, p)| p);
        if is_plain(path) {
            p
        } else {
            p.min(self.default)
        }
    }

    /// The priority of a request no rule matches.
    pub fn default_priority(&self) -> Priority {
        self.default
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl Default for Rules {
    /// No rules: everything is `Normal`.
    fn default() -> Self {
        Rules {
            rules: Vec::new(),
            default: Priority::Normal,
            floor: Priority::Normal,
        }
    }
}

/// Whether `path` names what it seems to: it starts with `/`, and no
/// segment is `.`, `..` or empty (but a trailing slash), nor holds a
/// percent-encoded `.` or `/`, any of which a proxy or router may resolve to
/// another path than the rules see.
fn is_plain(path: &str) -> bool {
    let b = path.as_bytes();
    if b.first() != Some(&b'/') {
        return false;
    }
    // Most paths hold no `.` or `%`: then only an empty segment (`//`) can
    // make them unplain, and one pass finds it.
    let mut slash = false;
    for &c in b {
        match c {
            b'.' | b'%' => return segments_are_plain(b),
            b'/' if slash => return false,
            b'/' => slash = true,
            _ => slash = false,
        }
    }
    true
}

/// [`is_plain`] for a path holding a `.` or a `%`, segment by segment.
fn segments_are_plain(b: &[u8]) -> bool {
    let mut start = 1;
    for i in 1..=b.len() {
        match b.get(i) {
            None | Some(b'/') => {
                let segment = &b[start..i];
                let last = i == b.len();
                if segment == b"." || segment == b".." || (segment.is_empty() && !last) {
                    return false;
                }
                start = i + 1;
            }
            Some(b'%')
                if b.get(i + 1) == Some(&b'2')
                    && b.get(i + 2)
                        .is_some_and(|&c| matches!(c | 0x20, b'e' | b'f')) =>
            {
                return false;
            }
            Some(_) => {}
        }
    }
    true
}

/// A rule as written, checked by [`RulesBuilder::build`].
#[derive(Clone)]
pub(crate) enum Spec {
    PathPrefix(String),
    PathExact(String),
    PathGlob(String),
    Method(String),
    HeaderPresent(String),
    HeaderEquals(String, String),
    GrpcMethod(String),
    GrpcService(String),
    Custom(crate::matcher::Predicate),
    Ready(Match),
    #[cfg(feature = "serde")]
    All(Vec<Spec>),
}

/// Builds [`Rules`]; every pattern, method and header name is checked by
/// [`build`](Self::build), which names the rule at fault.
#[derive(Clone, Default)]
#[must_use]
pub struct RulesBuilder {
    specs: Vec<(Spec, Priority)>,
    default: Option<Priority>,
}

impl std::fmt::Debug for RulesBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RulesBuilder")
            .field("rules", &self.specs.len())
            .field("default", &self.default)
            .finish()
    }
}

impl RulesBuilder {
    /// A builder holding the rules of [`Rules::voice_service`], to add more
    /// after them (they are tried first).
    pub fn voice_service() -> Self {
        RulesBuilder::default()
            .path_exact("/health", Priority::Critical)
            .path_exact("/metrics", Priority::Critical)
            .path_prefix("/voice/", Priority::High)
            .path_prefix("/stream/", Priority::High)
            .path_prefix("/user/", Priority::Normal)
            .path_prefix("/auth/", Priority::Normal)
            .path_prefix("/analytics/", Priority::Low)
            .path_prefix("/report/", Priority::Low)
    }

    pub(crate) fn push(mut self, spec: Spec, p: Priority) -> Self {
        self.specs.push((spec, p));
        self
    }

    /// Paths starting with `prefix` at a segment boundary (see [`Match::PathPrefix`]).
    pub fn path_prefix(self, prefix: &str, p: Priority) -> Self {
        self.push(Spec::PathPrefix(prefix.to_owned()), p)
    }

    /// Exactly the path `path`.
    pub fn path_exact(self, path: &str, p: Priority) -> Self {
        self.push(Spec::PathExact(path.to_owned()), p)
    }

    /// Paths matching the glob `pattern` (see [`Glob`]).
    pub fn path_glob(self, pattern: &str, p: Priority) -> Self {
        self.push(Spec::PathGlob(pattern.to_owned()), p)
    }

    /// Requests with the method `method` (`"GET"`, `"POST"`, …). A method
    /// is the client's choice: under axum, a `HEAD` request runs the `GET`
    /// handler, so a rule that lowers `GET` should lower `HEAD` too, or a
    /// client gets the same work at the default priority by asking `HEAD`.
    pub fn method(self, method: &str, p: Priority) -> Self {
        self.push(Spec::Method(method.to_owned()), p)
    }

    /// Requests carrying the header `name`.
    pub fn header_present(self, name: &str, p: Priority) -> Self {
        self.push(Spec::HeaderPresent(name.to_owned()), p)
    }

    /// Requests whose header `name` has exactly the value `value`.
    pub fn header_equals(self, name: &str, value: &str, p: Priority) -> Self {
        self.push(Spec::HeaderEquals(name.to_owned(), value.to_owned()), p)
    }

    /// The gRPC method `full` (`/pkg.Service/Method`).
    pub fn grpc_method(self, full: &str, p: Priority) -> Self {
        self.push(Spec::GrpcMethod(full.to_owned()), p)
    }

    /// Every method of the gRPC service `service` (`pkg.Service`).
    pub fn grpc_service(self, service: &str, p: Priority) -> Self {
        self.push(Spec::GrpcService(service.to_owned()), p)
    }

    /// Requests for which `f` returns `true`.
    pub fn matching<F>(self, f: F, p: Priority) -> Self
    where
        F: Fn(&RequestHead<'_>) -> bool + Send + Sync + 'static,
    {
        self.push(Spec::Custom(Arc::new(f)), p)
    }

    /// A rule from an already built [`Match`].
    pub fn rule(self, m: Match, p: Priority) -> Self {
        self.push(Spec::Ready(m), p)
    }

    /// The priority of requests no rule matches. Default `Normal`.
    pub fn default_priority(mut self, p: Priority) -> Self {
        self.default = Some(p);
        self
    }

    /// Checks every rule and builds.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the rule (its index and kind) when a path does
    /// not start with `/`, a glob does not parse, a method or header name or
    /// value is not valid HTTP, or a gRPC method or service is malformed;
    /// naming `rules` when there are more than 256 (each request is tried
    /// against every rule in turn).
    pub fn build(self) -> Result<Rules, ConfigError> {
        if self.specs.len() > MAX_RULES {
            return Err(ConfigError::new(
                "rules",
                format!("{} rules", self.specs.len()),
                format!("must be at most {MAX_RULES}"),
            ));
        }
        let rules: Vec<(Match, Priority)> = self
            .specs
            .into_iter()
            .enumerate()
            .map(|(i, (spec, p))| Ok((compile(i, spec)?, p)))
            .collect::<Result<_, ConfigError>>()?;
        let default = self.default.unwrap_or_default();
        let floor = rules.iter().map(|&(_, p)| p).fold(default, Priority::min);
        Ok(Rules {
            rules,
            default,
            floor,
        })
    }
}

fn compile(i: usize, spec: Spec) -> Result<Match, ConfigError> {
    let bad = |field: &'static str, value: &str, rule: &str| {
        ConfigError::new(field, format!("rule {i}: {value:?}"), rule.to_owned())
    };
    let path = |field, p: String| {
        if p.starts_with('/') {
            Ok(p)
        } else {
            Err(bad(field, &p, "must start with `/`"))
        }
    };
    let header = |name: &str| {
        HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| bad("rules.header", name, "must be a valid header name"))
    };
    Ok(match spec {
        Spec::PathPrefix(p) => Match::PathPrefix(path("rules.path_prefix", p)?),
        Spec::PathExact(p) => Match::PathExact(path("rules.path", p)?),
        Spec::PathGlob(g) => Match::PathGlob(
            g.parse::<Glob>()
                .map_err(|e| bad("rules.glob", &g, &e.to_string()))?,
        ),
        Spec::Method(m) => Match::Method(
            Method::from_bytes(m.as_bytes())
                .map_err(|_| bad("rules.method", &m, "must be an HTTP method"))?,
        ),
        Spec::HeaderPresent(h) => Match::HeaderPresent(header(&h)?),
        Spec::HeaderEquals(h, v) => Match::HeaderEquals(
            header(&h)?,
            HeaderValue::from_str(&v)
                .map_err(|_| bad("rules.equals", &v, "must be a valid header value"))?,
        ),
        Spec::GrpcMethod(m) => {
            let ok = m
                .strip_prefix('/')
                .and_then(|r| r.split_once('/'))
                .is_some_and(|(svc, method)| {
                    !svc.is_empty() && !method.is_empty() && !method.contains('/')
                });
            if !ok {
                return Err(bad(
                    "rules.grpc_method",
                    &m,
                    "must be `/package.Service/Method`",
                ));
            }
            Match::GrpcMethod(m)
        }
        Spec::GrpcService(s) => {
            if s.is_empty() || s.contains('/') {
                return Err(bad(
                    "rules.grpc_service",
                    &s,
                    "must be `package.Service`, without slashes",
                ));
            }
            Match::GrpcService(s)
        }
        Spec::Custom(f) => Match::Custom(f),
        Spec::Ready(m) => m,
        #[cfg(feature = "serde")]
        Spec::All(all) => Match::All(
            all.into_iter()
                .map(|s| compile(i, s))
                .collect::<Result<_, _>>()?,
        ),
    })
}
