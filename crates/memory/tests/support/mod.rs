//! Fake `/proc` + `/sys/fs/cgroup` trees in a temporary directory.

#![allow(dead_code, reason = "each test file uses a different part")]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A directory under the system temp dir, removed on drop.
pub(crate) struct Fixture(PathBuf);

pub(crate) const GIB: u64 = 1 << 30;
pub(crate) const MIB: u64 = 1 << 20;

pub(crate) const V2_MOUNTINFO: &str =
    "30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw\n";

pub(crate) const V1_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

/// `/proc/meminfo` of a host with `total` bytes of which `available` are
/// available.
pub(crate) fn meminfo(total: u64, available: u64) -> String {
    format!(
        "MemTotal:       {} kB\nMemFree:        {} kB\nMemAvailable:   {} kB\nBuffers:        0 kB\n",
        total / 1024,
        available / 2048,
        available / 1024
    )
}

impl Fixture {
    pub(crate) fn new() -> Fixture {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tp-memory-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Fixture(dir)
    }

    pub(crate) fn root(&self) -> &Path {
        &self.0
    }

    pub(crate) fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.0.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }

    pub(crate) fn remove(&self, rel: &str) {
        fs::remove_file(self.0.join(rel)).unwrap();
    }

    /// A host with 16 GiB, 12 GiB available.
    pub(crate) fn host(&self) -> &Self {
        self.write("proc/meminfo", &meminfo(16 * GIB, 12 * GIB));
        self
    }

    /// A cgroup v2 process in `/app/ctr` whose `memory.max` is `max`, with
    /// `current` bytes charged of which `inactive` are inactive page cache.
    pub(crate) fn v2(&self, max: &str, current: u64, inactive: u64) -> &Self {
        self.write("proc/self/cgroup", "0::/app/ctr\n");
        self.write("proc/self/mountinfo", V2_MOUNTINFO);
        let dir = "sys/fs/cgroup/app/ctr";
        self.write(&format!("{dir}/cgroup.controllers"), "cpu memory pids\n");
        self.write(&format!("{dir}/memory.max"), &format!("{max}\n"));
        self.write(&format!("{dir}/memory.current"), &format!("{current}\n"));
        self.write(
            &format!("{dir}/memory.stat"),
            &format!("anon {current}\nfile 0\nactive_file 0\ninactive_file {inactive}\n"),
        );
        self.write("sys/fs/cgroup/app/memory.max", "max\n");
        self
    }

    /// A cgroup v1 process in `/app/ctr` with `limit_in_bytes` = `limit`.
    pub(crate) fn v1(&self, limit: u64, usage: u64, inactive: u64) -> &Self {
        self.write("proc/self/cgroup", "4:memory:/app/ctr\n0::/\n");
        self.write("proc/self/mountinfo", V1_MOUNTINFO);
        let dir = "sys/fs/cgroup/memory/app/ctr";
        self.write(
            &format!("{dir}/memory.limit_in_bytes"),
            &format!("{limit}\n"),
        );
        self.write(
            &format!("{dir}/memory.usage_in_bytes"),
            &format!("{usage}\n"),
        );
        self.write(
            &format!("{dir}/memory.stat"),
            &format!(
                "cache 0\nrss {usage}\ninactive_file {inactive}\nhierarchical_memory_limit {limit}\ntotal_inactive_file {inactive}\n"
            ),
        );
        self.write(
            "sys/fs/cgroup/memory/app/memory.limit_in_bytes",
            "9223372036854771712\n",
        );
        self.write(
            "sys/fs/cgroup/memory/memory.limit_in_bytes",
            "9223372036854771712\n",
        );
        self
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
