//! [`CgroupMemory`]: the container's memory against its cgroup limit.

use std::io;
use std::path::Path;

use tower_pressure_core::cgroup::{
    Cgroup, CgroupVersion, Cgroups, KeptFile, keyed_value, parse_limit,
};
use tower_pressure_core::{Reading, Source};

use super::proc::{host_total, invalid};

/// A cgroup v1 limit at or above this is the kernel's "unlimited" sentinel
/// (`PAGE_COUNTER_MAX` pages, about 2^63 bytes, rounded to a page), even when
/// the host's memory is unknown.
const V1_UNLIMITED_FLOOR: u64 = 1 << 62;

/// The process's memory cgroup: working set against the smallest limit of the
/// cgroup and its parents, as Kubernetes measures it.
///
/// - cgroup v2: `memory.current − inactive_file` (from `memory.stat`) against
///   `memory.max`.
/// - cgroup v1: `memory.usage_in_bytes − total_inactive_file` against
///   `memory.limit_in_bytes`, and `hierarchical_memory_limit` from
///   `memory.stat` (which covers parents a container cannot see).
///
/// Inactive file pages are page cache the kernel reclaims before it runs out
/// of memory, so they do not count. A parent's limit binds its children —
/// and is shared with its other children — so every level from the cgroup
/// up to the mount point that has a limit is measured with its own working
/// set against its own limit, and the fullest level is the reading (a pod's
/// limit shared by two containers reads full when the pod is, whatever one
/// container uses). `max`, the v1 sentinel, and any limit at or above the
/// host's `MemTotal` mean "no limit"; with no limit anywhere the source does
/// not apply (construction fails, or a sample fails if the limit is lifted
/// later) and [`MemorySource`](crate::MemorySource) moves on to the host's
/// memory.
///
/// All files are opened once and re-read with `pread` on every sample.
#[derive(Debug)]
pub struct CgroupMemory {
    version: CgroupVersion,
    usage: KeptFile,
    stat: KeptFile,
    limits: Vec<Level>,
    host_total: Option<u64>,
}

/// One level of the tree that may hold a limit, with its own usage and stat
/// files where it has them (else the cgroup's own stand for it).
#[derive(Debug)]
struct Level {
    limit: KeptFile,
    usage: Option<(KeptFile, KeptFile)>,
}

impl CgroupMemory {
    /// Finds the memory cgroup of this process under `root` (`/` on a real
    /// machine) and takes one sample to check that it applies.
    ///
    /// # Errors
    ///
    /// When there is no memory cgroup, its files are missing or hold garbage,
    /// or it has no limit.
    pub fn discover(root: &Path) -> io::Result<CgroupMemory> {
        let cgroups = Cgroups::discover(root)?;
        let cgroup = cgroups.controller("memory").ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "no memory cgroup controller")
        })?;
        let mut source = CgroupMemory::open(&cgroup, host_total(root))?;
        source.sample()?;
        Ok(source)
    }

    /// Opens the files of `cgroup`. `host_total` (bytes) makes any limit at or
    /// above it count as no limit.
    ///
    /// # Errors
    ///
    /// When the usage or stat file cannot be opened.
    pub fn open(cgroup: &Cgroup, host_total: Option<u64>) -> io::Result<CgroupMemory> {
        let (usage, limit) = match cgroup.version() {
            CgroupVersion::V2 => ("memory.current", "memory.max"),
            CgroupVersion::V1 => ("memory.usage_in_bytes", "memory.limit_in_bytes"),
        };
        // The root cgroup has no limit file; missing ones are skipped.
        let limits = cgroup
            .ancestors()
            .filter_map(|dir| {
                let own = KeptFile::open(dir.join(usage))
                    .and_then(|u| Ok((u, KeptFile::open(dir.join("memory.stat"))?)));
                Some(Level {
                    limit: KeptFile::open(dir.join(limit)).ok()?,
                    usage: own.ok(),
                })
            })
            .collect();
        Ok(CgroupMemory {
            version: cgroup.version(),
            usage: KeptFile::open(cgroup.file(usage))?,
            stat: KeptFile::open(cgroup.file("memory.stat"))?,
            limits,
            host_total,
        })
    }

    /// The cgroup interface read.
    #[must_use]
    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// The smallest limit of the cgroup and its parents, in bytes; `None` when
    /// none is set (or every one is at least the host's memory).
    ///
    /// # Errors
    ///
    /// When a limit file cannot be read or holds garbage.
    pub fn limit(&mut self) -> io::Result<Option<u64>> {
        let mut smallest: Option<u64> = None;
        for level in &mut self.limits {
            if let Some(l) = parse_limit(level.limit.read_str()?)? {
                smallest = Some(smallest.map_or(l, |s| s.min(l)));
            }
        }
        if self.version == CgroupVersion::V1 {
            let stat = self.stat.read_str()?;
            if let Ok(l) = keyed_value(stat, "hierarchical_memory_limit") {
                smallest = Some(smallest.map_or(l, |s| s.min(l)));
            }
        }
        Ok(smallest.filter(|&l| self.is_a_limit(l)))
    }

    fn is_a_limit(&self, limit: u64) -> bool {
        is_a_limit(limit, self.host_total)
    }
}

