//! What one run of the experiment measured, system by system: the data the
//! report shows and the targets are judged on, kept apart from both so the
//! targets need nothing of the report.

use std::time::Duration;

use serde::Serialize;
use tower_pressure::admission::ClassCounts;
use tower_pressure::{PerPriority, Priority};
use voice_gateway::SLO;

use crate::load::{ClassResult, Outcome, Sample};

/// The width of a step-phase time bucket.
pub(crate) const BUCKET: Duration = Duration::from_millis(100);

/// One time bucket of the step phase.
#[derive(Debug, Serialize)]
pub(crate) struct Bucket {
    pub(crate) t_ms: u64,
    /// Requests scheduled in the bucket, by class (`Bulk` first).
    pub(crate) offered: [u64; 5],
    /// Answered `200` (in time or late), by class.
    pub(crate) served: [u64; 5],
    /// Refused or failed, by class.
    pub(crate) refused: [u64; 5],
    /// p99 latency of High successes scheduled in the bucket, if any.
    pub(crate) high_p99_ms: Option<f64>,
    /// tower-pressure's queue length at the bucket's end.
    pub(crate) queue_len: Option<usize>,
    /// tower-pressure's concurrency limit at the bucket's end.
    pub(crate) limit: Option<usize>,
}

/// The step phase of one system: 0.5× → 5× → 0.5× capacity.
#[derive(Debug, Serialize)]
pub(crate) struct Step {
    pub(crate) phase_ms: u64,
    pub(crate) buckets: Vec<Bucket>,
    /// After the step up, how long until every later bucket of the 5×
    /// phase had High p99 within its objective; `None` if it never did.
    pub(crate) high_recovery_ms: Option<u64>,
}

impl Step {
    /// `limiter` holds the limiter's (queue length, limit) at the end of
    /// each bucket, for the systems that have one.
    pub(crate) fn new(
        samples: &[Sample],
        phase: Duration,
        limiter: Option<Vec<(usize, usize)>>,
    ) -> Step {
        let n = (3 * phase.as_millis() / BUCKET.as_millis()) as usize;
        let mut buckets: Vec<Bucket> = (0..n)
            .map(|i| Bucket {
                t_ms: (i as u128 * BUCKET.as_millis()) as u64,
                offered: [0; 5],
                served: [0; 5],
                refused: [0; 5],
                high_p99_ms: None,
                queue_len: limiter.as_ref().and_then(|q| q.get(i)).map(|q| q.0),
                limit: limiter.as_ref().and_then(|q| q.get(i)).map(|q| q.1),
            })
            .collect();
        let mut high: Vec<Vec<u64>> = vec![Vec::new(); n];
        for s in samples {
            let i = (s.at.as_millis() / BUCKET.as_millis()) as usize;
            let Some(b) = buckets.get_mut(i) else {
                continue;
            };
            let c = s.class.index();
            b.offered[c] += 1;
            match s.outcome {
                Outcome::Good | Outcome::Late => {
                    b.served[c] += 1;
                    if s.class == Priority::High {
                        high[i].push(s.micros);
                    }
                }
                Outcome::Rejected | Outcome::Failed => b.refused[c] += 1,
            }
        }
        for (b, h) in buckets.iter_mut().zip(high) {
            b.high_p99_ms = p99_ms(h);
        }
        let objective = SLO[Priority::High.index()].as_secs_f64() * 1000.0;
        let (up, down) = (n / 3, 2 * n / 3);
        // A bucket is within when every High request scheduled in it that
        // got an answer got it in time, and at least one did (or none came).
        let within = |b: &Bucket| {
            let hi = Priority::High.index();
            b.offered[hi] == 0 || b.high_p99_ms.is_some_and(|p| p <= objective)
        };
        let high_recovery_ms = (up..down)
            .find(|&i| buckets[i..down].iter().all(within))
            .map(|i| buckets[i].t_ms - buckets[up].t_ms);
        Step {
            phase_ms: phase.as_millis() as u64,
            buckets,
            high_recovery_ms,
        }
    }

