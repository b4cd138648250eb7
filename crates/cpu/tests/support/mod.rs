//! What the CPU tests share: fake machine trees, a counting service, requests.

#![allow(dead_code, reason = "each test file uses a part of the helpers")]
#![allow(unreachable_pub, reason = "helpers of the test crates")]

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{Request, Response};
use tower::Service;
use tower_pressure_core::{Deadline, PressureLevel, Priority, Signal, SignalConfig};

/// A directory tree standing for `/` of a fake machine; removed on drop.
#[derive(Debug)]
pub struct Fixture {
    root: PathBuf,
}

impl Fixture {
    pub fn new(name: &str) -> Fixture {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!(
            "tower-pressure-cpu-{}-{name}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("a temp dir");
        Fixture { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes `text` to `rel`, creating the directories.
    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("a parent")).expect("dirs");
        std::fs::write(p, text).expect("a fixture file");
    }

    pub fn remove(&self, rel: &str) {
        std::fs::remove_file(self.path(rel)).expect("a fixture file to remove");
    }

    /// A cgroup v2 machine; the process is in `/ctr`.
    pub fn cgroup_v2(name: &str) -> Fixture {
        let f = Fixture::new(name);
        f.write("proc/self/cgroup", "0::/ctr\n");
        f.write(
            "proc/self/mountinfo",
            "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
        );
        f.write(
            "sys/fs/cgroup/cgroup.controllers",
            "cpuset cpu io memory pids\n",
        );
        f.write("sys/fs/cgroup/ctr/cgroup.controllers", "cpu memory\n");
        f
    }

    /// A cgroup v1 machine with `cpu,cpuacct` co-mounted; the process is in
    /// `/docker/abc`.
    pub fn cgroup_v1(name: &str) -> Fixture {
        let f = Fixture::new(name);
        f.write(
            "proc/self/cgroup",
            "4:cpu,cpuacct:/docker/abc\n3:memory:/docker/abc\n",
        );
        f.write(
            "proc/self/mountinfo",
            "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n",
        );
        f
    }

    pub fn v2_stat(&self, usage_usec: u64, periods: u64, throttled: u64) {
        self.write(
            "sys/fs/cgroup/ctr/cpu.stat",
            &format!(
                "usage_usec {usage_usec}\nuser_usec 0\nsystem_usec 0\nnr_periods {periods}\nnr_throttled {throttled}\nthrottled_usec {}\n",
                throttled * 1000
            ),
        );
    }

    pub const V1_DIR: &str = "sys/fs/cgroup/cpu,cpuacct/docker/abc";

    pub fn v1_usage(&self, usage_ns: u64) {
        self.write(
            &format!("{}/cpuacct.usage", Fixture::V1_DIR),
            &format!("{usage_ns}\n"),
        );
    }

    pub fn v1_quota(&self, quota: &str, period: &str) {
        self.write(&format!("{}/cpu.cfs_quota_us", Fixture::V1_DIR), quota);
        self.write(&format!("{}/cpu.cfs_period_us", Fixture::V1_DIR), period);
    }

    /// `/proc/stat` of a two-CPU machine with the given busy and idle ticks.
    pub fn proc_stat(&self, busy: u64, idle: u64) {
        self.write(
            "proc/stat",
            &format!(
                "cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\ncpu1 0 0 0 0 0 0 0 0 0 0\nintr 0\n"
            ),
        );
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A signal with no sampler, forced to `level`.
pub fn signal_at(level: PressureLevel) -> Signal {
    let s = Signal::new(SignalConfig::builder("cpu").build().expect("valid"));
    s.set_override(Some(level));
    s
}

/// A request of `priority`, optionally with a deadline `deadline` from now.
pub fn request(priority: Priority, deadline: Option<Duration>) -> Request<()> {
    let mut req = Request::new(());
    req.extensions_mut().insert(priority);
    if let Some(d) = deadline {
        req.extensions_mut().insert(Deadline::after(d));
    }
    req
}

/// A ready HTTP service that counts its calls and holds a token in every
/// clone (to see what is held).
#[derive(Debug, Clone, Default)]
pub struct Counting {
    pub calls: Arc<AtomicUsize>,
    pub token: Arc<()>,
}

impl Counting {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Clones of this service alive, besides this one.
    pub fn clones(&self) -> usize {
        Arc::strong_count(&self.token) - 1
    }
}

impl Service<Request<()>> for Counting {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<()>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        ready(Ok(Response::new("ok".to_owned())))
    }
}

/// The default throttle settings, delaying a class even when nothing above
/// it is in the service: for the tests of the delays themselves (a lone
/// request is delayed). The contention rule has tests of its own.
pub fn uncontended() -> tower_pressure_cpu::CpuThrottleConfig {
    tower_pressure_cpu::CpuThrottleConfig::builder()
        .delay_uncontended(true)
        .build()
        .expect("valid")
}
