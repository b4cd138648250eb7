//! Sources read from `/proc`: [`Meminfo`], [`PsiMemory`] and [`ProcessRss`].

use std::io;
use std::path::{Path, PathBuf};

use tower_pressure_core::cgroup::{Cgroups, KeptFile, parse_pressure, parse_u64};
use tower_pressure_core::{ConfigError, PressureLevel, Reading, Source, Thresholds};

pub(crate) fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// The value of `key` in a `/proc/meminfo`-style file (`MemTotal:  1024 kB`),
/// in bytes.
pub(crate) fn meminfo_bytes(text: &str, key: &str) -> io::Result<u64> {
    for line in text.lines() {
        let Some((k, rest)) = line.split_once(':') else {
            continue;
        };
        if k.trim() != key {
            continue;
        }
        let mut fields = rest.split_whitespace();
        let value = parse_u64(fields.next().unwrap_or(""))?;
        return match (fields.next(), fields.next()) {
            (Some("kB"), None) => value
                .checked_mul(1024)
                .ok_or_else(|| invalid(format!("{key} overflows"))),
            (None, None) => Ok(value),
            _ => Err(invalid(format!("{key}: unexpected unit in {line:?}"))),
        };
    }
    Err(invalid(format!("no {key} line")))
}

/// The host's total memory in bytes, from `<root>/proc/meminfo`.
pub(crate) fn host_total(root: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(root.join("proc/meminfo")).ok()?;
    meminfo_bytes(&text, "MemTotal").ok().filter(|t| *t > 0)
}

/// Host memory from `/proc/meminfo`: utilisation is
/// `1 − MemAvailable / MemTotal` (`MemAvailable` is the kernel's estimate of
/// what can be allocated without swapping, page cache included).
///
/// On kernels older than 3.14, which lack `MemAvailable`, the estimate is
/// `MemFree + Buffers + Cached`.
#[derive(Debug)]
pub struct Meminfo {
    file: KeptFile,
}

impl Meminfo {
    /// Opens `<root>/proc/meminfo` (`root` is `/` on a real machine).
    ///
    /// # Errors
    ///
    /// When the file cannot be opened.
    pub fn open(root: &Path) -> io::Result<Meminfo> {
        Ok(Meminfo {
            file: KeptFile::open(root.join("proc/meminfo"))?,
        })
    }
}

impl Source for Meminfo {
    fn sample(&mut self) -> io::Result<Reading> {
        let text = self.file.read_str()?;
        let total = meminfo_bytes(text, "MemTotal")?;
        let available = match meminfo_bytes(text, "MemAvailable") {
            Ok(a) => a,
            Err(_) => ["MemFree", "Buffers", "Cached"]
                .iter()
                .map(|k| meminfo_bytes(text, k))
                .sum::<io::Result<u64>>()?,
        };
        if total == 0 {
            return Err(invalid("MemTotal is 0"));
        }
        let used = total.saturating_sub(available);
        Ok(Reading::from_used(used as f64, total as f64))
    }

    fn name(&self) -> &str {
        "meminfo"
    }
}

/// Memory pressure-stall information (PSI): the share of the last 10 s in
/// which some task waited for memory (`some avg10`). The kernel already
/// averages it, so it needs no smoothing.
///
/// A stall share is not a usage share: 20 % of the time stalled on reclaim
/// is a machine in trouble, 20 % of memory used is an idle one. So PSI has
/// thresholds of its own (by default 5, 10, 20 and 40 % of the time stalled
/// for Low, Medium, High and Critical), and a reading maps
/// them onto the default usage thresholds (0.60, 0.75, 0.85, 0.95), linearly
/// in between: a stall of 10 % reads as 0.75 (Medium), one of 40 % or more
/// as 0.95 and up (Critical). Set others with
/// [`thresholds`](PsiMemory::thresholds).
///
/// Read from the process's cgroup (`memory.pressure`, cgroup v2) where there
/// is one, else from the host (`/proc/pressure/memory`). Needs Linux 4.20+
/// with PSI enabled.
#[derive(Debug)]
pub struct PsiMemory {
    file: KeptFile,
    /// Stall shares that read as the default usage thresholds.
    thresholds: [f64; 4],
}

/// The default stall shares (`some avg10 / 100`) at which [`PsiMemory`]
/// reads Low, Medium, High and Critical. Android's low-memory killer takes
/// a partial stall of 7 % of a second as the first sign of pressure;
/// systemd-oomd and oomd act at 60 %: Low at 5 %, Critical at 40 %, before
/// those kill.
const DEFAULT_PSI_THRESHOLDS: [f64; 4] = [0.05, 0.10, 0.20, 0.40];

