//! Memory sources on fake `/proc` + `/sys/fs/cgroup` trees.

mod support;

use std::io::ErrorKind;
use std::path::Path;

use proptest::prelude::*;
use support::{Fixture, GIB, MIB, meminfo};
use tower_pressure_core::cgroup::CgroupVersion;
use tower_pressure_core::{PressureLevel, Source, Thresholds};
use tower_pressure_memory::{
    CgroupMemory, HeapBudget, Meminfo, MemorySource, ProcessRss, PsiMemory,
};

const V2: &str = "sys/fs/cgroup/app/ctr";
const V1: &str = "sys/fs/cgroup/memory/app/ctr";

#[test]
fn cgroup_v2_reads_the_working_set_against_memory_max() {
    let fx = Fixture::new();
    fx.host().v2(&GIB.to_string(), 600 * MIB, 88 * MIB);
    let mut source = CgroupMemory::discover(fx.root()).unwrap();
    assert_eq!(source.version(), CgroupVersion::V2);
    assert_eq!(source.name(), "cgroup-v2-memory");
    let r = source.sample().unwrap();
    assert_eq!(r.used(), Some((512 * MIB) as f64));
    assert_eq!(r.capacity(), Some(GIB as f64));
    assert_eq!(r.utilization(), 0.5);
}

#[test]
fn cgroup_v2_sees_new_values_on_every_sample() {
    let fx = Fixture::new();
    fx.host().v2(&GIB.to_string(), 512 * MIB, 0);
    let mut source = CgroupMemory::discover(fx.root()).unwrap();
    assert_eq!(source.sample().unwrap().utilization(), 0.5);
    fx.write(&format!("{V2}/memory.current"), &format!("{}\n", 768 * MIB));
    assert_eq!(source.sample().unwrap().utilization(), 0.75);
    fx.write(&format!("{V2}/memory.max"), &format!("{}\n", 2 * GIB));
    assert_eq!(source.sample().unwrap().utilization(), 0.375);
}

