//! [`Classifier`]: rules, trusted propagation, cohorts and deadlines — what
//! [`ClassifyLayer`](crate::ClassifyLayer) applies to each request.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{HeaderMap, HeaderName};
use tokio::time::Instant;
use tower_pressure_core::{Cohort, ConfigError, Deadline, PerPriority, Priority};

use crate::matcher::RequestHead;
use crate::{Rules, Trust};

/// The default header through which a *trusted* caller states a priority.
const DEFAULT_PRIORITY_HEADER: &str = "x-priority";
/// The default cap on a trusted priority: only rules make `Critical`.
const DEFAULT_MAX_TRUSTED: Priority = Priority::High;
/// The default period after which cohort hashes change (DAGOR rotates hourly).
const DEFAULT_COHORT_ROTATION: Duration = Duration::from_secs(3600);
/// The default deadlines by priority when per-priority deadlines are on: a
/// voice service's urgencies (low 20 s, normal 10 s, high 5 s, realtime
/// 2.5 s).
const DEFAULT_DEADLINES: PerPriority<Duration> = PerPriority::from_array([
    Duration::from_secs(20),
    Duration::from_secs(20),
    Duration::from_secs(10),
    Duration::from_secs(5),
    Duration::from_millis(2500),
]);
/// A cohort key, never printed.
#[derive(Clone, Copy)]
struct SharedKey([u8; 16]);

impl std::fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedKey(..)")
    }
}

/// The hash of `period` and the identity `head` carries, if it carries one.
fn keyed_hash(
    mut h: impl Hasher,
    period: u64,
    identity: &Identity,
    head: &RequestHead<'_>,
) -> Option<u64> {
    period.hash(&mut h);
    match identity {
        Identity::Header(name) => head.headers.get(name)?.as_bytes().hash(&mut h),
        Identity::Extension(f) => f(head.extensions)?.hash(&mut h),
    }
    Some(h.finish())
}

/// Seconds since the Unix epoch: cohort periods replicas agree on.
#[expect(
    clippy::disallowed_methods,
    reason = "replicas agree on a cohort only by the wall clock; tokio's clock is per process"
)]
fn wall_clock_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `grpc-timeout`, parsed once rather than per request.
static GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
/// The longest deadline a header may state (one day); longer is capped.
const MAX_HEADER_DEADLINE: Duration = Duration::from_secs(86_400);

/// Where a request's cohort comes from.
#[derive(Clone)]
enum CohortSource {
    None,
    /// A hash of an identity read from the request.
    Identity {
        identity: Identity,
        rotation: Duration,
        /// A key the replicas share; `None`: a key of this process's own.
        key: Option<[u8; 16]>,
    },
    Random,
}

/// Reads an identity's hash from a request's extensions.
type ReadIdentity = std::sync::Arc<dyn Fn(&http::Extensions) -> Option<u64> + Send + Sync>;

/// What a cohort is a hash of.
#[derive(Clone)]
enum Identity {
    Header(HeaderName),
    /// Put in the extensions by an authentication layer.
    Extension(ReadIdentity),
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::Header(h) => f.debug_tuple("Header").field(h).finish(),
            Identity::Extension(_) => f.write_str("Extension(..)"),
        }
    }
}

impl std::fmt::Debug for CohortSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CohortSource::None => f.write_str("None"),
            CohortSource::Identity { identity, key, .. } => f
                .debug_struct("Identity")
                .field("from", identity)
                .field("shared_key", &key.is_some())
                .finish_non_exhaustive(),
            CohortSource::Random => f.write_str("Random"),
        }
    }
}

/// What the classifier does to each request; built by
/// [`ClassifyLayer::builder`](crate::ClassifyLayer::builder).
#[derive(Debug)]
pub(crate) struct Classifier {
    rules: Rules,
    trust: Trust,
    priority_header: HeaderName,
    max_trusted: Priority,
    cohort: CohortSource,
    salt: std::hash::RandomState,
    counter: AtomicU64,
    epoch: Instant,
    grpc_timeout: bool,
    deadline_header: Option<HeaderName>,
    default_deadlines: Option<PerPriority<Duration>>,
    /// Headers removed once read, so the inner service never sees them.
    strip: Vec<HeaderName>,
}

