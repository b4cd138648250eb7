//! [`SysinfoMemory`]: the portable fallback (feature `sysinfo`).

use std::fmt;
use std::io;

use tower_pressure_core::{Reading, Source};

/// Host memory through the `sysinfo` crate: `total − available` against
/// `total`. The portable fallback for machines without `/proc` (macOS,
/// Windows, the BSDs).
pub struct SysinfoMemory {
    system: sysinfo::System,
}

impl SysinfoMemory {
    /// A source over a fresh `sysinfo::System`.
    #[must_use]
    pub fn new() -> SysinfoMemory {
        SysinfoMemory {
            system: sysinfo::System::new(),
        }
    }
}

impl Default for SysinfoMemory {
    fn default() -> Self {
        SysinfoMemory::new()
    }
}

impl Source for SysinfoMemory {
    fn sample(&mut self) -> io::Result<Reading> {
        self.system.refresh_memory();
        let total = self.system.total_memory();
        if total == 0 {
            return Err(io::Error::other(
                "sysinfo reports no memory on this platform",
            ));
        }
        let used = total.saturating_sub(self.system.available_memory());
        Ok(Reading::from_used(used as f64, total as f64))
    }

    fn name(&self) -> &str {
        "sysinfo-memory"
    }
}

impl fmt::Debug for SysinfoMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SysinfoMemory").finish_non_exhaustive()
    }
}