    /// During the 5× part of the step: the median concurrency limit, and
    /// the share of its 100 ms buckets whose limit was within ±15 % of
    /// `ideal`; `None` without a limiter.
    pub(crate) fn limit_at_5x(&self, ideal: usize) -> Option<(usize, f64)> {
        let n = self.buckets.len();
        let limits: Vec<usize> = self.buckets[n / 3..2 * n / 3]
            .iter()
            .filter_map(|b| b.limit)
            .collect();
        (!limits.is_empty()).then(|| median_and_share_within(limits, ideal))
    }
}

/// Whether `limit` is within ±15 % of `ideal`.
fn within_15(limit: usize, ideal: usize) -> bool {
    (limit as f64 - ideal as f64).abs() <= 0.15 * ideal as f64
}

/// The median of `limits` (0 if none) and the share of them within ±15 %
/// of `ideal`.
fn median_and_share_within(mut limits: Vec<usize>, ideal: usize) -> (usize, f64) {
    let inside = limits.iter().filter(|&&l| within_15(l, ideal)).count();
    let share = inside as f64 / limits.len().max(1) as f64;
    limits.sort_unstable();
    (limits.get(limits.len() / 2).copied().unwrap_or(0), share)
}

/// The 99th percentile of `micros`, in milliseconds; `None` if empty.
fn p99_ms(mut micros: Vec<u64>) -> Option<f64> {
    if micros.is_empty() {
        return None;
    }
    micros.sort_unstable();
    let k = ((micros.len() as f64 * 0.99).ceil() as usize).clamp(1, micros.len()) - 1;
    Some(micros[k] as f64 / 1000.0)
}

/// One load level of one system.
#[derive(Debug, Serialize)]
pub(crate) struct Level {
    /// Offered load as a multiple of capacity.
    pub(crate) load: f64,
    pub(crate) offered_per_s: f64,
    pub(crate) seconds: f64,
    /// By class, `Bulk` first.
    pub(crate) classes: Vec<ClassResult>,
    /// tower-pressure only: nothing in flight or queued after the phase.
    pub(crate) idle_after: Option<bool>,
    /// p99 time to a refusal, all classes together.
    pub(crate) rejected_p99_ms: f64,
    /// tower-pressure only: the limiter's refusals by reason and class,
    /// from the end of the warm-up to the end of the drain.
    pub(crate) refusals: Option<Refusals>,
}

/// Why the limiter refused, by class (`Bulk` first).
#[derive(Debug, Serialize)]
pub(crate) struct Refusals {
    /// The queue (or the class's cap) was full, and nobody below it to push
    /// out.
    pub(crate) queue_full: [u64; 5],
    /// Waited until the class's queue timeout.
    pub(crate) timed_out: [u64; 5],
    /// Pushed out of a full queue by a more important request.
    pub(crate) evicted: [u64; 5],
    /// Refused at arrival because the estimated wait was past the class's
    /// queue timeout (or, while its queue stood, past a tenth of it), or
    /// its own deadline had passed.
    pub(crate) deadline_unmeetable: [u64; 5],
    /// Refused by emergency mode.
    pub(crate) emergency: [u64; 5],
}

impl Refusals {
    /// The refusals counted between two snapshots of the limiter's counts.
    pub(crate) fn between(
        before: &PerPriority<ClassCounts>,
        after: &PerPriority<ClassCounts>,
    ) -> Refusals {
        let d = |f: fn(&ClassCounts) -> u64| -> [u64; 5] {
            Priority::ALL.map(|p| f(&after[p]).saturating_sub(f(&before[p])))
        };
        Refusals {
            queue_full: d(|c| c.queue_full),
            timed_out: d(|c| c.timed_out),
            evicted: d(|c| c.evicted),
            deadline_unmeetable: d(|c| c.deadline_unmeetable),
            emergency: d(|c| c.emergency),
        }
    }
}

