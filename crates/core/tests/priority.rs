//! Priorities, cohorts and levels: parsing, display and ordering; tables
//! of one value per priority.

use proptest::prelude::*;
use tower_pressure_core::{Cohort, PerPriority, PressureLevel, Priority, PriorityOf};

fn any_priority() -> impl Strategy<Value = Priority> {
    (0usize..5).prop_map(|i| Priority::from_index(i).expect("index in range"))
}

/// Randomly upper-/lower-cases each letter.
fn mixed_case(s: &str, mask: u64) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

proptest! {
    #[test]
    fn priority_names_round_trip_in_any_case(p in any_priority(), mask in any::<u64>()) {
        let text = mixed_case(&p.to_string(), mask);
        prop_assert_eq!(text.parse::<Priority>(), Ok(p));
    }

    #[test]
    fn priority_digits_parse_to_their_index(p in any_priority()) {
        prop_assert_eq!(p.index().to_string().parse::<Priority>(), Ok(p));
    }

    #[test]
    fn priority_order_agrees_with_index(a in any_priority(), b in any_priority()) {
        prop_assert_eq!(a.cmp(&b), a.index().cmp(&b.index()));
    }

    #[test]
    fn arbitrary_text_is_an_error_or_a_priority_never_a_panic(s in ".{0,80}") {
        match s.parse::<Priority>() {
            Ok(p) => prop_assert!(s.trim().eq_ignore_ascii_case(p.as_str()) || s.trim() == p.index().to_string()),
            Err(e) => prop_assert!(e.to_string().contains("unknown priority")),
        }
    }

    #[test]
    fn level_names_round_trip_in_any_case(i in 0usize..5, mask in any::<u64>()) {
        let level = PressureLevel::from_index(i);
        prop_assert_eq!(mixed_case(level.as_str(), mask).parse::<PressureLevel>(), Ok(level));
        prop_assert_eq!(level.index(), i);
    }

    #[test]
    fn admission_levels_order_priority_first_then_cohort(
        a in any_priority(), b in any_priority(), ca in 0u8..128, cb in 0u8..128,
    ) {
        let (ca, cb) = (Cohort::try_from(ca).unwrap(), Cohort::try_from(cb).unwrap());
        let la = ca.admission_level(a);
        prop_assert!(la < 640);
        prop_assert_eq!(la.cmp(&cb.admission_level(b)), (a, ca).cmp(&(b, cb)));
    }

    #[test]
    fn any_hash_maps_to_a_valid_cohort(h in any::<u64>()) {
        prop_assert!(Cohort::from_hash(h).get() <= 127);
    }
}

#[test]
fn unknown_priority_text_is_an_error_value() {
    for bad in ["", "urgent", "5", "-1", "02", "highest", "crit ical"] {
        assert!(bad.parse::<Priority>().is_err(), "{bad:?} parsed");
    }
    let long = "x".repeat(10_000);
    let err = long.parse::<Priority>().unwrap_err();
    assert!(
        err.to_string().len() < 200,
        "the error does not echo huge input"
    );
}

#[test]
fn priority_default_is_normal_and_bounds_are_bulk_and_critical() {
    assert_eq!(Priority::default(), Priority::Normal);
    assert_eq!(Priority::ALL.iter().min(), Some(&Priority::Bulk));
    assert_eq!(Priority::ALL.iter().max(), Some(&Priority::Critical));
    assert_eq!(Priority::from_index(5), None);
}

#[test]
fn cohort_rejects_values_above_127() {
    assert_eq!(Cohort::try_from(127).map(Cohort::get), Ok(127));
    assert!(Cohort::try_from(128).is_err());
    assert!(
        Cohort::try_from(255)
            .unwrap_err()
            .to_string()
            .contains("255")
    );
}

#[test]
fn http_request_without_extension_is_normal_and_ignores_priority_headers() {
    let req = http::Request::builder()
        .header("x-priority", "critical")
        .header("priority", "u=0")
        .body(())
        .unwrap();
    assert_eq!(
        req.priority(),
        Priority::Normal,
        "a header alone never raises priority"
    );
    assert_eq!(req.cohort(), Cohort::default());
    assert_eq!(req.deadline(), None);
}

#[test]
fn http_request_reads_priority_cohort_and_deadline_from_extensions() {
    let mut req = http::Request::new(());
    let cohort = Cohort::try_from(9).unwrap();
    let deadline = tower_pressure_core::Deadline::at(tokio::time::Instant::now());
    req.extensions_mut().insert(Priority::Bulk);
    req.extensions_mut().insert(cohort);
    req.extensions_mut().insert(deadline);
    assert_eq!(req.priority(), Priority::Bulk);
    assert_eq!(req.cohort(), cohort);
    assert_eq!(req.deadline(), Some(deadline));
}

#[test]
fn per_priority_is_indexed_and_iterated_by_priority_bulk_first() {
    let mut t = PerPriority::from([10, 11, 12, 13, 14]);
    assert_eq!(t[Priority::Bulk], 10);
    assert_eq!(t[Priority::Critical], 14);
    t[Priority::High] = 30;
    assert_eq!(<[i32; 5]>::from(t), [10, 11, 12, 30, 14]);

    let pairs: Vec<(Priority, i32)> = t.iter().map(|(p, &v)| (p, v)).collect();
    assert_eq!(pairs.first(), Some(&(Priority::Bulk, 10)));
    assert_eq!(pairs.last(), Some(&(Priority::Critical, 14)));
    assert_eq!(t.iter().len(), 5);
    assert_eq!(
        t.into_iter().map(|(p, _)| p).collect::<Vec<_>>(),
        Priority::ALL
    );
    assert_eq!(t.values().sum::<i32>(), 10 + 11 + 12 + 30 + 14);

    for (p, v) in &mut t {
        *v = p.index() as i32;
    }
    assert_eq!(t, PerPriority::from_fn(|p| p.index() as i32));
    assert_eq!(t.map(|v| v * 2), PerPriority::from_array([0, 2, 4, 6, 8]));
    assert_eq!(PerPriority::<u8>::default(), PerPriority::from([0; 5]));
}

#[test]
fn per_priority_from_fn_calls_in_priority_order() {
    let mut seen = Vec::new();
    let _ = PerPriority::from_fn(|p| seen.push(p));
    assert_eq!(seen, Priority::ALL);
}