impl Classifier {
    /// Classifies `req` in place: `Priority`, `Cohort` (if configured) and
    /// `Deadline` (if known) go into its extensions. Values already there —
    /// put by server code, never by a client — are kept.
    pub(crate) fn apply<B>(&self, req: &mut http::Request<B>) {
        let head = RequestHead::of(req);
        let priority = match req.extensions().get::<Priority>() {
            Some(&p) => p,
            None => self.priority(&head),
        };
        let cohort = match req.extensions().get::<Cohort>() {
            Some(_) => None,
            None => self.cohort(&head),
        };
        let deadline = match req.extensions().get::<Deadline>() {
            Some(_) => None,
            None => self.deadline(head.headers, priority),
        };
        #[cfg(feature = "metrics")]
        metrics::counter!(
            tower_pressure_core::metrics::CLASSIFIED_TOTAL,
            tower_pressure_core::metrics::LABEL_LAYER => tower_pressure_core::metrics::LAYER_CLASSIFY,
            tower_pressure_core::metrics::LABEL_PRIORITY => priority.as_str(),
        )
        .increment(1);
        let ext = req.extensions_mut();
        ext.insert(priority);
        if let Some(c) = cohort {
            ext.insert(c);
        }
        if let Some(d) = deadline {
            ext.insert(d);
        }
        for name in &self.strip {
            req.headers_mut().remove(name);
        }
    }

    /// The rules' verdict, or a trusted caller's own (capped) priority.
    pub(crate) fn priority(&self, head: &RequestHead<'_>) -> Priority {
        if !self.trust.is_never()
            && head.headers.contains_key(&self.priority_header)
            && let Some(p) = self.trusted_priority(head)
        {
            return p;
        }
        self.rules.classify(head)
    }

    fn trusted_priority(&self, head: &RequestHead<'_>) -> Option<Priority> {
        let mut values = head.headers.get_all(&self.priority_header).iter();
        let value = values.next()?;
        if values.next().is_some() {
            // Duplicates are ambiguous: the rules decide.
            return None;
        }
        if !self.trust.trusts(head) {
            return None;
        }
        let p: Priority = value.to_str().ok()?.parse().ok()?;
        Some(p.min(self.max_trusted))
    }

    fn cohort(&self, head: &RequestHead<'_>) -> Option<Cohort> {
        match &self.cohort {
            CohortSource::None => None,
            CohortSource::Identity {
                identity,
                rotation,
                key,
            } => {
                let rotation = rotation.as_secs().max(1);
                let hash = match key {
                    // The period of the wall clock, so that replicas agree.
                    Some(key) => keyed_hash(
                        siphasher::sip::SipHasher13::new_with_key(key),
                        wall_clock_secs() / rotation,
                        identity,
                        head,
                    ),
                    None => keyed_hash(
                        self.salt.build_hasher(),
                        self.epoch.elapsed().as_secs() / rotation,
                        identity,
                        head,
                    ),
                };
                Some(Cohort::from_hash(hash?))
            }
            CohortSource::Random => {
                let n = self.counter.fetch_add(1, Ordering::Relaxed);
                Some(Cohort::from_hash(self.salt.hash_one(n)))
            }
        }
    }

    /// The request's deadline: what it states (`grpc-timeout`, else the
    /// millisecond header), capped at a day, and never later than its
    /// class's default deadline when defaults are on — a caller may only
    /// shorten its own deadline.
    fn deadline(&self, headers: &HeaderMap, priority: Priority) -> Option<Deadline> {
        let from_grpc = || {
            let v = headers.get(&GRPC_TIMEOUT)?;
            let timeout = Deadline::parse_grpc_timeout(v.to_str().ok()?)?;
            Some(timeout.min(MAX_HEADER_DEADLINE))
        };
        let from_header = || {
            let v = headers.get(self.deadline_header.as_ref()?)?.to_str().ok()?;
            if v.is_empty() || v.len() > 12 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(Duration::from_millis(v.parse().ok()?).min(MAX_HEADER_DEADLINE))
        };
        let stated = self
            .grpc_timeout
            .then(from_grpc)
            .flatten()
            .or_else(from_header);
        let default = self.default_deadlines.map(|d| d[priority]);
        let timeout = match (stated, default) {
            (Some(s), Some(d)) => s.min(d),
            (s, d) => s.or(d)?,
        };
        Some(Deadline::after(timeout))
    }
}

