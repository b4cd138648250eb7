//! [`CgroupCpu`]: CPU usage of this process's cgroup against its quota.

use std::io;
use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;
use tower_pressure_core::Reading;
use tower_pressure_core::cgroup::{Cgroup, CgroupVersion, KeptFile, keyed_value, parse_u64};

use super::parse::{Throttling, cfs_cores, cpu_max_cores, ratio, throttling};
use super::{CpuStats, MIN_SPAN};

/// CPU utilisation of this process's cgroup: usage over the last interval
/// against the CPU quota, or against the host's cores when there is none.
///
/// - cgroup v2: `usage_usec` from `cpu.stat`, the quota from `cpu.max`
///   (`"$QUOTA $PERIOD"`, `max` = no limit).
/// - cgroup v1: `cpuacct.usage` (nanoseconds), the quota from
///   `cpu.cfs_quota_us` / `cpu.cfs_period_us` (`-1` = no limit), throttling
///   from the `cpu` hierarchy's `cpu.stat`.
///
/// Every quota from the cgroup up to the mount point binds: a parent's
/// quota is shared by all of its children, so each level that has one is
/// measured with its own usage against its own quota, and the most loaded
/// level is the reading (a pod's limit shared by two containers reads full
/// when the pod is, whatever one container uses). A quota above the cores
/// the process may run on (`host_cores`) binds nothing. Quotas are re-read
/// on every sample, so a resized container is followed.
///
/// **Throttling counts as pressure.** A CFS period in which the group was
/// throttled is a period in which it used its whole quota and then had
/// runnable work waiting, even when the average usage over the interval
/// looks moderate (a bursty service hits its quota in the first part of each
/// period). So the utilisation is the larger of usage ÷ quota and the share
/// of the interval's periods that were throttled (`Δnr_throttled ÷
/// Δnr_periods`). The reading's `used` is that utilisation times the
/// capacity; the raw usage and throttling figures are in
/// [`last_stats`](CgroupCpu::last_stats).
///
/// **First sample.** Opening takes the baseline. A sample taken less than a
/// millisecond after the previous point (the first sample of a signal is
/// taken at once) returns the previous reading — 0 before any — and keeps
/// the baseline, so every reported figure spans at least a millisecond.
///
/// Files are opened once and re-read with `pread`; a sample costs a few
/// microseconds.
#[derive(Debug)]
pub struct CgroupCpu {
    version: CgroupVersion,
    /// v2: `cpu.stat`; v1: `cpuacct.usage`.
    usage: KeptFile,
    /// v1 only: the `cpu` hierarchy's `cpu.stat`, for throttling.
    stat_v1: Option<KeptFile>,
    limits: Vec<Limit>,
    host_cores: f64,
    prev: Point,
    last: Option<Reading>,
    last_stats: Option<CpuStats>,
}

/// One level of the tree that may hold a quota, with its own usage counter
/// where it has one (else the leaf's usage stands for it).
#[derive(Debug)]
struct Limit {
    quota: Quota,
    /// v2: the level's `cpu.stat`; v1: its `cpuacct.usage`.
    usage: Option<KeptFile>,
    /// The level's usage at the last sample, in microseconds.
    prev_us: u64,
}

#[derive(Debug)]
enum Quota {
    V2(KeptFile),
    V1 { quota: KeptFile, period: KeptFile },
}

impl Limit {
    /// The level's quota in cores, if any.
    fn cores(&mut self) -> io::Result<Option<f64>> {
        match &mut self.quota {
            Quota::V2(f) => cpu_max_cores(f.read_str()?),
            Quota::V1 { quota, period } => cfs_cores(quota.read_str()?, period.read_str()?),
        }
    }

