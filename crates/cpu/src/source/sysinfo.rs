//! [`SysinfoCpu`]: the portable fallback, through the `sysinfo` crate.

use sysinfo::{CpuRefreshKind, RefreshKind, System};
use tower_pressure_core::Reading;

/// Host CPU utilisation through the [`sysinfo`] crate: the portable fallback
/// for machines without `/proc` (macOS, Windows, the BSDs).
///
/// The first sample after creating it compares with the counters read at
/// creation.
pub struct SysinfoCpu {
    system: System,
}

impl std::fmt::Debug for SysinfoCpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SysinfoCpu")
            .field("cpus", &self.system.cpus().len())
            .finish()
    }
}

impl Default for SysinfoCpu {
    fn default() -> Self {
        SysinfoCpu::new()
    }
}

impl SysinfoCpu {
    /// Reads the CPU counters once (the baseline).
    #[must_use]
    pub fn new() -> SysinfoCpu {
        let system = System::new_with_specifics(
            RefreshKind::nothing().with_cpu(CpuRefreshKind::nothing().with_cpu_usage()),
        );
        SysinfoCpu { system }
    }

    /// Whether sysinfo knows this platform's CPUs.
    #[must_use]
    pub fn is_supported(&self) -> bool {
        sysinfo::IS_SUPPORTED_SYSTEM && !self.system.cpus().is_empty()
    }

    pub(crate) fn sample_reading(&mut self) -> Reading {
        self.system.refresh_cpu_usage();
        #[expect(
            clippy::cast_precision_loss,
            reason = "a machine has far fewer than 2^52 CPUs"
        )]
        let cores = self.system.cpus().len().max(1) as f64;
        let u = f64::from(self.system.global_cpu_usage()) / 100.0;
        Reading::from_used(u.clamp(0.0, 1.0) * cores, cores)
    }

    pub(crate) fn describe(&self) -> String {
        format!("sysinfo, {} cpus", self.system.cpus().len())
    }
}