/// Builds a [`ClassifyLayer`](crate::ClassifyLayer); checked by [`build`](Self::build).
#[derive(Debug, Clone)]
#[must_use]
pub struct ClassifyLayerBuilder {
    rules: Rules,
    trust: Trust,
    priority_header: String,
    max_trusted: Priority,
    cohort_header: Option<String>,
    cohort_extension: Option<Identity>,
    random_cohort: bool,
    cohort_key: Option<SharedKey>,
    rotation: Duration,
    grpc_timeout: bool,
    deadline_header: Option<String>,
    default_deadlines: Option<PerPriority<Duration>>,
    strip_secret: bool,
    strip_priority: bool,
}

impl ClassifyLayerBuilder {
    pub(crate) fn new(rules: Rules) -> Self {
        ClassifyLayerBuilder {
            rules,
            trust: Trust::never(),
            priority_header: DEFAULT_PRIORITY_HEADER.to_owned(),
            max_trusted: DEFAULT_MAX_TRUSTED,
            cohort_header: None,
            cohort_extension: None,
            random_cohort: false,
            cohort_key: None,
            rotation: DEFAULT_COHORT_ROTATION,
            grpc_timeout: true,
            deadline_header: None,
            default_deadlines: None,
            strip_secret: true,
            strip_priority: false,
        }
    }

    /// Whether the header carrying a [`Trust::shared_secret`] is removed
    /// once read, so that the service behind never sees (or logs, or passes
    /// on) the secret. Default `true`.
    pub fn strip_secret_header(mut self, strip: bool) -> Self {
        self.strip_secret = strip;
        self
    }

    /// Whether the priority header is removed once read, so that a service
    /// behind does not pass a client's claim on to the next hop. Default
    /// `false`.
    pub fn strip_priority_header(mut self, strip: bool) -> Self {
        self.strip_priority = strip;
        self
    }

    /// When to believe a request's own priority header. Default
    /// [`Trust::never`].
    pub fn trust(mut self, trust: Trust) -> Self {
        self.trust = trust;
        self
    }

    /// The header (or gRPC metadata key) through which a trusted caller
    /// states its priority. Default `x-priority`.
    pub fn priority_header(mut self, name: &str) -> Self {
        self.priority_header = name.to_owned();
        self
    }

    /// The highest priority a trusted caller may state; higher is lowered to
    /// it. Default [`Priority::High`]: only rules make a request `Critical`.
    pub fn max_trusted(mut self, p: Priority) -> Self {
        self.max_trusted = p;
        self
    }

    /// Derives each request's cohort from a hash of this header (a user or
    /// tenant id), salted by a key that changes every `rotation` (DAGOR), so
    /// that shedding part of a class does not always hit the same users.
    /// Requests without the header get no cohort.
    ///
    /// A header is what the client says: a client whose cohort is being
    /// shed can send another value and land in another cohort. Where
    /// requests carry an authenticated identity, prefer
    /// [`cohort_from_extension`](Self::cohort_from_extension); a header is
    /// right when a gateway in front sets it and strips what clients send.
    pub fn cohort_from_header(mut self, name: &str) -> Self {
        self.cohort_header = Some(name.to_owned());
        self
    }

    /// Derives each request's cohort from a hash of the `T` an
    /// authentication layer put in its extensions (a verified user or
    /// tenant id), which a client cannot choose. Requests without one get no
    /// cohort. `T`'s `Hash` must be the same on every replica (a string or
    /// a number is) for [`cohort_key`](Self::cohort_key) to make replicas
    /// agree.
    pub fn cohort_from_extension<T>(mut self) -> Self
    where
        T: std::hash::Hash + Send + Sync + 'static,
    {
        let read = |ext: &http::Extensions| {
            let id = ext.get::<T>()?;
            let mut h = siphasher::sip::SipHasher13::new();
            id.hash(&mut h);
            Some(h.finish())
        };
        self.cohort_extension = Some(Identity::Extension(std::sync::Arc::new(read)));
        self
    }

    /// A key the replicas of a service share, so that they put a user in
    /// the same cohort: cohorts are then a SipHash of the key, the period of
    /// the wall clock (`rotation` long, counted from the Unix epoch) and the
    /// identity. Without it, each process draws a key of its own and counts
    /// periods from its start, and replicas disagree.
    pub fn cohort_key(mut self, key: [u8; 16]) -> Self {
        self.cohort_key = Some(SharedKey(key));
        self
    }

