//! Parsers of the CPU files: pure functions of the text, tested alone.

use std::io;

use tower_pressure_core::cgroup::{keyed_value, parse_u64};

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// The CFS period the kernel assumes when `cpu.max` gives none, 100 ms.
const DEFAULT_PERIOD_US: u64 = 100_000;

/// A cgroup v2 `cpu.max`: `"$QUOTA $PERIOD"` in microseconds, `max` as the
/// quota meaning no limit. Returns the limit in cores, `None` for no limit.
pub(crate) fn cpu_max_cores(text: &str) -> io::Result<Option<f64>> {
    let mut fields = text.split_whitespace();
    let quota = fields.next().ok_or_else(|| invalid("cpu.max is empty"))?;
    let period = match fields.next() {
        Some(p) => parse_u64(p)?,
        None => DEFAULT_PERIOD_US,
    };
    if fields.next().is_some() {
        return Err(invalid(format!(
            "cpu.max has more than two fields: {text:?}"
        )));
    }
    if period == 0 {
        return Err(invalid("cpu.max has a zero period"));
    }
    if quota == "max" {
        return Ok(None);
    }
    let quota = parse_u64(quota)?;
    if quota == 0 {
        return Err(invalid("cpu.max has a zero quota"));
    }
    Ok(Some(ratio(quota, period)))
}

/// A cgroup v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us`: a quota of `-1`
/// means no limit. Returns the limit in cores, `None` for no limit.
pub(crate) fn cfs_cores(quota: &str, period: &str) -> io::Result<Option<f64>> {
    let q: i64 = quota.trim().parse().map_err(|_| {
        invalid(format!(
            "cpu.cfs_quota_us is not an integer: {:?}",
            quota.trim()
        ))
    })?;
    if q < 0 {
        // The kernel writes -1; any negative value means "no quota".
        return Ok(None);
    }
    let p = parse_u64(period)?;
    if q == 0 || p == 0 {
        return Err(invalid("cpu.cfs_quota_us or cpu.cfs_period_us is zero"));
    }
    Ok(Some(ratio(q.unsigned_abs(), p)))
}

#[expect(
    clippy::cast_precision_loss,
    reason = "CPU times and quotas are far below 2^52"
)]
pub(crate) fn ratio(a: u64, b: u64) -> f64 {
    a as f64 / b as f64
}

/// The counters of a cgroup `cpu.stat` (v2) or the throttling part of a
/// v1 `cpu.stat`. Throttling fields that are absent read as zero (the v2
/// file lacks them when the `cpu` controller is not enabled).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Throttling {
    pub(crate) periods: u64,
    pub(crate) throttled: u64,
    /// Time throttled, in microseconds.
    pub(crate) throttled_us: u64,
}

/// Parses the throttling counters; `throttled_key` is `throttled_usec`
/// (v2, microseconds) or `throttled_time` (v1, nanoseconds).
pub(crate) fn throttling(text: &str, v1: bool) -> io::Result<Throttling> {
    let optional = |key: &str| -> io::Result<u64> {
        if text
            .lines()
            .any(|l| l.split_whitespace().next() == Some(key))
        {
            keyed_value(text, key)
        } else {
            Ok(0)
        }
    };
    Ok(Throttling {
        periods: optional("nr_periods")?,
        throttled: optional("nr_throttled")?,
        throttled_us: if v1 {
            optional("throttled_time")? / 1000
        } else {
            optional("throttled_usec")?
        },
    })
}

/// The aggregate `cpu` line of `/proc/stat`, in clock ticks, and the number
/// of `cpuN` lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    pub(crate) busy: u64,
    pub(crate) total: u64,
    pub(crate) cpus: usize,
}

