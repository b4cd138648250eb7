//! Memory sources, and [`MemorySource`]: the first one that applies.

mod cgroup;
mod heap;
mod proc;
#[cfg(feature = "sysinfo")]
mod sysinfo;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use tower_pressure_core::{Reading, Source};

pub use self::cgroup::CgroupMemory;

pub use self::heap::HeapBudget;
pub use self::proc::{Meminfo, ProcessRss, PsiMemory};
#[cfg(feature = "sysinfo")]
pub use self::sysinfo::SysinfoMemory;

/// The memory source for this machine: the first of a chain that applies,
/// degrading to the next when it fails.
///
/// [`auto`](MemorySource::auto) builds the chain, most specific first — a
/// container's limit beats the host's memory:
///
/// 1. [`CgroupMemory`]: cgroup v2, else v1, with a limit (the smallest across
///    parent cgroups);
/// 2. [`Meminfo`]: the host, from `/proc/meminfo`;
/// 3. [`SysinfoMemory`](crate::SysinfoMemory) (feature `sysinfo`): the
///    portable fallback.
///
/// A candidate applies when it opens and its first sample succeeds. The one
/// in use is named in `Debug`, in [`Source::name`], and in a `tracing` debug
/// line. When it fails later, the same sample moves on to the next one, with
/// one `tracing` warning; a sample fails only when every source has. Never a
/// panic. Every 100 samples (5 s at the memory signal's 50 ms; see
/// [`retry_every`](MemorySource::retry_every)) the better sources that failed are tried again, and the
/// first that works is taken back (a container's limit matters too much to
/// give up on for one bad read).
///
/// Process RSS ([`ProcessRss`]) is not in the chain: the host's memory is the
/// better host signal. To shed on the process's own memory, use a
/// [`HeapBudget`]. PSI ([`PsiMemory`]) can be added with
/// [`with_psi`](MemorySource::with_psi).
///
/// ```
/// use tower_pressure_core::Source;
/// use tower_pressure_memory::MemorySource;
///
/// let mut memory = MemorySource::auto();
/// println!("memory from {:?}", memory.active());
/// if let Ok(reading) = memory.sample() {
///     assert!((0.0..=1.0).contains(&reading.utilization()));
/// }
/// ```
pub struct MemorySource {
    chain: Vec<Box<dyn Source>>,
    active: usize,
    psi: Option<PsiMemory>,
    retry_samples: u32,
    since_fallback: u32,
    root: PathBuf,
}

/// How many samples [`MemorySource`] waits, after falling back, before it
/// tries the better sources again (5 s at 50 ms).
const DEFAULT_RETRY_SAMPLES: u32 = 100;

impl MemorySource {
    /// The chain for this machine (root `/`).
    #[must_use]
    pub fn auto() -> MemorySource {
        MemorySource::auto_at(Path::new("/"))
    }

    /// The chain for a machine whose `/proc` and `/sys/fs/cgroup` are under
    /// `root`: for tests and tools on fake trees.
    #[must_use]
    pub fn auto_at(root: &Path) -> MemorySource {
        let mut chain: Vec<Box<dyn Source>> = Vec::new();
        match CgroupMemory::discover(root) {
            Ok(c) => chain.push(Box::new(c)),
            Err(e) => {
                tracing::debug!(candidate = "cgroup-memory", error = %e, "memory source does not apply")
            }
        }
        match Meminfo::open(root).and_then(|mut m| m.sample().map(|_| m)) {
            Ok(m) => chain.push(Box::new(m)),
            Err(e) => {
                tracing::debug!(candidate = "meminfo", error = %e, "memory source does not apply")
            }
        }
        #[cfg(feature = "sysinfo")]
        chain.push(Box::new(SysinfoMemory::new()));
        let mut source = MemorySource::from_chain(chain);
        source.root = root.to_path_buf();
        tracing::debug!(source = source.name(), "memory source chosen");
        source
    }