    /// How often cohort hashes change. Default an hour, as DAGOR rotates.
    pub fn cohort_rotation(mut self, rotation: Duration) -> Self {
        self.rotation = rotation;
        self
    }

    /// Gives each request a random cohort. Default off: no cohort.
    pub fn random_cohort(mut self) -> Self {
        self.random_cohort = true;
        self
    }

    /// Whether a `grpc-timeout` header sets the deadline. Default `true`: a
    /// caller can only shorten its own deadline, which harms no one else —
    /// a stated deadline is capped at a day, and at the class's default
    /// deadline when defaults are on.
    pub fn grpc_timeout(mut self, on: bool) -> Self {
        self.grpc_timeout = on;
        self
    }

    /// Reads a deadline, in milliseconds from now, from this header. Default
    /// none.
    pub fn deadline_header(mut self, name: &str) -> Self {
        self.deadline_header = Some(name.to_owned());
        self
    }

    /// Gives requests with no stated deadline one by priority. Default off.
    /// When on, the deadlines are a voice service's urgencies — `Bulk` and
    /// `Low` 20 s, `Normal` 10 s, `High` 5 s, `Critical` (realtime) 2.5 s —
    /// unless changed with [`default_deadline`](Self::default_deadline).
    pub fn default_deadlines(mut self, on: bool) -> Self {
        self.default_deadlines = on.then_some(self.default_deadlines.unwrap_or(DEFAULT_DEADLINES));
        self
    }

    /// The default deadline of `priority` (turns per-priority deadlines on;
    /// the other classes keep theirs, see
    /// [`default_deadlines`](Self::default_deadlines)).
    pub fn default_deadline(mut self, priority: Priority, deadline: Duration) -> Self {
        let mut d = self.default_deadlines.unwrap_or(DEFAULT_DEADLINES);
        d[priority] = deadline;
        self.default_deadlines = Some(d);
        self
    }

    /// Checks and builds.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field when a header name is invalid, the
    /// rotation or a default deadline is zero, or both a cohort header and
    /// random cohorts are set.
    pub fn build(self) -> Result<crate::ClassifyLayer, ConfigError> {
        let header = |field: &'static str, name: &str| {
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ConfigError::new(field, format!("{name:?}"), "must be a valid header name")
            })
        };
        if self.rotation.is_zero() {
            return Err(ConfigError::new(
                "cohort_rotation",
                "0s",
                "must be more than zero",
            ));
        }
        let from_header = self
            .cohort_header
            .as_deref()
            .map(|h| header("cohort_header", h).map(Identity::Header))
            .transpose()?;
        let sources = usize::from(from_header.is_some())
            + usize::from(self.cohort_extension.is_some())
            + usize::from(self.random_cohort);
        if sources > 1 {
            return Err(ConfigError::new(
                "cohort",
                format!("{sources} sources"),
                "choose one of a header, an extension or random cohorts",
            ));
        }
        let cohort = match from_header.or(self.cohort_extension) {
            Some(identity) => CohortSource::Identity {
                identity,
                rotation: self.rotation,
                key: self.cohort_key.map(|k| k.0),
            },
            None if self.random_cohort => CohortSource::Random,
            None => CohortSource::None,
        };
        if let Some(d) = self.default_deadlines
            && let Some((p, _)) = d.iter().find(|(_, t)| t.is_zero())
        {
            return Err(ConfigError::new(
                "default_deadline",
                format!("{p}: 0s"),
                "must be more than zero",
            ));
        }
        let priority_header = header("priority_header", &self.priority_header)?;
        let mut strip = Vec::new();
        if self.strip_secret
            && let Some(h) = self.trust.secret_header()
        {
            strip.push(h.clone());
        }
        if self.strip_priority {
            strip.push(priority_header.clone());
        }
        let classifier = Classifier {
            rules: self.rules,
            trust: self.trust,
            priority_header,
            max_trusted: self.max_trusted,
            cohort,
            salt: std::hash::RandomState::new(),
            counter: AtomicU64::new(0),
            epoch: Instant::now(),
            grpc_timeout: self.grpc_timeout,
            deadline_header: self
                .deadline_header
                .as_deref()
                .map(|h| header("deadline_header", h))
                .transpose()?,
            default_deadlines: self.default_deadlines,
            strip,
        };
        Ok(crate::ClassifyLayer::from_classifier(classifier))
    }
}