#[test]
fn cgroup_v2_with_no_limit_does_not_apply() {
    let fx = Fixture::new();
    fx.host().v2("max", 512 * MIB, 0);
    let err = CgroupMemory::discover(fx.root()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn a_parent_cgroup_with_a_smaller_limit_wins() {
    let fx = Fixture::new();
    fx.host().v2(&(2 * GIB).to_string(), 512 * MIB, 0);
    fx.write("sys/fs/cgroup/app/memory.max", &format!("{GIB}\n"));
    let mut source = CgroupMemory::discover(fx.root()).unwrap();
    assert_eq!(source.limit().unwrap(), Some(GIB));
    assert_eq!(source.sample().unwrap().utilization(), 0.5);
}

#[test]
fn a_parent_limit_shared_with_siblings_reads_the_parents_working_set() {
    // The pod (`app`) holds 1 GiB for two containers; this one uses 256 MiB,
    // the pod 950 MiB of which 10 MiB inactive page cache: near its OOM.
    let fx = Fixture::new();
    fx.host().v2("max", 256 * MIB, 0);
    fx.write("sys/fs/cgroup/app/memory.max", &format!("{GIB}\n"));
    fx.write(
        "sys/fs/cgroup/app/memory.current",
        &format!("{}\n", 950 * MIB),
    );
    fx.write(
        "sys/fs/cgroup/app/memory.stat",
        &format!("anon 0\ninactive_file {}\n", 10 * MIB),
    );
    let mut source = CgroupMemory::discover(fx.root()).unwrap();
    let r = source.sample().unwrap();
    assert_eq!(r.used(), Some((940 * MIB) as f64));
    assert_eq!(r.capacity(), Some(GIB as f64));
    // A container limit of its own, fuller than the pod: that one binds.
    fx.write(&format!("{V2}/memory.max"), &format!("{}\n", 270 * MIB));
    let r = source.sample().unwrap();
    assert_eq!(r.capacity(), Some((270 * MIB) as f64));
}

#[test]
fn a_limited_parent_makes_an_unlimited_child_apply() {
    let fx = Fixture::new();
    fx.host().v2("max", 256 * MIB, 0);
    fx.write("sys/fs/cgroup/app/memory.max", &format!("{GIB}\n"));
    let mut source = CgroupMemory::discover(fx.root()).unwrap();
    assert_eq!(source.sample().unwrap().utilization(), 0.25);
}

#[test]
fn cgroup_v1_subtracts_total_inactive_file_from_usage() {
    let fx = Fixture::new();
    fx.host().v1(GIB, 300 * MIB, 44 * MIB);
    let mut source = CgroupMemory::discover(fx.root()).unwrap();
    assert_eq!(source.version(), CgroupVersion::V1);
    assert_eq!(source.name(), "cgroup-v1-memory");
    assert_eq!(source.sample().unwrap().utilization(), 0.25);
}

#[test]
fn cgroup_v1_unlimited_sentinel_means_no_limit() {
    let fx = Fixture::new();
    fx.host().v1(9_223_372_036_854_771_712, 300 * MIB, 0);
    let err = CgroupMemory::discover(fx.root()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn cgroup_v1_limit_at_or_above_host_memory_means_no_limit() {
    let fx = Fixture::new();
    fx.host().v1(16 * GIB, 300 * MIB, 0);
    assert!(CgroupMemory::discover(fx.root()).is_err());
    fx.v1(64 * GIB, 300 * MIB, 0);
    assert!(CgroupMemory::discover(fx.root()).is_err());
}

#[test]
fn cgroup_v1_parent_and_hierarchical_limits_are_taken_into_account() {
    let fx = Fixture::new();
    fx.host().v1(4 * GIB, GIB, 0);
    fx.write(
        "sys/fs/cgroup/memory/app/memory.limit_in_bytes",
        &format!("{}\n", 2 * GIB),
    );
    let mut source = CgroupMemory::discover(fx.root()).unwrap();
    assert_eq!(source.limit().unwrap(), Some(2 * GIB));
    // A limit above the visible tree shows only in hierarchical_memory_limit.
    fx.write(
        &format!("{V1}/memory.stat"),
        &format!(
            "hierarchical_memory_limit {}\ntotal_inactive_file 0\n",
            GIB + GIB / 3
        ),
    );
    assert_eq!(source.limit().unwrap(), Some(GIB + GIB / 3));
}

#[test]
fn missing_cgroup_files_are_errors_not_panics() {
    let fx = Fixture::new();
    fx.host().v2(&GIB.to_string(), 512 * MIB, 0);
    fx.remove(&format!("{V2}/memory.stat"));
    assert!(CgroupMemory::discover(fx.root()).is_err());

    let fx = Fixture::new();
    fx.host();
    assert_eq!(
        CgroupMemory::discover(fx.root()).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn garbage_in_cgroup_files_is_invalid_data() {
    for (file, text) in [
        ("memory.current", "lots\n"),
        ("memory.max", "-1\n"),
        ("memory.stat", "inactive_file many\n"),
        ("memory.stat", "nothing useful\n"),
    ] {
        let fx = Fixture::new();
        fx.host().v2(&GIB.to_string(), 512 * MIB, 0);
        let mut source = CgroupMemory::discover(fx.root()).unwrap();
        fx.write(&format!("{V2}/{file}"), text);
        let err = source.sample().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData, "{file}: {text:?}");
    }
}

#[test]
fn meminfo_is_one_minus_available_over_total() {
    let fx = Fixture::new();
    fx.write("proc/meminfo", &meminfo(16 * GIB, 4 * GIB));
    let mut source = Meminfo::open(fx.root()).unwrap();
    let r = source.sample().unwrap();
    assert_eq!(r.utilization(), 0.75);
    assert_eq!(r.capacity(), Some((16 * GIB) as f64));
}

#[test]
fn meminfo_without_mem_available_estimates_it() {
    let fx = Fixture::new();
    fx.write(
        "proc/meminfo",
        "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 100 kB\n",
    );
    let r = Meminfo::open(fx.root()).unwrap().sample().unwrap();
    assert_eq!(r.utilization(), 0.75);
}

#[test]
fn meminfo_garbage_is_an_error() {
    for text in [
        "",
        "MemTotal: x kB\n",
        "MemTotal: 0 kB\nMemAvailable: 0 kB\n",
        "MemTotal: 10 MB\n",
    ] {
        let fx = Fixture::new();
        fx.write("proc/meminfo", text);
        assert!(
            Meminfo::open(fx.root()).unwrap().sample().is_err(),
            "{text:?}"
        );
    }
}

#[test]
fn psi_prefers_the_cgroup_file_and_reads_some_avg10() {
    let fx = Fixture::new();
    fx.host().v2(&GIB.to_string(), 0, 0);
    fx.write(
        &format!("{V2}/memory.pressure"),
        "some avg10=12.50 avg60=1.00 avg300=0.00 total=5\nfull avg10=1.00 avg60=0.00 avg300=0.00 total=1\n",
    );
    fx.write(
        "proc/pressure/memory",
        "some avg10=1.00 avg60=0.00 avg300=0.00 total=1\n",
    );
    // 12.5 % stalled: a quarter of the way from Medium (10 %) to High
    // (20 %), on the usage scale from 0.75 to 0.85.
    let mut psi = PsiMemory::discover(fx.root()).unwrap();
    let u = psi.sample().unwrap().utilization();
    assert!((u - 0.775).abs() < 1e-9, "{u}");
}

#[test]
fn a_tenth_of_the_time_stalled_on_memory_reads_medium_not_idle() {
    // Read as a usage share, 10 % would be far below Low (0.60): the
    // machine would look idle while a tenth of its time went to reclaim.
    let fx = Fixture::new();
    fx.host().v1(GIB, 0, 0);
    let thresholds = Thresholds::default();
    for (stall, level) in [
        ("2.00", PressureLevel::None),
        ("5.50", PressureLevel::Low),
        ("11.00", PressureLevel::Medium),
        ("21.00", PressureLevel::High),
        ("41.00", PressureLevel::Critical),
        ("90.00", PressureLevel::Critical),
    ] {
        fx.write(
            "proc/pressure/memory",
            &format!("some avg10={stall} avg60=0.00 avg300=0.00 total=1\n"),
        );
        let mut psi = PsiMemory::discover(fx.root()).unwrap();
        let u = psi.sample().unwrap().utilization();
        assert_eq!(
            thresholds.level(u, PressureLevel::None),
            level,
            "{stall} % stalled read {u}"
        );
    }
}

#[test]
fn psi_thresholds_must_rise_within_0_and_1() {
    let fx = Fixture::new();
    fx.host().v1(GIB, 0, 0);
    fx.write(
        "proc/pressure/memory",
        "some avg10=30.00 avg60=0.00 avg300=0.00 total=1\n",
    );
    let psi = || PsiMemory::discover(fx.root()).unwrap();
    for bad in [
        [0.0, 0.1, 0.2, 0.4],
        [0.1, 0.1, 0.2, 0.4],
        [0.1, 0.2, 0.4, 1.5],
    ] {
        let err = psi().thresholds(bad).unwrap_err();
        assert_eq!(err.field(), "psi.thresholds", "{bad:?}");
    }
    // Critical at 30 %: 30 % reads as 0.95.
    let mut psi = psi().thresholds([0.1, 0.15, 0.2, 0.3]).unwrap();
    let u = psi.sample().unwrap().utilization();
    assert!((u - 0.95).abs() < 1e-9, "{u}");
}

#[test]
fn psi_falls_back_to_the_host_file() {
    let fx = Fixture::new();
    fx.host().v1(GIB, 0, 0);
    fx.write(
        "proc/pressure/memory",
        "some avg10=50.00 avg60=0.00 avg300=0.00 total=1\n",
    );
    // 50 % stalled: a sixth of the way from Critical (40 %) to all the
    // time, on the usage scale from 0.95 to 1.
    let mut psi = PsiMemory::discover(fx.root()).unwrap();
    let u = psi.sample().unwrap().utilization();
    assert!((u - (0.95 + 0.05 / 6.0)).abs() < 1e-9, "{u}");
    let fx = Fixture::new();
    assert!(PsiMemory::discover(fx.root()).is_err());
}

fn auxv(page_size: u64) -> Vec<u8> {
    let mut v = Vec::new();
    for (k, val) in [(33usize, 12345usize), (6, page_size as usize), (0, 0)] {
        v.extend_from_slice(&k.to_ne_bytes());
        v.extend_from_slice(&val.to_ne_bytes());
    }
    v
}

#[test]
fn rss_is_statm_resident_pages_times_the_page_size_from_auxv() {
    let fx = Fixture::new();
    fx.host();
    fx.write("proc/self/statm", "5000 1000 300 10 0 800 0\n");
    std::fs::write(fx.root().join("proc/self/auxv"), auxv(16384)).unwrap();
    let mut rss = ProcessRss::open(fx.root()).unwrap();
    assert_eq!(rss.page_size(), Some(16384));
    assert_eq!(rss.bytes().unwrap(), 1000 * 16384);
    let r = rss.sample().unwrap();
    assert_eq!(r.capacity(), Some((16 * GIB) as f64));
}

#[test]
fn rss_falls_back_to_vm_rss_when_the_page_size_is_unknown() {
    let fx = Fixture::new();
    fx.write("proc/self/status", "Name: x\nVmRSS:\t   2048 kB\n");
    let mut rss = ProcessRss::open(fx.root()).unwrap();
    assert_eq!(rss.page_size(), None);
    assert_eq!(rss.bytes().unwrap(), 2048 * 1024);
    // No MemTotal: no capacity to measure against.
    assert!(rss.sample().is_err());
}

#[test]
fn rss_of_this_process_is_positive() {
    if cfg!(target_os = "linux") {
        let mut rss = ProcessRss::open(Path::new("/")).unwrap();
        assert!(rss.bytes().unwrap() > 0);
        assert!(rss.page_size().unwrap().is_power_of_two());
    }
}

#[test]
fn heap_budget_measures_against_its_budget() {
    let mut budget = HeapBudget::with_measure(1000, || 900).unwrap();
    assert_eq!(budget.sample().unwrap().utilization(), 0.9);
    assert_eq!(budget.max_bytes(), 1000);
    assert_eq!(
        HeapBudget::new(0).unwrap_err().field(),
        "heap_budget.max_bytes"
    );
    if cfg!(target_os = "linux") {
        let mut rss = HeapBudget::new(u64::MAX).unwrap();
        assert!(rss.used_bytes().unwrap() > 0);
    }
}

#[test]
fn auto_prefers_the_container_limit_over_the_host() {
    let fx = Fixture::new();
    fx.host().v2(&GIB.to_string(), 768 * MIB, 0);
    let mut source = MemorySource::auto_at(fx.root());
    assert_eq!(source.active(), Some("cgroup-v2-memory"));
    assert!(format!("{source:?}").contains("cgroup-v2-memory"));
    assert_eq!(source.sample().unwrap().utilization(), 0.75);
}

#[test]
fn auto_uses_the_host_when_the_cgroup_is_unlimited() {
    let fx = Fixture::new();
    fx.host().v1(9_223_372_036_854_771_712, 300 * MIB, 0);
    let mut source = MemorySource::auto_at(fx.root());
    assert_eq!(source.active(), Some("meminfo"));
    assert_eq!(source.sample().unwrap().utilization(), 0.25);
}

#[test]
fn a_failing_source_degrades_to_the_next_in_the_same_sample() {
    let fx = Fixture::new();
    fx.host().v2(&GIB.to_string(), 768 * MIB, 0);
    let mut source = MemorySource::auto_at(fx.root()).retry_every(0);
    fx.write(&format!("{V2}/memory.current"), "garbage\n");
    assert_eq!(source.sample().unwrap().utilization(), 0.25);
    assert_eq!(source.active(), Some("meminfo"));
    // Without retries it stays on the fallback.
    fx.write(&format!("{V2}/memory.current"), &format!("{}\n", 768 * MIB));
    for _ in 0..500 {
        source.sample().unwrap();
    }
    assert_eq!(source.active(), Some("meminfo"));
}

#[test]
fn a_failed_source_is_taken_back_once_it_works_again() {
    let fx = Fixture::new();
    fx.host().v2(&GIB.to_string(), 768 * MIB, 0);
    let mut source = MemorySource::auto_at(fx.root()).retry_every(10);
    fx.write(&format!("{V2}/memory.max"), "garbage\n");
    assert_eq!(source.sample().unwrap().utilization(), 0.25);
    // Still broken at the first retry: stays on the host.
    for _ in 0..10 {
        assert_eq!(source.sample().unwrap().utilization(), 0.25);
    }
    assert_eq!(source.active(), Some("meminfo"));
    fx.write(&format!("{V2}/memory.max"), &format!("{GIB}\n"));
    let readings: Vec<f64> = (0..10)
        .map(|_| source.sample().unwrap().utilization())
        .collect();
    assert_eq!(readings.last(), Some(&0.75));
    assert_eq!(source.active(), Some("cgroup-v2-memory"));
}

#[test]
fn with_nothing_left_a_sample_fails_without_panicking() {
    let mut source = MemorySource::from_chain(Vec::new());
    assert_eq!(source.active(), None);
    assert_eq!(source.name(), "memory-none");
    assert!(source.sample().is_err());
    assert!(source.sample().is_err());
    // A machine with no /proc at all: whatever applies, no panic.
    let fx = Fixture::new();
    let mut source = MemorySource::auto_at(fx.root());
    let _ = source.sample();
}

#[test]
fn real_proc_files_read_again_without_reopening() {
    if cfg!(target_os = "linux") {
        let mut meminfo = Meminfo::open(Path::new("/")).unwrap();
        let mut rss = ProcessRss::open(Path::new("/")).unwrap();
        let before = rss.bytes().unwrap();
        let ballast = vec![1u8; 32 << 20];
        let after = rss.bytes().unwrap();
        assert!(after >= before + (16 << 20), "{before} -> {after}");
        drop(ballast);
        for _ in 0..3 {
            let r = meminfo.sample().unwrap();
            assert!((0.0..=1.0).contains(&r.utilization()));
        }
    }
}

#[cfg(feature = "sysinfo")]
#[test]
fn sysinfo_gives_a_sane_reading() {
    let mut source = tower_pressure_memory::SysinfoMemory::new();
    let r = source.sample().unwrap();
    assert!((0.0..=1.0).contains(&r.utilization()), "{r:?}");
}

#[test]
fn psi_raises_a_reading_when_it_is_higher() {
    let fx = Fixture::new();
    fx.host().v1(9_223_372_036_854_771_712, 0, 0);
    fx.write(
        "proc/pressure/memory",
        "some avg10=40.00 avg60=0.00 avg300=0.00 total=1\n",
    );
    let mut source = MemorySource::auto_at(fx.root()).with_psi();
    assert!(source.has_psi());
    // 40 % stalled is Critical's 0.95, above the chain's 0.25.
    assert_eq!(source.sample().unwrap().utilization(), 0.95);
    fx.write(
        "proc/pressure/memory",
        "some avg10=1.00 avg60=0.00 avg300=0.00 total=1\n",
    );
    assert_eq!(source.sample().unwrap().utilization(), 0.25);
}

#[test]
fn auto_on_this_machine_gives_a_sane_reading() {
    let mut source = MemorySource::auto();
    if cfg!(target_os = "linux") {
        let r = source.sample().unwrap();
        assert!(
            (0.0..=1.0).contains(&r.utilization()),
            "{r:?} from {source:?}"
        );
        assert!(source.active().is_some());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn garbage_in_any_memory_file_never_panics(
        file in prop::sample::select(vec![
            "sys/fs/cgroup/app/ctr/memory.current",
            "sys/fs/cgroup/app/ctr/memory.max",
            "sys/fs/cgroup/app/ctr/memory.stat",
            "sys/fs/cgroup/app/memory.max",
            "proc/meminfo",
            "proc/self/cgroup",
            "proc/self/mountinfo",
        ]),
        bytes in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let fx = Fixture::new();
        fx.host().v2(&GIB.to_string(), 512 * MIB, 0);
        let mut source = MemorySource::auto_at(fx.root());
        std::fs::write(fx.root().join(file), &bytes).unwrap();
        if let Ok(r) = source.sample() {
            prop_assert!((0.0..=1.0).contains(&r.utilization()));
        }
        let mut fresh = MemorySource::auto_at(fx.root());
        let _ = fresh.sample();
    }
}