    /// A chain of your own, tried in order.
    #[must_use]
    pub fn from_chain(chain: Vec<Box<dyn Source>>) -> MemorySource {
        MemorySource {
            chain,
            active: 0,
            psi: None,
            retry_samples: DEFAULT_RETRY_SAMPLES,
            since_fallback: 0,
            root: PathBuf::from("/"),
        }
    }

    /// After falling back, tries the better sources again every `samples`
    /// samples; `0` never does. Default 100 (5 s at the memory signal's
    /// 50 ms).
    #[must_use]
    pub fn retry_every(mut self, samples: u32) -> MemorySource {
        self.retry_samples = samples;
        self
    }

    /// Also reads memory PSI (see [`PsiMemory`]), when the machine has it
    /// (under the root given to [`auto_at`](MemorySource::auto_at), else
    /// `/`): a sample's utilisation is then the larger of the chain's and
    /// PSI's stall share read on the usage scale (10 % of the time stalled
    /// reads as Medium's 0.75; see [`PsiMemory`]). A machine stalling on
    /// memory reclaim is pressed even when its usage looks fine.
    #[must_use]
    pub fn with_psi(mut self) -> MemorySource {
        match PsiMemory::discover(&self.root) {
            Ok(psi) => self.psi = Some(psi),
            Err(e) => tracing::debug!(error = %e, "memory PSI is not available"),
        }
        self
    }

    /// The name of the source in use; `None` once every source has failed
    /// (or when the chain is empty).
    #[must_use]
    pub fn active(&self) -> Option<&str> {
        self.chain.get(self.active).map(|s| s.name())
    }

    /// Whether PSI is read too.
    #[must_use]
    pub fn has_psi(&self) -> bool {
        self.psi.is_some()
    }

    /// After a fallback, every `retry_samples` samples, tries the sources
    /// before the active one again; the first that works is taken back.
    fn retry_better(&mut self) -> Option<Reading> {
        if self.active == 0 || self.retry_samples == 0 {
            return None;
        }
        self.since_fallback += 1;
        if self.since_fallback < self.retry_samples {
            return None;
        }
        self.since_fallback = 0;
        let better = self.active.min(self.chain.len());
        for (i, source) in self.chain[..better].iter_mut().enumerate() {
            if let Ok(r) = source.sample()
                && !r.utilization().is_nan()
            {
                tracing::info!(
                    source = source.name(),
                    "memory source recovered; using it again"
                );
                self.active = i;
                return Some(r);
            }
        }
        None
    }

    fn sample_chain(&mut self) -> io::Result<Reading> {
        if let Some(r) = self.retry_better() {
            return Ok(r);
        }
        let mut last = None;
        while let Some(source) = self.chain.get_mut(self.active) {
            let error = match source.sample() {
                Ok(r) if !r.utilization().is_nan() => return Ok(r),
                Ok(_) => io::Error::new(io::ErrorKind::InvalidData, "reading is not a number"),
                Err(e) => e,
            };
            let failed = source.name().to_owned();
            self.active += 1;
            tracing::warn!(
                source = %failed,
                next = self.active().unwrap_or("none"),
                error = %error,
                "memory source failed; moving on to the next"
            );
            last = Some(error);
        }
        Err(last
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no memory source applies")))
    }
}

impl Source for MemorySource {
    fn sample(&mut self) -> io::Result<Reading> {
        let reading = self.sample_chain();
        let Some(psi) = &mut self.psi else {
            return reading;
        };
        match (reading, psi.sample()) {
            (Ok(r), Ok(p)) if p.utilization() > r.utilization() => Ok(p),
            (Ok(r), _) => Ok(r),
            (Err(_), Ok(p)) => Ok(p),
            (Err(e), Err(_)) => Err(e),
        }
    }

    fn name(&self) -> &str {
        self.active().unwrap_or("memory-none")
    }
}

impl fmt::Debug for MemorySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chain: Vec<&str> = self.chain.iter().map(|s| s.name()).collect();
        f.debug_struct("MemorySource")
            .field("active", &self.active())
            .field("chain", &chain)
            .field("psi", &self.psi.is_some())
            .finish()
    }
}
