//! [`CapacityGate`]: the optional BBR-style gate of the CPU throttle.
//!
//! The model is the "BBR" adaptive limiter of Alibaba Sentinel and
//! go-kratos (after Google's BBR congestion control): a service that is
//! CPU-bound serves at most `max_throughput × min_latency` requests at once
//! without queueing — its bandwidth-delay product. `max_throughput` is the
//! most requests completed in one bucket of the window (per bucket length),
//! `min_latency` the shortest completion time seen in the window. While the
//! CPU is pressed, a request that finds more than that in flight would only
//! queue inside the service, so it is refused at once.
//!
//! CPU alone is a poor switch: it lags, and refusing on CPU alone makes a
//! service oscillate (refuse everything, CPU drops, admit everything, CPU
//! spikes). The gate refuses only the excess over the measured capacity, and
//! keeps doing so for a `cool_off` after its last refusal *while the CPU was
//! pressed* even when CPU has dipped below `start`, as Kratos does (Kratos
//! restarts the cool-off with every refusal, including those of the
//! cool-off itself, so a gate that once closed can stay closed long after
//! the CPU recovered). It never refuses a lone request (`in_flight > 1`),
//! and `Critical` work is neither refused nor measured: fast health checks
//! would otherwise set the minimum latency, and with it the estimate, near
//! zero.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tower_pressure_core::ConfigError;

/// The default window of the gate's estimates.
const DEFAULT_GATE_WINDOW: Duration = Duration::from_secs(1);
/// The default number of buckets in the window (100 ms each).
const DEFAULT_GATE_BUCKETS: usize = 10;
/// The default time the gate keeps checking after its last refusal.
const DEFAULT_GATE_COOL_OFF: Duration = Duration::from_secs(1);

/// Settings of the capacity gate; see
/// [`CpuThrottleLayer::capacity_gate`](crate::CpuThrottleLayer::capacity_gate).
///
/// ```
/// use std::time::Duration;
/// use tower_pressure_cpu::CapacityGateConfig;
///
/// # fn main() -> Result<(), tower_pressure_core::ConfigError> {
/// let gate = CapacityGateConfig::builder()
///     .window(Duration::from_secs(2))
///     .buckets(20)
///     .build()?;
/// assert_eq!(gate.bucket(), Duration::from_millis(100));
/// assert!(CapacityGateConfig::builder().buckets(1).build().is_err());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapacityGateConfig {
    window: Duration,
    buckets: usize,
    cool_off: Duration,
}

impl Default for CapacityGateConfig {
    fn default() -> Self {
        CapacityGateConfig {
            window: DEFAULT_GATE_WINDOW,
            buckets: DEFAULT_GATE_BUCKETS,
            cool_off: DEFAULT_GATE_COOL_OFF,
        }
    }
}

impl CapacityGateConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> CapacityGateConfigBuilder {
        CapacityGateConfigBuilder {
            config: CapacityGateConfig::default(),
        }
    }

    /// The length of one bucket: `window ÷ buckets`.
    #[must_use]
    pub fn bucket(&self) -> Duration {
        self.window / u32::try_from(self.buckets).unwrap_or(u32::MAX)
    }
}

/// Builds a validated [`CapacityGateConfig`].
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct CapacityGateConfigBuilder {
    config: CapacityGateConfig,
}

impl CapacityGateConfigBuilder {
    /// How far back the estimates look. Default 1 s.
    pub fn window(mut self, window: Duration) -> Self {
        self.config.window = window;
        self
    }

    /// Buckets in the window, in `2..=100`. Default 10 (100 ms each with the
    /// default window).
    pub fn buckets(mut self, buckets: usize) -> Self {
        self.config.buckets = buckets;
        self
    }

    /// How long the gate keeps checking after a refusal, whatever the CPU
    /// level. Default 1 s.
    pub fn cool_off(mut self, cool_off: Duration) -> Self {
        self.config.cool_off = cool_off;
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    ///
    /// When `buckets` is outside `2..=100` or a bucket would be shorter
    /// than a millisecond.
    pub fn build(self) -> Result<CapacityGateConfig, ConfigError> {
        let c = self.config;
        if !(2..=100).contains(&c.buckets) {
            return Err(ConfigError::new(
                "capacity_gate.buckets",
                c.buckets,
                "must be in 2..=100",
            ));
        }
        if c.bucket() < Duration::from_millis(1) {
            return Err(ConfigError::new(
                "capacity_gate.window",
                format_args!("{:?}", c.window),
                "must give buckets of at least 1 ms (window / buckets)",
            ));
        }
        Ok(c)
    }
}

/// What the capacity gate sees now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct GateSnapshot {
    /// Requests in the inner service.
    pub in_flight: usize,
    /// The current estimate `max_throughput × min_latency`; `None` before
    /// any request has completed in the window.
    pub max_in_flight: Option<u64>,
    /// Whether the gate refused within its cool-off.
    pub cooling: bool,
}

/// One bucket of the window. Reset lazily by the first completion of a new
/// epoch; a completion racing the reset may be lost, which only makes the
/// estimate a little lower for one bucket.
#[derive(Debug)]
struct Bucket {
    epoch: AtomicU64,
    passed: AtomicU64,
    min_rt_us: AtomicU64,
}