impl PsiMemory {
    /// Finds the PSI file under `root`: the cgroup's `memory.pressure`, else
    /// `/proc/pressure/memory`; checks that it parses.
    ///
    /// # Errors
    ///
    /// When neither file exists or the one found does not parse.
    pub fn discover(root: &Path) -> io::Result<PsiMemory> {
        let cgroup_file = Cgroups::discover(root)
            .ok()
            .and_then(|c| c.unified().map(|u| u.file("memory.pressure")));
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no memory PSI file");
        for path in cgroup_file
            .into_iter()
            .chain([root.join("proc/pressure/memory")])
        {
            match PsiMemory::open(path) {
                Ok(mut psi) => match psi.sample() {
                    Ok(_) => return Ok(psi),
                    Err(e) => last = e,
                },
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Reads the PSI file at `path`.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened.
    pub fn open(path: impl Into<PathBuf>) -> io::Result<PsiMemory> {
        Ok(PsiMemory {
            file: KeptFile::open(path)?,
            thresholds: DEFAULT_PSI_THRESHOLDS,
        })
    }

    /// The stall shares, in `(0, 1]` and rising, that read as Low, Medium,
    /// High and Critical. Default `[0.05, 0.10, 0.20, 0.40]`: Android's
    /// low-memory killer takes a partial stall of 7 % of a second as the
    /// first sign of pressure; systemd-oomd and oomd act at 60 %.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for `psi.thresholds` when a share is outside
    /// `(0, 1]` or not above the one before.
    pub fn thresholds(mut self, shares: [f64; 4]) -> Result<PsiMemory, ConfigError> {
        let mut below = 0.0;
        for s in shares {
            if !(s > below && s <= 1.0) {
                return Err(ConfigError::new(
                    "psi.thresholds",
                    format!("{shares:?}"),
                    "must be four shares in (0, 1], each above the one before",
                ));
            }
            below = s;
        }
        self.thresholds = shares;
        Ok(self)
    }

    /// The usage a stall share reads as: the default usage thresholds at
    /// this source's thresholds, linear in between, 0 at 0 and 1 at 1.
    fn as_usage(&self, stall: f64) -> f64 {
        let d = Thresholds::default();
        let usage = [
            0.0,
            d.threshold(PressureLevel::Low),
            d.threshold(PressureLevel::Medium),
            d.threshold(PressureLevel::High),
            d.threshold(PressureLevel::Critical),
            1.0,
        ];
        let t = &self.thresholds;
        let shares = [0.0, t[0], t[1], t[2], t[3], 1.0];
        let stall = stall.clamp(0.0, 1.0);
        for i in 1..shares.len() {
            if stall <= shares[i] {
                let span = shares[i] - shares[i - 1];
                let at = if span > 0.0 {
                    (stall - shares[i - 1]) / span
                } else {
                    1.0
                };
                return usage[i - 1] + at * (usage[i] - usage[i - 1]);
            }
        }
        1.0
    }
}

impl Source for PsiMemory {
    fn sample(&mut self) -> io::Result<Reading> {
        let p = parse_pressure(self.file.read_str()?)?;
        Ok(Reading::new(self.as_usage(p.some.avg10 / 100.0)))
    }

    fn name(&self) -> &str {
        "psi-memory"
    }
}

/// The process's resident set size (RSS) in bytes, from `/proc/self/statm`
/// (resident pages, kept open) × the page size.
///
/// The page size is not assumed to be 4096 (arm64 kernels use 16 or 64 KiB
/// pages): it is read once from the kernel's auxiliary vector
/// (`/proc/self/auxv`, `AT_PAGESZ`). Where that is unreadable, RSS comes from
/// `VmRSS` in `/proc/self/status`, which the kernel gives in KiB.
///
/// As a [`Source`], RSS is measured against the host's `MemTotal`;
/// [`HeapBudget`](crate::HeapBudget) measures it against a budget instead.
#[derive(Debug)]
pub struct ProcessRss {
    file: KeptFile,
    /// `Some(page size)` when `file` is `statm`; `None` when it is `status`.
    page_size: Option<u64>,
    host_total: Option<u64>,
}

/// `AT_PAGESZ` in the auxiliary vector.
const AT_PAGESZ: usize = 6;

/// The page size from an auxiliary vector: pairs of native-endian words.
pub(crate) fn auxv_page_size(auxv: &[u8]) -> Option<u64> {
    const W: usize = size_of::<usize>();
    auxv.chunks_exact(2 * W).find_map(|pair| {
        let key = usize::from_ne_bytes(pair[..W].try_into().ok()?);
        let value = usize::from_ne_bytes(pair[W..].try_into().ok()?);
        (key == AT_PAGESZ && value.is_power_of_two()).then_some(value as u64)
    })
}

impl ProcessRss {
    /// Opens the process's files under `root` (`/` on a real machine).
    ///
    /// # Errors
    ///
    /// When neither `statm` (with `auxv`) nor `status` can be read.
    pub fn open(root: &Path) -> io::Result<ProcessRss> {
        let host_total = host_total(root);
        let page_size = std::fs::read(root.join("proc/self/auxv"))
            .ok()
            .and_then(|a| auxv_page_size(&a));
        let mut rss = match page_size {
            Some(p) => ProcessRss {
                file: KeptFile::open(root.join("proc/self/statm"))?,
                page_size: Some(p),
                host_total,
            },
            None => ProcessRss {
                file: KeptFile::open(root.join("proc/self/status"))?,
                page_size: None,
                host_total,
            },
        };
        rss.bytes()?;
        Ok(rss)
    }

    /// The page size found, if RSS is read from `statm`.
    #[must_use]
    pub fn page_size(&self) -> Option<u64> {
        self.page_size
    }

    /// Reads the RSS now, in bytes.
    ///
    /// # Errors
    ///
    /// When the file cannot be read or does not parse.
    pub fn bytes(&mut self) -> io::Result<u64> {
        let text = self.file.read_str()?;
        match self.page_size {
            Some(page) => {
                let resident = text
                    .split_whitespace()
                    .nth(1)
                    .ok_or_else(|| invalid("statm has no resident field"))?;
                parse_u64(resident)?
                    .checked_mul(page)
                    .ok_or_else(|| invalid("RSS overflows"))
            }
            None => meminfo_bytes(text, "VmRSS"),
        }
    }
}

impl Source for ProcessRss {
    fn sample(&mut self) -> io::Result<Reading> {
        let total = self
            .host_total
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "host MemTotal unknown"))?;
        Ok(Reading::from_used(self.bytes()? as f64, total as f64))
    }

    fn name(&self) -> &str {
        "process-rss"
    }
}
