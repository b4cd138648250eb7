//! The cgroup plumbing on fake `/proc` + `/sys/fs/cgroup` trees built in a
//! temporary directory.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use tower_pressure_core::cgroup::{
    CgroupVersion, Cgroups, KeptFile, keyed_value, parse_limit, parse_pressure, parse_u64,
};

/// A directory under the system temp dir, removed on drop.
struct Fixture(PathBuf);

impl Fixture {
    fn new() -> Fixture {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tp-core-cgroup-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).unwrap();
        Fixture(dir)
    }

    fn root(&self) -> &Path {
        &self.0
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.0.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const V2_MOUNTINFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
";

const V1_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

const V1_CGROUP: &str = "\
9:name=systemd:/
4:memory:/process_api/abc
2:cpu,cpuacct:/process_api/abc
0::/
";

#[test]
fn v2_cgroup_is_found_under_the_root_with_its_controllers() {
    let fx = Fixture::new();
    fx.write("proc/self/cgroup", "0::/kubepods/pod1/ctr\n");
    fx.write("proc/self/mountinfo", V2_MOUNTINFO);
    fx.write(
        "sys/fs/cgroup/kubepods/pod1/ctr/cgroup.controllers",
        "cpu io memory pids\n",
    );
    let cgroups = Cgroups::discover(fx.root()).unwrap();
    assert_eq!(cgroups.version(), Some(CgroupVersion::V2));
    let memory = cgroups.controller("memory").unwrap();
    assert_eq!(memory.version(), CgroupVersion::V2);
    assert_eq!(
        memory.dir(),
        fx.root().join("sys/fs/cgroup/kubepods/pod1/ctr")
    );
    assert_eq!(memory.mount(), fx.root().join("sys/fs/cgroup"));
    assert_eq!(
        memory.file("memory.max"),
        fx.root().join("sys/fs/cgroup/kubepods/pod1/ctr/memory.max")
    );
    assert!(cgroups.controller("hugetlb").is_none());
}

#[test]
fn ancestors_walk_up_to_the_mount_point_and_stop() {
    let fx = Fixture::new();
    fx.write("proc/self/cgroup", "0::/a/b\n");
    fx.write("proc/self/mountinfo", V2_MOUNTINFO);
    let cgroups = Cgroups::discover(fx.root()).unwrap();
    let unified = cgroups.unified().unwrap();
    let walked: Vec<_> = unified.ancestors().map(Path::to_path_buf).collect();
    let base = fx.root().join("sys/fs/cgroup");
    assert_eq!(walked, vec![base.join("a/b"), base.join("a"), base.clone()]);
}

#[test]
fn v1_controllers_map_to_their_own_hierarchies_in_a_hybrid_setup() {
    let fx = Fixture::new();
    fx.write("proc/self/cgroup", V1_CGROUP);
    fx.write("proc/self/mountinfo", V1_MOUNTINFO);
    // The unified hierarchy has no memory controller in a hybrid setup.
    fx.write("sys/fs/cgroup/unified/cgroup.controllers", "");
    let cgroups = Cgroups::discover(fx.root()).unwrap();
    assert_eq!(cgroups.version(), Some(CgroupVersion::V1));
    let memory = cgroups.controller("memory").unwrap();
    assert_eq!(memory.version(), CgroupVersion::V1);
    assert_eq!(
        memory.dir(),
        fx.root().join("sys/fs/cgroup/memory/process_api/abc")
    );
    let cpuacct = cgroups.controller("cpuacct").unwrap();
    assert_eq!(
        cpuacct.dir(),
        fx.root().join("sys/fs/cgroup/cpu,cpuacct/process_api/abc")
    );
    // PSI files live in the unified hierarchy even here.
    assert_eq!(
        cgroups.unified().unwrap().dir(),
        fx.root().join("sys/fs/cgroup/unified")
    );
}

#[test]
fn a_container_whose_mount_root_is_its_own_cgroup_maps_to_the_mount_point() {
    let cgroups = Cgroups::parse(
        Path::new("/"),
        "4:memory:/docker/abc\n",
        "35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n",
    );
    let memory = cgroups.controller("memory").unwrap();
    assert_eq!(memory.dir(), Path::new("/sys/fs/cgroup/memory"));
    assert_eq!(memory.ancestors().count(), 1);
}

#[test]
fn dot_dot_in_a_cgroup_path_never_climbs_out_of_the_mount() {
    let cgroups = Cgroups::parse(Path::new("/"), "0::/../../etc\n", V2_MOUNTINFO);
    let unified = cgroups.unified().unwrap();
    assert!(unified.dir().starts_with("/sys/fs/cgroup"));
}

#[test]
fn escaped_spaces_in_mount_points_are_unescaped() {
    let cgroups = Cgroups::parse(
        Path::new("/"),
        "0::/x\n",
        "30 22 0:26 / /my\\040cgroup rw - cgroup2 cgroup2 rw\n",
    );
    assert_eq!(cgroups.unified().unwrap().dir(), Path::new("/my cgroup/x"));
}

#[test]
fn no_cgroup_mounts_means_no_version_and_no_controller() {
    let cgroups = Cgroups::parse(
        Path::new("/"),
        "0::/\n",
        "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n",
    );
    assert_eq!(cgroups.version(), None);
    assert!(cgroups.controller("memory").is_none());
    assert!(cgroups.unified().is_none());
}

#[test]
fn a_missing_proc_is_a_not_found_error() {
    let fx = Fixture::new();
    let err = Cgroups::discover(fx.root()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn kept_file_sees_new_contents_without_reopening() {
    let fx = Fixture::new();
    let path = fx.write("memory.current", "100\n");
    let mut kept = KeptFile::open(&path).unwrap();
    assert_eq!(kept.read_str().unwrap(), "100\n");
    // Rewrite in place (same inode), longer then shorter: each read starts at 0
    // and ends at the file's current end.
    fs::write(&path, "123456789\n").unwrap();
    assert_eq!(kept.read_str().unwrap(), "123456789\n");
    fs::write(&path, "7\n").unwrap();
    assert_eq!(kept.read_str().unwrap(), "7\n");
}

#[test]
fn kept_file_reads_files_larger_than_its_first_buffer() {
    let fx = Fixture::new();
    let text = "key 1\n".repeat(2000);
    let path = fx.write("memory.stat", &text);
    let mut kept = KeptFile::open(&path).unwrap();
    assert_eq!(kept.read_str().unwrap(), text);
    assert_eq!(kept.read_str().unwrap().len(), 12_000);
}

#[test]
fn kept_file_reopens_once_when_a_read_fails() {
    let fx = Fixture::new();
    // A directory opens but cannot be read: the first read fails, as a file
    // of a removed cgroup does. Replace it with a file; the retry reopens.
    let path = fx.0.join("memory.max");
    fs::create_dir(&path).unwrap();
    let mut kept = KeptFile::open(&path).unwrap();
    assert!(kept.read().is_err());
    fs::remove_dir(&path).unwrap();
    fs::write(&path, "2\n").unwrap();
    assert_eq!(kept.read_str().unwrap(), "2\n");
}

#[test]
fn kept_file_that_cannot_be_opened_is_an_error() {
    let fx = Fixture::new();
    let err = KeptFile::open(fx.root().join("nope")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn kept_file_with_bytes_that_are_not_utf8_is_invalid_data() {
    let fx = Fixture::new();
    let path = fx.0.join("bin");
    fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
    let mut kept = KeptFile::open(&path).unwrap();
    assert_eq!(kept.read().unwrap(), &[0xff, 0xfe, 0x00]);
    assert_eq!(kept.read_str().unwrap_err().kind(), ErrorKind::InvalidData);
}

#[test]
fn limits_read_max_as_no_limit_and_reject_garbage() {
    assert_eq!(parse_limit("max\n").unwrap(), None);
    assert_eq!(parse_limit(" 4096 \n").unwrap(), Some(4096));
    assert_eq!(
        parse_u64("9223372036854771712\n").unwrap(),
        9_223_372_036_854_771_712
    );
    for bad in ["", "-1", "1.5", "maxx", "12 34", "0x10"] {
        assert_eq!(
            parse_limit(bad).unwrap_err().kind(),
            ErrorKind::InvalidData,
            "{bad:?}"
        );
    }
}

#[test]
fn keyed_files_give_the_value_of_the_key_asked_for() {
    let stat = "anon 1000\nfile 2000\ninactive_file 300\nactive_file 400\n";
    assert_eq!(keyed_value(stat, "inactive_file").unwrap(), 300);
    assert_eq!(keyed_value(stat, "file").unwrap(), 2000);
    assert_eq!(
        keyed_value(stat, "total_inactive_file").unwrap_err().kind(),
        ErrorKind::InvalidData
    );
    assert!(keyed_value("inactive_file abc\n", "inactive_file").is_err());
    assert!(keyed_value("inactive_file 1 2\n", "inactive_file").is_err());
    assert!(keyed_value("inactive_file\n", "inactive_file").is_err());
}

#[test]
fn psi_files_parse_some_and_full_lines() {
    let p = parse_pressure(
        "some avg10=1.50 avg60=0.25 avg300=0.00 total=12345\nfull avg10=0.10 avg60=0.00 avg300=0.00 total=99\n",
    )
    .unwrap();
    assert_eq!(p.some.avg10, 1.5);
    assert_eq!(p.some.avg60, 0.25);
    assert_eq!(p.some.total, 12345);
    assert_eq!(p.full.unwrap().avg10, 0.1);
    let cpu = parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n").unwrap();
    assert_eq!(cpu.full, None);
}

#[test]
fn psi_garbage_is_invalid_data() {
    for bad in [
        "",
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=0",
        "some avg10=0.00 avg60=0.00 total=0",
        "some avg10=abc avg60=0.00 avg300=0.00 total=0",
        "some avg10=101 avg60=0.00 avg300=0.00 total=0",
        "some avg10=NaN avg60=0.00 avg300=0.00 total=0",
        "some avg10 avg60=0.00 avg300=0.00 total=0",
    ] {
        assert_eq!(
            parse_pressure(bad).unwrap_err().kind(),
            ErrorKind::InvalidData,
            "{bad:?}"
        );
    }
}

#[test]
fn discovery_of_the_real_machine_does_not_fail_on_linux() {
    if cfg!(target_os = "linux") {
        let cgroups = Cgroups::discover(Path::new("/")).unwrap();
        if let Some(memory) = cgroups.controller("memory") {
            assert!(memory.dir().starts_with(memory.mount()));
        }
    }
}

proptest! {
    #[test]
    fn parsers_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse_u64(&text);
        let _ = parse_limit(&text);
        let _ = keyed_value(&text, "inactive_file");
        let _ = parse_pressure(&text);
        let cgroups = Cgroups::parse(Path::new("/"), &text, &text);
        let _ = cgroups.version();
        let _ = cgroups.controller("memory");
    }

    #[test]
    fn parsers_never_panic_on_near_valid_text(
        cgroup in "[0-9]{0,2}:[a-z,=]{0,12}:/?[a-z/.]{0,12}",
        mountinfo in "[0-9 ]{0,6} [0-9:]{0,5} /?[a-z/\\\\0-7]{0,10} /[a-z/]{0,10} rw( - cgroup2? cgroup2? rw,[a-z]{0,8})?",
        psi in "(some|full)( (avg10|avg60|avg300|total)=[0-9.a-z-]{0,6}){0,5}",
    ) {
        let cgroups = Cgroups::parse(Path::new("/"), &cgroup, &mountinfo);
        if let Some(c) = cgroups.unified() {
            prop_assert!(c.dir().starts_with(c.mount()));
            let _ = c.ancestors().count();
        }
        let _ = parse_pressure(&psi);
    }
}
