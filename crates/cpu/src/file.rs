//! The configurations from a configuration file (feature `serde`),
//! validated by their builders on the way in.

use std::time::Duration;

use serde::Deserialize;
use tower_pressure_core::{ConfigError, Priority};

use crate::{CpuSignalConfig, CpuThrottleConfig};

/// [`CpuThrottleConfig`] as written in TOML (or any serde format); every
/// field is optional and defaults as the builder does:
///
/// ```toml
/// start_delay_ms = 100
/// aggressive_delay_ms = 500
/// emergency_delay_ms = 1000
/// max_delay_ms = 2000
/// shed_bulk_at_emergency = false
/// max_delayed = 1024
/// delay_uncontended = false
/// [multipliers]
/// bulk = 2.0
/// low = 1.5
/// normal = 1.0
/// high = 0.0
/// critical = 0.0
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CpuThrottleFile {
    start_delay_ms: Option<u64>,
    aggressive_delay_ms: Option<u64>,
    emergency_delay_ms: Option<u64>,
    max_delay_ms: Option<u64>,
    shed_bulk_at_emergency: Option<bool>,
    max_delayed: Option<usize>,
    delay_uncontended: Option<bool>,
    #[serde(default)]
    multipliers: MultipliersFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MultipliersFile {
    bulk: Option<f64>,
    low: Option<f64>,
    normal: Option<f64>,
    high: Option<f64>,
    critical: Option<f64>,
}

impl TryFrom<CpuThrottleFile> for CpuThrottleConfig {
    type Error = ConfigError;

    fn try_from(f: CpuThrottleFile) -> Result<Self, ConfigError> {
        let mut b = CpuThrottleConfig::builder();
        if let Some(ms) = f.start_delay_ms {
            b = b.start_delay(Duration::from_millis(ms));
        }
        if let Some(ms) = f.aggressive_delay_ms {
            b = b.aggressive_delay(Duration::from_millis(ms));
        }
        if let Some(ms) = f.emergency_delay_ms {
            b = b.emergency_delay(Duration::from_millis(ms));
        }
        if let Some(ms) = f.max_delay_ms {
            b = b.max_delay(Duration::from_millis(ms));
        }
        if let Some(max) = f.max_delayed {
            b = b.max_delayed(max);
        }
        if let Some(delay) = f.delay_uncontended {
            b = b.delay_uncontended(delay);
        }
        if let Some(shed) = f.shed_bulk_at_emergency {
            b = b.shed_bulk_at_emergency(shed);
        }
        let m = f.multipliers;
        for (p, v) in [
            (Priority::Bulk, m.bulk),
            (Priority::Low, m.low),
            (Priority::Normal, m.normal),
            (Priority::High, m.high),
            (Priority::Critical, m.critical),
        ] {
            if let Some(v) = v {
                b = b.multiplier(p, v);
            }
        }
        b.build()
    }
}

/// [`CpuSignalConfig`] as written in TOML (or any serde format); every
/// field is optional and defaults as the builder does:
///
/// ```toml
/// warm = 0.5
/// start = 0.7
/// aggressive = 0.85
/// emergency = 0.95
/// hysteresis = 0.02
/// interval_ms = 50
/// window = 4
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CpuSignalFile {
    warm: Option<f64>,
    start: Option<f64>,
    aggressive: Option<f64>,
    emergency: Option<f64>,
    hysteresis: Option<f64>,
    interval_ms: Option<u64>,
    window: Option<usize>,
}

impl TryFrom<CpuSignalFile> for CpuSignalConfig {
    type Error = ConfigError;

    fn try_from(f: CpuSignalFile) -> Result<Self, ConfigError> {
        let mut b = CpuSignalConfig::builder();
        if let Some(t) = f.warm {
            b = b.warm(t);
        }
        if let Some(t) = f.start {
            b = b.start(t);
        }
        if let Some(t) = f.aggressive {
            b = b.aggressive(t);
        }
        if let Some(t) = f.emergency {
            b = b.emergency(t);
        }
        if let Some(h) = f.hysteresis {
            b = b.hysteresis(h);
        }
        if let Some(ms) = f.interval_ms {
            b = b.interval(Duration::from_millis(ms));
        }
        if let Some(w) = f.window {
            b = b.window(w);
        }
        b.build()
    }
}