impl Level {
    /// Answers within their objective, per second.
    pub(crate) fn goodput(&self) -> f64 {
        self.classes.iter().map(|c| c.good as f64).sum::<f64>() / self.seconds
    }
}

impl Level {
    /// Requests scheduled in the measured phase, all classes.
    pub(crate) fn offered(&self) -> u64 {
        self.classes.iter().map(|c| c.offered).sum()
    }

    /// Refused or failed, all classes.
    pub(crate) fn refused(&self) -> u64 {
        self.classes.iter().map(|c| c.rejected + c.failed).sum()
    }
}

/// One system across the load levels and scenarios.
#[derive(Debug, Serialize)]
pub(crate) struct Run {
    pub(crate) system: &'static str,
    /// The class mix at each load level.
    pub(crate) levels: Vec<Level>,
    /// Bursts of High over Normal and Low below capacity.
    pub(crate) bursty: Option<Level>,
    /// Normal alone, at 2× and 5×.
    pub(crate) single: Vec<Level>,
    pub(crate) step: Step,
    /// The capacity step, for the systems with a limiter.
    pub(crate) capacity_step: Option<CapacityStep>,
}

/// A gateway whose slots change under a steady overload: each part's
/// adaptive (or fixed) limit against the slots it had.
#[derive(Debug, Serialize)]
pub(crate) struct CapacityStep {
    /// Requests per second offered throughout (1.5× the first part's
    /// capacity).
    pub(crate) offered_per_s: f64,
    pub(crate) parts: Vec<CapacityPart>,
}

/// One part of the capacity step.
#[derive(Debug, Serialize)]
pub(crate) struct CapacityPart {
    /// The gateway's slots: the ideal limit.
    pub(crate) slots: usize,
    pub(crate) seconds: f64,
    /// The limit every 100 ms.
    pub(crate) limits: Vec<usize>,
    /// How long into the part the limit entered ±15 % of the slots for the
    /// rest of it; `None` if it never did.
    pub(crate) settled_ms: Option<u64>,
    /// The median limit of the part's second half.
    pub(crate) median_limit: usize,
    /// The share of the part's second half the limit was within ±15 %.
    pub(crate) in_band: f64,
    /// Answers within their objective, per second.
    pub(crate) goodput_per_s: f64,
    /// p99 latency of High's answers.
    pub(crate) high_p99_ms: f64,
}

impl CapacityPart {
    /// The part from `from` for `length`, with `slots` slots: `limits`
    /// sampled every [`BUCKET`] and the samples scheduled in it.
    pub(crate) fn new(
        slots: usize,
        from: Duration,
        length: Duration,
        limits: Vec<usize>,
        samples: &[Sample],
    ) -> CapacityPart {
        let settled_ms = match limits.iter().rposition(|&l| !within_15(l, slots)) {
            None => Some(0),
            Some(i) if i + 1 < limits.len() => Some((i as u64 + 1) * BUCKET.as_millis() as u64),
            Some(_) => None,
        };
        let (median_limit, in_band) =
            median_and_share_within(limits[limits.len() / 2..].to_vec(), slots);
        let mine: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.at >= from && s.at < from + length)
            .collect();
        let good = mine.iter().filter(|s| s.outcome == Outcome::Good).count();
        let high: Vec<u64> = mine
            .iter()
            .filter(|s| {
                s.class == Priority::High && matches!(s.outcome, Outcome::Good | Outcome::Late)
            })
            .map(|s| s.micros)
            .collect();
        let high_p99_ms = p99_ms(high).unwrap_or(0.0);
        CapacityPart {
            slots,
            seconds: length.as_secs_f64(),
            limits,
            settled_ms,
            median_limit,
            in_band,
            goodput_per_s: good as f64 / length.as_secs_f64(),
            high_p99_ms,
        }
    }
}

impl Run {
    /// Normal alone at `load`× capacity.
    pub(crate) fn single_at(&self, load: f64) -> Option<&Level> {
        self.single.iter().find(|l| l.load == load)
    }
}