/// The gate's shared state: in-flight count and windowed estimates, all
/// atomics (no lock on the request path).
pub(crate) struct CapacityGate {
    origin: Instant,
    bucket_us: u64,
    cool_off_us: u64,
    buckets: Box<[Bucket]>,
    in_flight: AtomicUsize,
    /// Microseconds since `origin` of the last refusal, plus one (0 = never).
    last_refusal: AtomicU64,
}

impl CapacityGate {
    pub(crate) fn new(config: CapacityGateConfig) -> CapacityGate {
        let buckets = (0..config.buckets)
            .map(|_| Bucket {
                epoch: AtomicU64::new(u64::MAX),
                passed: AtomicU64::new(0),
                min_rt_us: AtomicU64::new(u64::MAX),
            })
            .collect();
        CapacityGate {
            origin: Instant::now(),
            bucket_us: micros(config.bucket()).max(1),
            cool_off_us: micros(config.cool_off),
            buckets,
            in_flight: AtomicUsize::new(0),
            last_refusal: AtomicU64::new(0),
        }
    }

    fn now_us(&self) -> u64 {
        micros(self.origin.elapsed())
    }

    /// Whether a refusal happened within the cool-off.
    pub(crate) fn cooling(&self) -> bool {
        let last = self.last_refusal.load(Ordering::Relaxed);
        last != 0 && self.now_us().saturating_sub(last - 1) < self.cool_off_us
    }

    pub(crate) fn snapshot(&self) -> GateSnapshot {
        GateSnapshot {
            in_flight: self.in_flight(),
            max_in_flight: self.max_in_flight(),
            cooling: self.cooling(),
        }
    }

    /// Requests in the inner service now.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// `max_throughput × min_latency` over the complete buckets of the
    /// window, or `None` before any request has completed in it.
    pub(crate) fn max_in_flight(&self) -> Option<u64> {
        let current = self.now_us() / self.bucket_us;
        let n = self.buckets.len() as u64;
        let (mut max_pass, mut min_rt) = (0u64, u64::MAX);
        for b in &self.buckets {
            let e = b.epoch.load(Ordering::Acquire);
            // Complete buckets of the window only: the current one is still
            // filling and would read low.
            if e < current && current - e < n {
                max_pass = max_pass.max(b.passed.load(Ordering::Relaxed));
                min_rt = min_rt.min(b.min_rt_us.load(Ordering::Relaxed));
            }
        }
        if max_pass == 0 || min_rt == u64::MAX {
            return None;
        }
        // Requests per microsecond × microseconds, rounded up, at least 1.
        let product = u128::from(max_pass) * u128::from(min_rt);
        let limit = product.div_ceil(u128::from(self.bucket_us));
        Some(u64::try_from(limit).unwrap_or(u64::MAX).max(1))
    }

    /// Whether a newcomer should be refused: at least the estimate in
    /// flight, and more than one (a lone request is never queued behind
    /// anything, whatever the estimate says). While the CPU is `hot` the
    /// refusal starts (or extends) the cool-off; a refusal during the
    /// cool-off alone does not, or the gate would keep itself on for good
    /// after the CPU recovered.
    pub(crate) fn should_refuse(&self, hot: bool) -> bool {
        let Some(max) = self.max_in_flight() else {
            return false;
        };
        let in_flight = self.in_flight() as u64;
        let refuse = in_flight > 1 && in_flight >= max;
        if refuse && hot {
            self.last_refusal
                .store(self.now_us().saturating_add(1), Ordering::Relaxed);
        }
        refuse
    }

    fn complete(&self, started_us: u64) {
        let now = self.now_us();
        let rt_us = now.saturating_sub(started_us);
        let epoch = now / self.bucket_us;
        let n = self.buckets.len() as u64;
        let b = &self.buckets[usize::try_from(epoch % n).unwrap_or(0)];
        let seen = b.epoch.load(Ordering::Acquire);
        if seen != epoch
            && b.epoch
                .compare_exchange(seen, epoch, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            b.passed.store(0, Ordering::Relaxed);
            b.min_rt_us.store(u64::MAX, Ordering::Relaxed);
        }
        b.passed.fetch_add(1, Ordering::Relaxed);
        b.min_rt_us.fetch_min(rt_us.max(1), Ordering::Relaxed);
    }
}

impl std::fmt::Debug for CapacityGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CapacityGate")
            .field("bucket", &Duration::from_micros(self.bucket_us))
            .field("buckets", &self.buckets.len())
            .field("now", &self.snapshot())
            .finish()
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// One request in the inner service: counted in flight until dropped, and
/// recorded as a completion with its latency if it completed.
#[derive(Debug)]
pub(crate) struct GateGuard {
    gate: Arc<CapacityGate>,
    /// Microseconds since the gate's origin: one clock read at each end.
    started_us: u64,
}

impl GateGuard {
    pub(crate) fn enter(gate: &Arc<CapacityGate>) -> GateGuard {
        gate.in_flight.fetch_add(1, Ordering::Relaxed);
        GateGuard {
            gate: gate.clone(),
            started_us: gate.now_us(),
        }
    }

    /// The request completed: record its latency (the count goes on drop).
    pub(crate) fn complete(self) {
        self.gate.complete(self.started_us);
    }
}

impl Drop for GateGuard {
    fn drop(&mut self) {
        self.gate.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
