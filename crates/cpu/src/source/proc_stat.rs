//! [`ProcStat`]: host CPU utilisation from `/proc/stat`.

use std::io;
use std::path::Path;

use tower_pressure_core::Reading;
use tower_pressure_core::cgroup::KeptFile;

use super::parse::{self, ratio};

/// Host CPU utilisation from the aggregate `cpu` line of `/proc/stat`:
/// busy ÷ total clock ticks since the previous sample, where busy is total
/// − idle − iowait (time waiting for I/O is idle CPU).
///
/// The reading's figures are in cores: `used` = utilisation × the number of
/// `cpuN` lines, `capacity` = that number.
///
/// **First sample.** Opening takes the baseline. A sample taken before the
/// kernel's tick counters have moved (within about 10 ms of the previous
/// point; the first sample of a signal is taken at once) returns the
/// previous reading — 0 before any — and keeps the baseline.
#[derive(Debug)]
pub struct ProcStat {
    file: KeptFile,
    prev: parse::ProcStat,
    last: Option<Reading>,
}

impl ProcStat {
    /// Opens `<root>/proc/stat` (`root` is `/` on a real machine).
    ///
    /// # Errors
    ///
    /// When the file cannot be opened or does not parse.
    pub fn open(root: &Path) -> io::Result<ProcStat> {
        let mut file = KeptFile::open(root.join("proc/stat"))?;
        let prev = parse::proc_stat(file.read_str()?)?;
        Ok(ProcStat {
            file,
            prev,
            last: None,
        })
    }

    pub(crate) fn sample_reading(&mut self) -> io::Result<Reading> {
        let now = parse::proc_stat(self.file.read_str()?)?;
        #[expect(
            clippy::cast_precision_loss,
            reason = "a machine has far fewer than 2^52 CPUs"
        )]
        let cores = now.cpus.max(1) as f64;
        let prev = std::mem::replace(&mut self.prev, now);
        if now.total < prev.total || now.busy < prev.busy {
            // Counters went back (a CPU went offline): start over.
            return Ok(self.last.unwrap_or_else(|| Reading::from_used(0.0, cores)));
        }
        let total = now.total - prev.total;
        if total == 0 {
            self.prev = prev;
            return Ok(self.last.unwrap_or_else(|| Reading::from_used(0.0, cores)));
        }
        let u = ratio((now.busy - prev.busy).min(total), total);
        let reading = Reading::from_used(u * cores, cores);
        self.last = Some(reading);
        Ok(reading)
    }

    pub(crate) fn describe(&self) -> String {
        format!("host {}", self.file.path().display())
    }
}