/// Whether `limit` limits anything: not the v1 sentinel, and below the
/// host's memory.
fn is_a_limit(limit: u64, host_total: Option<u64>) -> bool {
    limit < V1_UNLIMITED_FLOOR && host_total.is_none_or(|total| limit < total)
}

/// The fuller of `best` and `used` of `limit`.
fn fuller(best: Option<(u64, u64)>, used: u64, limit: u64) -> Option<(u64, u64)> {
    let full = |(u, l): (u64, u64)| u as f64 / l as f64;
    match best {
        Some(b) if full(b) > full((used, limit)) => Some(b),
        _ => Some((used, limit)),
    }
}

/// Bytes in use that the kernel cannot simply drop: usage minus inactive
/// page cache.
fn working_set(
    version: CgroupVersion,
    usage: &mut KeptFile,
    stat: &mut KeptFile,
) -> io::Result<u64> {
    let usage =
        parse_limit(usage.read_str()?)?.ok_or_else(|| invalid("memory usage reads \"max\""))?;
    let stat = stat.read_str()?;
    let inactive = match version {
        CgroupVersion::V2 => keyed_value(stat, "inactive_file")?,
        // `total_` is the hierarchical figure, children included.
        CgroupVersion::V1 => keyed_value(stat, "total_inactive_file")
            .or_else(|_| keyed_value(stat, "inactive_file"))?,
    };
    Ok(usage.saturating_sub(inactive))
}

impl Source for CgroupMemory {
    fn sample(&mut self) -> io::Result<Reading> {
        let version = self.version;
        let own = working_set(version, &mut self.usage, &mut self.stat)?;
        let host_total = self.host_total;
        // The fullest level with a limit: (used, limit).
        let mut fullest: Option<(u64, u64)> = None;
        for level in &mut self.limits {
            let Some(limit) =
                parse_limit(level.limit.read_str()?)?.filter(|&l| is_a_limit(l, host_total))
            else {
                continue;
            };
            let used = match &mut level.usage {
                Some((usage, stat)) => working_set(version, usage, stat).unwrap_or(own),
                None => own,
            };
            fullest = fuller(fullest, used, limit);
        }
        if version == CgroupVersion::V1
            && let Ok(l) = keyed_value(self.stat.read_str()?, "hierarchical_memory_limit")
            && is_a_limit(l, host_total)
        {
            fullest = fuller(fullest, own, l);
        }
        let (used, limit) = fullest.ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "the memory cgroup has no limit")
        })?;
        Ok(Reading::from_used(used as f64, limit as f64))
    }

    fn name(&self) -> &str {
        match self.version {
            CgroupVersion::V2 => "cgroup-v2-memory",
            CgroupVersion::V1 => "cgroup-v1-memory",
        }
    }
}
