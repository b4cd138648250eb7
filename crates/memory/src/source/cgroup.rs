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
pub const V1_UNLIMITED_FLOOR: u64 = 1 << 62;

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
/// of memory, so they do not count. A parent's limit binds its children, so
/// every limit from the cgroup up to the mount point is read, and the
/// smallest wins. `max`, the v1 sentinel, and any limit at or above the
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
    limits: Vec<KeptFile>,
    host_total: Option<u64>,
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
            .filter_map(|dir| KeptFile::open(dir.join(limit)).ok())
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
        for file in &mut self.limits {
            if let Some(l) = parse_limit(file.read_str()?)? {
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
        limit < V1_UNLIMITED_FLOOR && self.host_total.is_none_or(|total| limit < total)
    }

    /// Bytes in use that the kernel cannot simply drop: usage minus inactive
    /// page cache.
    fn working_set(&mut self) -> io::Result<u64> {
        let usage = parse_limit(self.usage.read_str()?)?
            .ok_or_else(|| invalid("memory usage reads \"max\""))?;
        let stat = self.stat.read_str()?;
        let inactive = match self.version {
            CgroupVersion::V2 => keyed_value(stat, "inactive_file")?,
            // `total_` is the hierarchical figure, children included.
            CgroupVersion::V1 => keyed_value(stat, "total_inactive_file")
                .or_else(|_| keyed_value(stat, "inactive_file"))?,
        };
        Ok(usage.saturating_sub(inactive))
    }
}

impl Source for CgroupMemory {
    fn sample(&mut self) -> io::Result<Reading> {
        let limit = self.limit()?.ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "the memory cgroup has no limit")
        })?;
        let used = self.working_set()?;
        Ok(Reading::from_used(used as f64, limit as f64))
    }

    fn name(&self) -> &str {
        match self.version {
            CgroupVersion::V2 => "cgroup-v2-memory",
            CgroupVersion::V1 => "cgroup-v1-memory",
        }
    }
}