/// Parses `/proc/stat`: `cpu user nice system idle iowait irq softirq steal
/// guest guest_nice`. Total is the first eight fields (guest time is
/// already inside user), busy is total − idle − iowait. Kernels older than
/// 2.6.11 write fewer fields; at least the first four are required.
pub(crate) fn proc_stat(text: &str) -> io::Result<ProcStat> {
    let mut agg = None;
    let mut cpus = 0;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("cpu") => {
                let mut v = [0u64; 8];
                let mut n = 0;
                for (slot, f) in v.iter_mut().zip(fields) {
                    *slot = parse_u64(f)?;
                    n += 1;
                }
                if n < 4 {
                    return Err(invalid(format!("/proc/stat cpu line is short: {line:?}")));
                }
                let total = v.iter().try_fold(0u64, |a, &x| a.checked_add(x));
                let total = total.ok_or_else(|| invalid("/proc/stat counters overflow"))?;
                let idle = v[3].saturating_add(v[4]);
                agg = Some((total.saturating_sub(idle), total));
            }
            Some(name)
                if name.len() > 3
                    && name.starts_with("cpu")
                    && name[3..].bytes().all(|b| b.is_ascii_digit()) =>
            {
                cpus += 1;
            }
            _ => {}
        }
    }
    let (busy, total) = agg.ok_or_else(|| invalid("/proc/stat has no aggregate cpu line"))?;
    Ok(ProcStat { busy, total, cpus })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_max_reads_quota_over_period_and_max_as_no_limit() {
        assert_eq!(cpu_max_cores("150000 100000\n").unwrap(), Some(1.5));
        assert_eq!(cpu_max_cores("max 100000\n").unwrap(), None);
        assert_eq!(cpu_max_cores("max").unwrap(), None);
        assert_eq!(cpu_max_cores("50000").unwrap(), Some(0.5));
        for bad in ["", "x 100000", "100 0", "0 100000", "1 2 3", "-5 100000"] {
            assert!(cpu_max_cores(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cfs_quota_of_minus_one_is_no_limit() {
        assert_eq!(cfs_cores("-1\n", "100000\n").unwrap(), None);
        assert_eq!(cfs_cores("200000\n", "100000\n").unwrap(), Some(2.0));
        assert!(cfs_cores("lots", "100000").is_err());
        assert!(cfs_cores("100", "0").is_err());
        assert!(cfs_cores("100", "").is_err());
    }

    #[test]
    fn proc_stat_busy_leaves_out_idle_and_iowait() {
        let text = "cpu  100 5 50 800 40 3 2 0 7 0\ncpu0 50 2 25 400 20 1 1 0 3 0\ncpu1 50 3 25 400 20 2 1 0 4 0\nintr 1 2 3\n";
        let s = proc_stat(text).unwrap();
        assert_eq!(s.total, 100 + 5 + 50 + 800 + 40 + 3 + 2);
        assert_eq!(s.busy, 100 + 5 + 50 + 3 + 2);
        assert_eq!(s.cpus, 2);
        assert!(proc_stat("intr 1 2\n").is_err());
        assert!(proc_stat("cpu 1 2\n").is_err());
        assert!(proc_stat("cpu a b c d\n").is_err());
    }

    #[test]
    fn missing_throttling_fields_read_as_zero() {
        let v2 = "usage_usec 10\nnr_periods 7\nnr_throttled 2\nthrottled_usec 300\n";
        let t = throttling(v2, false).unwrap();
        assert_eq!((t.periods, t.throttled, t.throttled_us), (7, 2, 300));
        let v1 = "nr_periods 7\nnr_throttled 2\nthrottled_time 300000\n";
        assert_eq!(throttling(v1, true).unwrap().throttled_us, 300);
        assert_eq!(
            throttling("usage_usec 10\n", false).unwrap(),
            Throttling::default()
        );
        assert!(throttling("nr_periods x\n", false).is_err());
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC{0,200}") {
            let _ = cpu_max_cores(&s);
            let _ = cfs_cores(&s, &s);
            let _ = proc_stat(&s);
            let _ = throttling(&s, false);
        }
    }
}
