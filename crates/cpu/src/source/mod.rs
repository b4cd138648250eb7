//! CPU sources: cgroup v2/v1 against the quota, `/proc/stat`, the tokio
//! runtime's busy ratio, `sysinfo`; and [`CpuSource::auto`], which picks.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::path::Path;
use std::time::Duration;

use tower_pressure_core::cgroup::Cgroups;
use tower_pressure_core::{Reading, Source};

mod cgroup;
pub(crate) mod parse;
mod proc_stat;
mod runtime;
#[cfg(feature = "sysinfo")]
mod sysinfo;

pub use cgroup::CgroupCpu;
pub use proc_stat::ProcStat;
pub use runtime::RuntimeBusy;
#[cfg(feature = "sysinfo")]
pub use sysinfo::SysinfoCpu;

/// The shortest span a delta-based source reports over; a sample sooner
/// than this after the previous point returns the previous reading.
pub(crate) const MIN_SPAN: Duration = Duration::from_millis(1);

/// The figures behind a cgroup CPU reading, over the last sampled interval.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct CpuStats {
    /// CPU time used per second of wall time: cores busy on average.
    pub used_cores: f64,
    /// The quota in cores, or the host's cores when there is none.
    pub capacity_cores: f64,
    /// The wall time the figures span.
    pub span: Duration,
    /// CFS periods in which the group was runnable.
    pub periods: u64,
    /// Of those, the periods in which it was throttled.
    pub throttled_periods: u64,
    /// Time the group's threads spent throttled.
    pub throttled_time: Duration,
}

/// The cores this process may run on: `available_parallelism` (CPU affinity
/// and, in recent Rust, the cgroup quota rounded up), at least 1.
#[must_use]
pub fn host_cores() -> f64 {
    let n = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    f64::from(u32::try_from(n).unwrap_or(u32::MAX))
}

impl Source for CgroupCpu {
    fn sample(&mut self) -> io::Result<Reading> {
        self.sample_reading()
    }

    fn name(&self) -> &str {
        match self.version() {
            tower_pressure_core::cgroup::CgroupVersion::V1 => "cgroup-v1-cpu",
            tower_pressure_core::cgroup::CgroupVersion::V2 => "cgroup-v2-cpu",
        }
    }
}

impl Source for ProcStat {
    fn sample(&mut self) -> io::Result<Reading> {
        self.sample_reading()
    }

    fn name(&self) -> &str {
        "proc-stat-cpu"
    }
}

impl Source for RuntimeBusy {
    fn sample(&mut self) -> io::Result<Reading> {
        Ok(self.sample_reading())
    }

    fn name(&self) -> &str {
        "tokio-runtime-busy"
    }
}

#[cfg(feature = "sysinfo")]
impl Source for SysinfoCpu {
    fn sample(&mut self) -> io::Result<Reading> {
        Ok(self.sample_reading())
    }

    fn name(&self) -> &str {
        "sysinfo-cpu"
    }
}

/// One of the CPU sources.
enum Kind {
    Cgroup(CgroupCpu),
    ProcStat(ProcStat),
    Runtime(RuntimeBusy),
    #[cfg(feature = "sysinfo")]
    Sysinfo(SysinfoCpu),
}

impl Kind {
    fn source(&mut self) -> &mut dyn Source {
        match self {
            Kind::Cgroup(s) => s,
            Kind::ProcStat(s) => s,
            Kind::Runtime(s) => s,
            #[cfg(feature = "sysinfo")]
            Kind::Sysinfo(s) => s,
        }
    }

    fn name(&self) -> &str {
        match self {
            Kind::Cgroup(s) => s.name(),
            Kind::ProcStat(s) => s.name(),
            Kind::Runtime(s) => s.name(),
            #[cfg(feature = "sysinfo")]
            Kind::Sysinfo(s) => s.name(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Kind::Cgroup(s) => s.describe(),
            Kind::ProcStat(s) => s.describe(),
            Kind::Runtime(s) => s.describe(),
            #[cfg(feature = "sysinfo")]
            Kind::Sysinfo(s) => s.describe(),
        }
    }
}

/// The best CPU source for this machine, with the next best ones to fall
/// back on.
///
/// [`auto`](CpuSource::auto) tries, in order, and keeps every one that
/// opens:
///
/// 1. the cgroup (v2, then v1) **when it has a CPU quota** below the host's
///    cores — a container's limit beats the host's total;
/// 2. `/proc/stat`, the host's utilisation;
/// 3. the cgroup without a quota (its usage against the host's cores);
/// 4. `sysinfo` (with the `sysinfo` feature), for machines without `/proc`;
/// 5. the tokio runtime's busy ratio, when called inside a runtime.
///
/// The choice shows in `Debug` and in a `tracing` debug event. When the
/// source in use fails, a warning is logged once and the next one takes
/// over for good; when none is left, samples fail (a [`Signal`] keeps its
/// last level and logs once). Nothing here panics.
///
/// For an async server, the runtime's busy ratio alone
/// ([`CpuSource::runtime`]) is often the better signal: it sees the
/// executor saturate even when the machine has idle cores.
///
/// ```
/// use tower_pressure_cpu::CpuSource;
///
/// let source = CpuSource::auto();
/// println!("{source:?}"); // CpuSource { active: "proc-stat-cpu (host /proc/stat)", .. }
/// ```
///
/// [`Signal`]: tower_pressure_core::Signal
pub struct CpuSource {
    active: Option<Kind>,
    fallbacks: VecDeque<Kind>,
}

impl CpuSource {
    /// Detects the best source of this machine; see the type's docs.
    #[must_use]
    pub fn auto() -> CpuSource {
        CpuSource::auto_at(Path::new("/"), host_cores())
    }