    /// The level's own usage counter in microseconds, if it has one.
    fn usage_us(&mut self, version: CgroupVersion) -> Option<u64> {
        let text = self.usage.as_mut()?.read_str().ok()?;
        match version {
            CgroupVersion::V2 => keyed_value(text, "usage_usec").ok(),
            CgroupVersion::V1 => parse_u64(text).ok().map(|ns| ns / 1000),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Point {
    at: Instant,
    usage_us: u64,
    throttling: Throttling,
}

impl CgroupCpu {
    /// Opens the cgroup v2 CPU files of `cgroup` and its parents.
    ///
    /// # Errors
    ///
    /// When `cpu.stat` cannot be opened or does not parse, or a `cpu.max`
    /// that exists does not parse.
    pub fn open_v2(cgroup: &Cgroup, host_cores: f64) -> io::Result<CgroupCpu> {
        let usage = KeptFile::open(cgroup.file("cpu.stat"))?;
        let limits = cgroup
            .ancestors()
            .filter_map(|dir| {
                Some(Limit {
                    quota: Quota::V2(KeptFile::open(dir.join("cpu.max")).ok()?),
                    usage: KeptFile::open(dir.join("cpu.stat")).ok(),
                    prev_us: 0,
                })
            })
            .collect();
        CgroupCpu::open(CgroupVersion::V2, usage, None, limits, host_cores)
    }

    /// Opens the cgroup v1 CPU files: usage from the `cpuacct` hierarchy's
    /// cgroup, quota and throttling from the `cpu` hierarchy's (often the
    /// same directory, `cpu,cpuacct`).
    ///
    /// # Errors
    ///
    /// When `cpuacct.usage` cannot be opened or does not parse, or a quota
    /// file that exists does not parse.
    pub fn open_v1(cpu: &Cgroup, cpuacct: &Cgroup, host_cores: f64) -> io::Result<CgroupCpu> {
        let usage = KeptFile::open(cpuacct.file("cpuacct.usage"))?;
        let stat = KeptFile::open(cpu.file("cpu.stat")).ok();
        let limits = cpu
            .ancestors()
            .filter_map(|dir| {
                let quota = KeptFile::open(dir.join("cpu.cfs_quota_us")).ok()?;
                let period = KeptFile::open(dir.join("cpu.cfs_period_us")).ok()?;
                Some(Limit {
                    quota: Quota::V1 { quota, period },
                    // Where `cpu` and `cpuacct` share a directory.
                    usage: KeptFile::open(dir.join("cpuacct.usage")).ok(),
                    prev_us: 0,
                })
            })
            .collect();
        CgroupCpu::open(CgroupVersion::V1, usage, stat, limits, host_cores)
    }

    fn open(
        version: CgroupVersion,
        usage: KeptFile,
        stat_v1: Option<KeptFile>,
        limits: Vec<Limit>,
        host_cores: f64,
    ) -> io::Result<CgroupCpu> {
        let mut s = CgroupCpu {
            version,
            usage,
            stat_v1,
            limits,
            host_cores: sane_cores(host_cores),
            prev: Point {
                at: Instant::now(),
                usage_us: 0,
                throttling: Throttling::default(),
            },
            last: None,
            last_stats: None,
        };
        s.quota()?;
        s.prev = s.point()?;
        let version = s.version;
        for limit in &mut s.limits {
            limit.prev_us = limit.usage_us(version).unwrap_or(0);
        }
        Ok(s)
    }

    /// The cgroup interface read.
    #[must_use]
    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// The smallest CPU quota of the cgroup and its parents, in cores, if
    /// any binds (is at most the host's cores).
    ///
    /// # Errors
    ///
    /// When a quota file cannot be read or does not parse.
    pub fn quota(&mut self) -> io::Result<Option<f64>> {
        let mut min: Option<f64> = None;
        for limit in &mut self.limits {
            if let Some(c) = limit.cores()?.filter(|&c| binds(c, self.host_cores)) {
                min = Some(min.map_or(c, |m| m.min(c)));
            }
        }
        Ok(min)
    }

    /// The figures behind the last reading, `None` before the first.
    #[must_use]
    pub fn last_stats(&self) -> Option<CpuStats> {
        self.last_stats
    }

    fn point(&mut self) -> io::Result<Point> {
        let at = Instant::now();
        let (usage_us, throttling) = match self.version {
            CgroupVersion::V2 => {
                let text = self.usage.read_str()?;
                (keyed_value(text, "usage_usec")?, throttling(text, false)?)
            }
            CgroupVersion::V1 => {
                let usage_ns = parse_u64(self.usage.read_str()?)?;
                // Throttling is a bonus in v1: a cpu.stat that fails to read
                // or parse leaves it at zero rather than failing the sample.
                let t = match &mut self.stat_v1 {
                    Some(f) => f
                        .read_str()
                        .ok()
                        .and_then(|t| throttling(t, true).ok())
                        .unwrap_or_default(),
                    None => Throttling::default(),
                };
                (usage_ns / 1000, t)
            }
        };
        Ok(Point {
            at,
            usage_us,
            throttling,
        })
    }

    pub(crate) fn sample_reading(&mut self) -> io::Result<Reading> {
        let capacity = self.quota()?.unwrap_or(self.host_cores);
        let now = self.point()?;
        let prev = self.prev;
        let span = now.at.saturating_duration_since(prev.at);
        let reset = now.usage_us < prev.usage_us
            || now.throttling.periods < prev.throttling.periods
            || now.throttling.throttled < prev.throttling.throttled;
        if reset {
            // The counters went back (the cgroup was re-created): start over.
            self.prev = now;
        }
        if reset || span < MIN_SPAN {
            return Ok(self
                .last
                .unwrap_or_else(|| Reading::from_used(0.0, capacity)));
        }
        self.prev = now;
        let used = ratio(now.usage_us - prev.usage_us, span_us(span));
        // Each level with a quota, its own usage against its own quota; the
        // most loaded one binds.
        let (mut load, mut capacity) = (used / self.host_cores, self.host_cores);
        let version = self.version;
        let host_cores = self.host_cores;
        for limit in &mut self.limits {
            let Some(cores) = limit.cores()?.filter(|&c| binds(c, host_cores)) else {
                continue;
            };
            let level_used = match limit.usage_us(version) {
                Some(now_us) => {
                    let d = now_us.saturating_sub(limit.prev_us);
                    limit.prev_us = now_us;
                    ratio(d, span_us(span))
                }
                None => used,
            };
            if level_used / cores >= load {
                (load, capacity) = (level_used / cores, cores);
            }
        }
        let periods = now.throttling.periods - prev.throttling.periods;
        let throttled = now.throttling.throttled - prev.throttling.throttled;
        let throttled_share = if periods == 0 {
            0.0
        } else {
            ratio(throttled.min(periods), periods)
        };
        let u = load.max(throttled_share).clamp(0.0, 1.0);
        let reading = Reading::from_used(u * capacity, capacity);
        self.last = Some(reading);
        self.last_stats = Some(CpuStats {
            used_cores: used,
            capacity_cores: capacity,
            span,
            periods,
            throttled_periods: throttled,
            throttled_time: Duration::from_micros(
                now.throttling
                    .throttled_us
                    .saturating_sub(prev.throttling.throttled_us),
            ),
        });
        Ok(reading)
    }
}

/// Whether a quota of `cores` limits a process that may run on
/// `host_cores`. That is what `available_parallelism` reports: the CPUs the
/// process may run on, or a quota rounded up — so a whole-core quota equals
/// it, and binds; only a quota above it does not.
fn binds(cores: f64, host_cores: f64) -> bool {
    cores <= host_cores
}

fn span_us(span: Duration) -> u64 {
    u64::try_from(span.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// Host cores as a usable number: at least one.
pub(crate) fn sane_cores(cores: f64) -> f64 {
    if cores.is_finite() && cores >= 1.0 {
        cores
    } else {
        1.0
    }
}

/// The directory a cgroup file path is in, for `Debug` output.
pub(crate) fn dir_of(path: &Path) -> &Path {
    path.parent().unwrap_or(path)
}

impl CgroupCpu {
    pub(crate) fn describe(&self) -> String {
        let v = match self.version {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
        };
        format!("cgroup {v} at {}", dir_of(self.usage.path()).display())
    }
}
