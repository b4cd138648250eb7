//! The CPU sources on fixture trees (fake cgroup v2 and v1, no limit,
//! missing files, garbage) and on the real machine.

mod support;

use std::time::Duration;

use tower_pressure_core::Source;
use tower_pressure_core::cgroup::Cgroups;
use tower_pressure_cpu::{CgroupCpu, CpuSource, ProcStat, RuntimeBusy, host_cores};

use support::Fixture;

const MS_100: Duration = Duration::from_millis(100);

fn v2(f: &Fixture, host: f64) -> std::io::Result<CgroupCpu> {
    let cgroups = Cgroups::discover(f.root()).unwrap();
    CgroupCpu::open_v2(cgroups.unified().unwrap(), host)
}

fn v1(f: &Fixture, host: f64) -> std::io::Result<CgroupCpu> {
    let cgroups = Cgroups::discover(f.root()).unwrap();
    let cpu = cgroups.controller("cpu").unwrap();
    let acct = cgroups.controller("cpuacct").unwrap();
    CgroupCpu::open_v1(&cpu, &acct, host)
}

fn approx(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[tokio::test(start_paused = true)]
async fn cgroup_v2_usage_is_measured_against_the_quota() {
    let f = Fixture::cgroup_v2("v2-quota");
    f.write("sys/fs/cgroup/ctr/cpu.max", "150000 100000\n");
    f.v2_stat(1_000_000, 0, 0);
    let mut s = v2(&f, 4.0).unwrap();
    assert_eq!(s.quota().unwrap(), Some(1.5));
    // 90 ms of CPU in 100 ms of wall time: 0.9 cores of 1.5.
    f.v2_stat(1_090_000, 0, 0);
    tokio::time::advance(MS_100).await;
    let r = s.sample().unwrap();
    assert!(approx(r.utilization(), 0.6), "{r:?}");
    assert_eq!(r.capacity(), Some(1.5));
    assert!(approx(r.used().unwrap(), 0.9));
    let stats = s.last_stats().unwrap();
    assert!(approx(stats.used_cores, 0.9));
    assert_eq!(stats.span, MS_100);
}

#[tokio::test(start_paused = true)]
async fn cgroup_v2_without_a_quota_is_measured_against_the_host_cores() {
    let f = Fixture::cgroup_v2("v2-max");
    f.write("sys/fs/cgroup/ctr/cpu.max", "max 100000\n");
    f.v2_stat(0, 0, 0);
    let mut s = v2(&f, 2.0).unwrap();
    assert_eq!(s.quota().unwrap(), None);
    f.v2_stat(100_000, 0, 0);
    tokio::time::advance(MS_100).await;
    let r = s.sample().unwrap();
    assert!(approx(r.utilization(), 0.5), "{r:?}");
    assert_eq!(r.capacity(), Some(2.0));
}

#[tokio::test(start_paused = true)]
async fn a_parent_quota_binds_the_child() {
    let f = Fixture::new("v2-parent");
    f.write("proc/self/cgroup", "0::/pod/ctr\n");
    f.write(
        "proc/self/mountinfo",
        "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
    );
    f.write("sys/fs/cgroup/pod/cpu.max", "50000 100000\n");
    f.write("sys/fs/cgroup/pod/ctr/cpu.max", "max 100000\n");
    f.write("sys/fs/cgroup/pod/ctr/cpu.stat", "usage_usec 0\n");
    let cgroups = Cgroups::discover(f.root()).unwrap();
    let mut s = CgroupCpu::open_v2(cgroups.unified().unwrap(), 8.0).unwrap();
    assert_eq!(s.quota().unwrap(), Some(0.5));
}

/// A Kubernetes pod on cgroup v2: the pod's slice holds the quota, the
/// container's leaf has none.
fn pod(name: &str, pod_quota: &str) -> Fixture {
    let f = Fixture::new(name);
    let leaf = "kubepods.slice/kubepods-pod1.slice/cri-containerd-ab.scope";
    f.write("proc/self/cgroup", &format!("0::/{leaf}\n"));
    f.write(
        "proc/self/mountinfo",
        "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
    );
    f.write("sys/fs/cgroup/kubepods.slice/cpu.max", "max 100000\n");
    f.write(
        "sys/fs/cgroup/kubepods.slice/kubepods-pod1.slice/cpu.max",
        pod_quota,
    );
    f.write(&format!("sys/fs/cgroup/{leaf}/cpu.max"), "max 100000\n");
    f.write(&format!("sys/fs/cgroup/{leaf}/cpu.stat"), "usage_usec 0\n");
    f.proc_stat(0, 0);
    f
}

#[test]
fn a_whole_core_pod_quota_binds_whatever_the_host_has() {
    let f = pod("pod-2-cores", "200000 100000\n");
    // In the pod, `available_parallelism` reports the quota rounded up: 2.
    // On the node there are 64.
    for host in [2.0, 64.0] {
        let s = CpuSource::auto_at(f.root(), host);
        assert_eq!(s.active(), "cgroup-v2-cpu", "host {host}");
        let cgroups = Cgroups::discover(f.root()).unwrap();
        let mut c = CgroupCpu::open_v2(cgroups.unified().unwrap(), host).unwrap();
        assert_eq!(c.quota().unwrap(), Some(2.0), "host {host}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_parent_quota_shared_with_siblings_reads_the_parents_usage() {
    let f = pod("pod-shared", "100000 100000\n");
    let pod_dir = "sys/fs/cgroup/kubepods.slice/kubepods-pod1.slice";
    let leaf = format!("{pod_dir}/cri-containerd-ab.scope");
    f.write(&format!("{pod_dir}/cpu.stat"), "usage_usec 0\n");
    let cgroups = Cgroups::discover(f.root()).unwrap();
    let mut s = CgroupCpu::open_v2(cgroups.unified().unwrap(), 64.0).unwrap();
    // In 100 ms this container used 10 ms; the pod, with a sidecar, 95 ms
    // of its one core.
    f.write(&format!("{leaf}/cpu.stat"), "usage_usec 10000\n");
    f.write(&format!("{pod_dir}/cpu.stat"), "usage_usec 95000\n");
    tokio::time::advance(MS_100).await;
    let r = s.sample().unwrap();
    assert!(approx(r.utilization(), 0.95), "{r:?}");
    assert_eq!(r.capacity(), Some(1.0));
    assert!(approx(s.last_stats().unwrap().used_cores, 0.1));
}

#[tokio::test(start_paused = true)]
async fn a_quota_above_the_host_cores_is_no_limit() {
    let f = Fixture::cgroup_v2("v2-big-quota");
    f.write("sys/fs/cgroup/ctr/cpu.max", "800000 100000\n");
    f.v2_stat(0, 0, 0);
    let mut s = v2(&f, 2.0).unwrap();
    assert_eq!(s.quota().unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn throttled_periods_count_as_pressure_even_when_usage_looks_low() {
    let f = Fixture::cgroup_v2("v2-throttled");
    f.write("sys/fs/cgroup/ctr/cpu.max", "100000 100000\n");
    f.v2_stat(0, 100, 0);
    let mut s = v2(&f, 4.0).unwrap();
    // 40 ms of CPU in 100 ms (0.4 of the quota), but 8 of the 10 periods
    // the group was runnable in were throttled.
    f.v2_stat(40_000, 110, 8);
    tokio::time::advance(MS_100).await;
    let r = s.sample().unwrap();
    assert!(approx(r.utilization(), 0.8), "{r:?}");
    let stats = s.last_stats().unwrap();
    assert!(approx(stats.used_cores, 0.4));
    assert_eq!((stats.periods, stats.throttled_periods), (10, 8));
    assert_eq!(stats.throttled_time, Duration::from_millis(8));
}

#[tokio::test(start_paused = true)]
async fn the_first_sample_right_after_opening_reads_idle_and_keeps_the_baseline() {
    let f = Fixture::cgroup_v2("v2-first");
    f.write("sys/fs/cgroup/ctr/cpu.max", "100000 100000\n");
    f.v2_stat(0, 0, 0);
    let mut s = v2(&f, 4.0).unwrap();
    f.v2_stat(50_000, 0, 0);
    let first = s.sample().unwrap();
    assert_eq!(first.utilization(), 0.0);
    tokio::time::advance(MS_100).await;
    let second = s.sample().unwrap();
    assert!(approx(second.utilization(), 0.5), "{second:?}");
}

#[tokio::test(start_paused = true)]
async fn cgroup_v1_usage_is_measured_against_the_cfs_quota() {
    let f = Fixture::cgroup_v1("v1-quota");
    f.v1_quota("50000\n", "100000\n");
    f.v1_usage(0);
    let mut s = v1(&f, 4.0).unwrap();
    assert_eq!(s.quota().unwrap(), Some(0.5));
    // 25 ms of CPU (in ns) in 100 ms: 0.25 cores of 0.5.
    f.v1_usage(25_000_000);
    tokio::time::advance(MS_100).await;
    let r = s.sample().unwrap();
    assert!(approx(r.utilization(), 0.5), "{r:?}");
    assert_eq!(s.name(), "cgroup-v1-cpu");
}

#[tokio::test(start_paused = true)]
async fn cgroup_v1_quota_of_minus_one_is_no_limit() {
    let f = Fixture::cgroup_v1("v1-unlimited");
    f.v1_quota("-1\n", "100000\n");
    f.v1_usage(0);
    let mut s = v1(&f, 2.0).unwrap();
    assert_eq!(s.quota().unwrap(), None);
    f.v1_usage(200_000_000);
    tokio::time::advance(MS_100).await;
    // 2 cores busy of 2.
    assert!(approx(s.sample().unwrap().utilization(), 1.0));
}

#[tokio::test(start_paused = true)]
async fn cgroup_v1_throttling_is_read_from_the_cpu_stat() {
    let f = Fixture::cgroup_v1("v1-throttled");
    f.v1_quota("100000\n", "100000\n");
    f.v1_usage(0);
    let stat = format!("{}/cpu.stat", Fixture::V1_DIR);
    f.write(&stat, "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n");
    let mut s = v1(&f, 4.0).unwrap();
    f.v1_usage(10_000_000);
    f.write(
        &stat,
        "nr_periods 4\nnr_throttled 3\nthrottled_time 5000000\n",
    );
    tokio::time::advance(MS_100).await;
    assert!(approx(s.sample().unwrap().utilization(), 0.75));
}

#[tokio::test(start_paused = true)]
async fn missing_files_fail_to_open_without_panicking() {
    let f = Fixture::cgroup_v2("v2-missing");
    assert_eq!(
        v2(&f, 2.0).unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
    let f = Fixture::cgroup_v1("v1-missing");
    assert_eq!(
        v1(&f, 2.0).unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
    let f = Fixture::new("no-proc");
    assert!(ProcStat::open(f.root()).is_err());
}

#[tokio::test(start_paused = true)]
async fn garbage_contents_are_invalid_data_without_panicking() {
    for (file, text) in [
        ("sys/fs/cgroup/ctr/cpu.stat", "usage_usec lots\n"),
        ("sys/fs/cgroup/ctr/cpu.stat", "\u{0}\u{1}binary"),
        ("sys/fs/cgroup/ctr/cpu.max", "unlimited please\n"),
        ("sys/fs/cgroup/ctr/cpu.max", "0 100000\n"),
    ] {
        let f = Fixture::cgroup_v2("v2-garbage");
        f.write("sys/fs/cgroup/ctr/cpu.max", "max 100000\n");
        f.v2_stat(0, 0, 0);
        f.write(file, text);
        let err = v2(&f, 2.0).unwrap_err();
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::InvalidData,
            "{file}: {text:?}"
        );
    }
    let f = Fixture::cgroup_v1("v1-garbage");
    f.v1_quota("-1\n", "100000\n");
    f.v1_usage(0);
    let mut s = v1(&f, 2.0).unwrap();
    f.v1_usage(0);
    f.write(&format!("{}/cpuacct.usage", Fixture::V1_DIR), "-5\n");
    tokio::time::advance(MS_100).await;
    assert_eq!(
        s.sample().unwrap_err().kind(),
        std::io::ErrorKind::InvalidData
    );
}

#[tokio::test(start_paused = true)]
async fn proc_stat_reads_busy_over_total_ticks() {
    let f = Fixture::new("proc-stat");
    f.proc_stat(100, 900);
    let mut s = ProcStat::open(f.root()).unwrap();
    f.proc_stat(100 + 30, 900 + 10);
    let r = s.sample().unwrap();
    assert!(approx(r.utilization(), 0.75), "{r:?}");
    assert_eq!(r.capacity(), Some(2.0));
    // No tick since: the previous reading.
    assert!(approx(s.sample().unwrap().utilization(), 0.75));
}

#[test]
fn auto_prefers_a_container_quota_over_the_host() {
    let f = Fixture::cgroup_v2("auto-quota");
    f.write("sys/fs/cgroup/ctr/cpu.max", "100000 100000\n");
    f.v2_stat(0, 0, 0);
    f.proc_stat(0, 0);
    let s = CpuSource::auto_at(f.root(), 4.0);
    assert_eq!(s.active(), "cgroup-v2-cpu");
    let shown = format!("{s:?}");
    assert!(
        shown.contains("cgroup-v2-cpu") && shown.contains("proc-stat-cpu"),
        "{shown}"
    );
}

#[test]
fn auto_uses_the_host_when_the_container_has_no_quota() {
    let f = Fixture::cgroup_v1("auto-unlimited");
    f.v1_quota("-1\n", "100000\n");
    f.v1_usage(0);
    f.proc_stat(0, 0);
    let s = CpuSource::auto_at(f.root(), 4.0);
    assert_eq!(s.active(), "proc-stat-cpu");
    // The cgroup stays as a fallback.
    assert!(format!("{s:?}").contains("cgroup-v1-cpu"));
}

#[tokio::test(start_paused = true)]
async fn auto_falls_back_to_the_next_source_when_the_first_breaks() {
    let f = Fixture::cgroup_v2("auto-fallback");
    f.write("sys/fs/cgroup/ctr/cpu.max", "100000 100000\n");
    f.v2_stat(0, 0, 0);
    f.proc_stat(0, 0);
    let mut s = CpuSource::auto_at(f.root(), 4.0);
    assert_eq!(s.active(), "cgroup-v2-cpu");
    f.write("sys/fs/cgroup/ctr/cpu.stat", "garbage\n");
    f.proc_stat(10, 10);
    tokio::time::advance(MS_100).await;
    let r = s.sample().unwrap();
    assert_eq!(s.active(), "proc-stat-cpu");
    assert!(approx(r.utilization(), 0.5));
}

#[cfg(not(feature = "sysinfo"))]
#[test]
fn auto_with_nothing_to_read_samples_errors_and_never_panics() {
    // Outside a runtime there is no runtime source either.
    let f = Fixture::new("auto-empty");
    let mut s = CpuSource::auto_at(f.root(), 2.0);
    assert_eq!(s.active(), "none");
    assert!(s.sample().is_err());
    assert!(s.sample().is_err());
}

#[tokio::test]
async fn auto_on_this_machine_gives_a_sane_reading() {
    let mut s = CpuSource::auto();
    assert_ne!(s.active(), "none", "{s:?}");
    std::thread::sleep(Duration::from_millis(30));
    let r = s.sample().unwrap();
    assert!((0.0..=1.0).contains(&r.utilization()), "{r:?}");
    let cap = r.capacity().unwrap();
    assert!(cap > 0.0 && cap <= host_cores().max(1.0) + 1e-9, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_busy_ratio_rises_when_a_worker_spins() {
    let mut s = RuntimeBusy::current().unwrap();
    let spin = tokio::spawn(async {
        for _ in 0..100 {
            let t = tokio::time::Instant::now();
            while t.elapsed() < Duration::from_millis(1) {}
            tokio::task::yield_now().await;
        }
    });
    spin.await.unwrap();
    let r = s.sample().unwrap();
    assert_eq!(r.capacity(), Some(2.0));
    // One of two workers spun for the whole span (at least 100 ms).
    assert!(r.utilization() > 0.2 && r.utilization() <= 1.0, "{r:?}");
    assert!(RuntimeBusy::current().is_ok());
}

#[cfg(feature = "sysinfo")]
#[test]
fn sysinfo_gives_a_sane_reading() {
    let mut s = tower_pressure_cpu::SysinfoCpu::new();
    assert!(s.is_supported());
    std::thread::sleep(Duration::from_millis(250));
    let r = s.sample().unwrap();
    assert!((0.0..=1.0).contains(&r.utilization()), "{r:?}");
    assert!(r.capacity().unwrap() >= 1.0);
    assert_eq!(s.name(), "sysinfo-cpu");
}

#[cfg(feature = "sysinfo")]
#[test]
fn auto_with_nothing_to_read_falls_back_to_sysinfo() {
    let f = Fixture::new("auto-sysinfo");
    let s = CpuSource::auto_at(f.root(), 2.0);
    assert_eq!(s.active(), "sysinfo-cpu");
}