    /// As [`auto`](CpuSource::auto), with `/proc` and the cgroup mounts
    /// looked up under `root` and the host's cores given: for tests and
    /// tools that point at a fake tree.
    #[must_use]
    pub fn auto_at(root: &Path, host_cores: f64) -> CpuSource {
        let mut with_quota = Vec::new();
        let mut without_quota = Vec::new();
        for cgroup in open_cgroups(root, host_cores) {
            let mut cgroup = cgroup;
            if matches!(cgroup.quota(), Ok(Some(_))) {
                with_quota.push(Kind::Cgroup(cgroup));
            } else {
                without_quota.push(Kind::Cgroup(cgroup));
            }
        }
        let mut chain: VecDeque<Kind> = with_quota.into();
        match ProcStat::open(root) {
            Ok(s) => chain.push_back(Kind::ProcStat(s)),
            Err(e) => tracing::debug!(error = %e, "no /proc/stat cpu source"),
        }
        chain.extend(without_quota);
        #[cfg(feature = "sysinfo")]
        {
            let s = SysinfoCpu::new();
            if s.is_supported() {
                chain.push_back(Kind::Sysinfo(s));
            }
        }
        if let Ok(s) = RuntimeBusy::current() {
            chain.push_back(Kind::Runtime(s));
        }
        let source = CpuSource {
            active: chain.pop_front(),
            fallbacks: chain,
        };
        tracing::debug!(source = ?source, "cpu source chosen");
        source
    }

    /// The tokio runtime's busy ratio of the runtime this is called from,
    /// with [`auto`](CpuSource::auto)'s choice as fallbacks.
    ///
    /// # Errors
    ///
    /// `NotFound` when called outside a tokio runtime.
    pub fn runtime() -> io::Result<CpuSource> {
        let runtime = RuntimeBusy::current()?;
        let mut rest = CpuSource::auto();
        let active = rest.active.take();
        rest.fallbacks.retain(|k| !matches!(k, Kind::Runtime(_)));
        if let Some(a) = active.filter(|k| !matches!(k, Kind::Runtime(_))) {
            rest.fallbacks.push_front(a);
        }
        rest.active = Some(Kind::Runtime(runtime));
        Ok(rest)
    }

    /// The name of the source in use (`"cgroup-v2-cpu"`, `"proc-stat-cpu"`,
    /// `"tokio-runtime-busy"`, `"sysinfo-cpu"`), or `"none"`.
    #[must_use]
    pub fn active(&self) -> &str {
        self.active.as_ref().map_or("none", Kind::name)
    }
}

fn open_cgroups(root: &Path, host_cores: f64) -> Vec<CgroupCpu> {
    let cgroups = match Cgroups::discover(root) {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "no cgroups found for the cpu source");
            return Vec::new();
        }
    };
    let mut found = Vec::new();
    // A hierarchy with the v1 cpu controller wins over the unified one.
    if let (Some(cpu), Some(acct)) = (cgroups.controller("cpu"), cgroups.controller("cpuacct"))
        && cpu.version() == tower_pressure_core::cgroup::CgroupVersion::V1
    {
        match CgroupCpu::open_v1(&cpu, &acct, host_cores) {
            Ok(s) => found.push(s),
            Err(e) => tracing::debug!(error = %e, "cgroup v1 cpu source unusable"),
        }
    }
    if let Some(unified) = cgroups.unified() {
        match CgroupCpu::open_v2(unified, host_cores) {
            Ok(s) => found.push(s),
            Err(e) => tracing::debug!(error = %e, "cgroup v2 cpu source unusable"),
        }
    }
    found
}

impl Source for CpuSource {
    fn sample(&mut self) -> io::Result<Reading> {
        loop {
            let Some(active) = self.active.as_mut() else {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "no CPU source works on this machine",
                ));
            };
            let err = match active.source().sample() {
                Ok(r) if !r.utilization().is_nan() => return Ok(r),
                Ok(_) => io::Error::new(io::ErrorKind::InvalidData, "reading is not a number"),
                Err(e) => e,
            };
            let failed = self.active.take().map(|k| k.name().to_owned());
            self.active = self.fallbacks.pop_front();
            tracing::warn!(
                failed = failed.as_deref().unwrap_or("none"),
                error = %err,
                next = self.active(),
                "cpu source failed; falling back to the next one"
            );
            if self.active.is_none() {
                return Err(err);
            }
        }
    }

    fn name(&self) -> &str {
        self.active()
    }
}

impl fmt::Debug for CpuSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |k: &Kind| format!("{} ({})", k.name(), k.describe());
        f.debug_struct("CpuSource")
            .field(
                "active",
                &self.active.as_ref().map_or_else(|| "none".to_owned(), show),
            )
            .field(
                "fallbacks",
                &self.fallbacks.iter().map(show).collect::<Vec<_>>(),
            )
            .finish()
    }
}
