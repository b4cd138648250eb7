//! Linux plumbing for resource sources: finding the process's cgroup, files
//! kept open and re-read, and the small parsers of cgroup and `/proc` files.
//!
//! Everything here takes a *root* directory (`/` on a real machine), so tests
//! and tools can point it at a fake `/proc` + `/sys/fs/cgroup` tree. Nothing
//! here panics on bad input: a file that is missing or holds garbage is an
//! [`io::Error`] (garbage is [`io::ErrorKind::InvalidData`]), and the source
//! that reads it degrades to the next one.
//!
//! The module compiles on every platform; on a machine without `/proc`,
//! [`Cgroups::discover`] fails with a `NotFound` error.
//!
//! ```
//! use std::path::Path;
//! use tower_pressure_core::cgroup::{CgroupVersion, Cgroups, parse_limit};
//!
//! let cgroups = Cgroups::parse(
//!     Path::new("/"),
//!     "0::/kubepods/pod1/ctr\n",
//!     "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n",
//! );
//! assert_eq!(cgroups.version(), Some(CgroupVersion::V2));
//! let unified = cgroups.unified().unwrap();
//! assert_eq!(unified.dir(), Path::new("/sys/fs/cgroup/kubepods/pod1/ctr"));
//! assert_eq!(unified.ancestors().count(), 4); // ctr, pod1, kubepods, the mount
//!
//! assert_eq!(parse_limit("max\n").unwrap(), None);
//! assert_eq!(parse_limit("1048576\n").unwrap(), Some(1 << 20));
//! assert!(parse_limit("garbage").is_err());
//! ```

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Which cgroup interface a hierarchy speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CgroupVersion {
    /// Legacy per-controller hierarchies (`memory.limit_in_bytes`, `cpuacct.usage`).
    V1,
    /// The unified hierarchy (`memory.max`, `cpu.max`, PSI files).
    V2,
}

/// One cgroup of this process: its directory in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    version: CgroupVersion,
    dir: PathBuf,
    mount: PathBuf,
}

impl Cgroup {
    /// A cgroup at `dir` in a hierarchy mounted at `mount` (`dir` should be
    /// `mount` or below it).
    #[must_use]
    pub(crate) fn new(version: CgroupVersion, dir: PathBuf, mount: PathBuf) -> Cgroup {
        Cgroup {
            version,
            dir,
            mount,
        }
    }

    /// The interface of the hierarchy.
    #[must_use]
    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// The cgroup's directory (under the configured root).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the hierarchy is mounted (under the configured root): the
    /// highest directory [`ancestors`](Cgroup::ancestors) reaches.
    #[must_use]
    pub fn mount(&self) -> &Path {
        &self.mount
    }

    /// The path of a file of this cgroup (`"memory.max"`).
    #[must_use]
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// This cgroup's directory, then its parents', up to and including the
    /// mount point: where to look for the smallest limit, since a parent's
    /// limit binds its children too.
    pub fn ancestors(&self) -> impl Iterator<Item = &Path> {
        let mount = &self.mount;
        self.dir
            .ancestors()
            .take_while(move |p| p.starts_with(mount))
    }
}

/// The cgroups of this process, as `/proc/self/cgroup` and
/// `/proc/self/mountinfo` describe them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cgroups {
    /// `(controllers, cgroup)` per mounted v1 hierarchy.
    v1: Vec<(Vec<String>, Cgroup)>,
    unified: Option<Cgroup>,
}

impl Cgroups {
    /// Reads `<root>/proc/self/cgroup` and `<root>/proc/self/mountinfo`.
    ///
    /// # Errors
    ///
    /// When either file cannot be read (not Linux, `/proc` not mounted).
    /// Lines that do not parse are skipped.
    pub fn discover(root: &Path) -> io::Result<Cgroups> {
        let cgroup = std::fs::read_to_string(root.join("proc/self/cgroup"))?;
        let mountinfo = std::fs::read_to_string(root.join("proc/self/mountinfo"))?;
        Ok(Cgroups::parse(root, &cgroup, &mountinfo))
    }

    /// Builds from the texts of `/proc/self/cgroup` and
    /// `/proc/self/mountinfo`; mount points are taken relative to `root`.
    /// Lines that do not parse are skipped, so any text gives a value.
    #[must_use]
    pub fn parse(root: &Path, proc_self_cgroup: &str, mountinfo: &str) -> Cgroups {
        let mounts: Vec<Mount> = mountinfo.lines().filter_map(Mount::parse).collect();
        let mut found = Cgroups::default();
        for line in proc_self_cgroup.lines() {
            // hierarchy-id:controller-list:path; the path may contain ':'.
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(list), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if !path.starts_with('/') {
                continue;
            }
            if id == "0" && list.is_empty() {
                if let Some(m) = mounts.iter().find(|m| m.fstype == "cgroup2") {
                    found.unified = Some(m.cgroup_at(root, path, CgroupVersion::V2));
                }
                continue;
            }
            let controllers: Vec<String> = list
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
            let Some(first) = controllers.first() else {
                continue;
            };
            let mount = mounts
                .iter()
                .find(|m| m.fstype == "cgroup" && m.super_options.split(',').any(|o| o == first));
            if let Some(m) = mount {
                let cgroup = m.cgroup_at(root, path, CgroupVersion::V1);
                found.v1.push((controllers, cgroup));
            }
        }
        found
    }

    /// The cgroup that runs `controller` (`"memory"`, `"cpu"`, `"cpuacct"`)
    /// for this process: the v1 hierarchy that has it, else the unified
    /// hierarchy if its `cgroup.controllers` lists it. `None` when no
    /// hierarchy has the controller (no cgroups, or a hybrid setup where the
    /// controller is not mounted).
    #[must_use]
    pub fn controller(&self, controller: &str) -> Option<Cgroup> {
        if let Some((_, c)) = self
            .v1
            .iter()
            .find(|(names, _)| names.iter().any(|n| n == controller))
        {
            return Some(c.clone());
        }
        let unified = self.unified.as_ref()?;
        let listed = std::fs::read_to_string(unified.file("cgroup.controllers")).ok()?;
        listed
            .split_whitespace()
            .any(|c| c == controller)
            .then(|| unified.clone())
    }

    /// The process's cgroup in the unified (v2) hierarchy, if one is
    /// mounted, whatever controllers it has: its PSI files
    /// (`memory.pressure`, `cpu.pressure`) work even in a hybrid setup.
    #[must_use]
    pub fn unified(&self) -> Option<&Cgroup> {
        self.unified.as_ref()
    }

    /// The overall interface: `V1` when any v1 controller hierarchy is
    /// mounted (legacy or hybrid), `V2` when only the unified one is, `None`
    /// when there are no cgroups.
    #[must_use]
    pub fn version(&self) -> Option<CgroupVersion> {
        if !self.v1.is_empty() {
            Some(CgroupVersion::V1)
        } else if self.unified.is_some() {
            Some(CgroupVersion::V2)
        } else {
            None
        }
    }
}

/// One line of `/proc/self/mountinfo`, the parts we need.
struct Mount {
    root: String,
    mount_point: String,
    fstype: String,
    super_options: String,
}

impl Mount {
    /// `id parent maj:min root mount-point options [optional…] - fstype source super-options`
    fn parse(line: &str) -> Option<Mount> {
        let (left, right) = line.split_once(" - ")?;
        let mut l = left.split_whitespace();
        let root = unescape(l.nth(3)?);
        let mount_point = unescape(l.next()?);
        let mut r = right.split_whitespace();
        let fstype = r.next()?.to_owned();
        let super_options = r.nth(1).unwrap_or("").to_owned();
        Some(Mount {
            root,
            mount_point,
            fstype,
            super_options,
        })
    }

    /// The directory of cgroup `path` in this mount, under `root`. The
    /// mount's own root is cut off the front of `path` (a container sees its
    /// cgroup as `/`); a path outside the mount's root maps to the mount point.
    fn cgroup_at(&self, root: &Path, path: &str, version: CgroupVersion) -> Cgroup {
        let mount = root.join(self.mount_point.trim_start_matches('/'));
        let rel = if self.root == "/" {
            Some(path)
        } else {
            path.strip_prefix(self.root.as_str())
                .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        let mut dir = mount.clone();
        for part in rel.unwrap_or("").split('/') {
            // Never let a `..` in the text climb out of the mount.
            if !part.is_empty() && part != "." && part != ".." {
                dir.push(part);
            }
        }
        Cgroup::new(version, dir, mount)
    }
}

/// Undoes mountinfo's octal escapes (`\040` is a space).
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(code) = bytes
                .get(i + 1..i + 4)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        {
            out.push(code);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The most a [`KeptFile`] reads: cgroup and `/proc` files are a few KiB.
const KEPT_FILE_MAX_BYTES: usize = 1 << 20;

/// A file opened once and re-read from offset 0 on every sample, into a
/// reused buffer: no `open` per sample, no allocation once the buffer has
/// grown to the file's size. On Unix each read is a `pread`
/// ([`FileExt::read_at`](std::os::unix::fs::FileExt::read_at)). If a read
/// fails, the file is reopened once and read again (a cgroup directory can be
/// re-created under a long-lived process).
#[derive(Debug)]
pub struct KeptFile {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    len: usize,
}

impl KeptFile {
    /// Opens `path` for reading.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened.
    pub fn open(path: impl Into<PathBuf>) -> io::Result<KeptFile> {
        let path = path.into();
        let file = File::open(&path)?;
        Ok(KeptFile {
            path,
            file,
            buf: Vec::new(),
            len: 0,
        })
    }

    /// The path the file was opened at.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the whole file again, from offset 0.
    ///
    /// # Errors
    ///
    /// When the read fails twice (before and after reopening), or the file
    /// is larger than 1 MiB (`InvalidData`).
    pub fn read(&mut self) -> io::Result<&[u8]> {
        if self.read_once().is_err() {
            self.file = File::open(&self.path)?;
            self.read_once()?;
        }
        Ok(&self.buf[..self.len])
    }

    /// Reads the whole file again as UTF-8 text.
    ///
    /// # Errors
    ///
    /// As [`read`](KeptFile::read); text that is not UTF-8 is `InvalidData`.
    pub fn read_str(&mut self) -> io::Result<&str> {
        let bytes = self.read()?;
        std::str::from_utf8(bytes).map_err(|e| invalid(format!("not UTF-8: {e}")))
    }

    fn read_once(&mut self) -> io::Result<()> {
        self.len = 0;
        if self.buf.is_empty() {
            self.buf.resize(4096, 0);
        }
        loop {
            if self.len == self.buf.len() {
                if self.buf.len() >= KEPT_FILE_MAX_BYTES {
                    return Err(invalid(format!(
                        "{} is larger than {KEPT_FILE_MAX_BYTES} bytes",
                        self.path.display()
                    )));
                }
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let n = read_at(&self.file, &mut self.buf[self.len..], self.len as u64)?;
            if n == 0 {
                return Ok(());
            }
            self.len += n;
        }
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    file.read_at(buf, offset)
}

#[cfg(not(unix))]
fn read_at(mut file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.read(buf)
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Parses one unsigned integer (surrounding whitespace allowed).
///
/// # Errors
///
/// `InvalidData` when the text is not one unsigned integer.
pub fn parse_u64(text: &str) -> io::Result<u64> {
    let t = text.trim();
    t.parse()
        .map_err(|_| invalid(format!("expected an unsigned integer, found {t:?}")))
}

/// Parses a single-value limit file (`memory.max`, `pids.max`): `max` is no
/// limit (`None`), anything else must be an unsigned integer.
///
/// # Errors
///
/// `InvalidData` when the text is neither `max` nor an unsigned integer.
pub fn parse_limit(text: &str) -> io::Result<Option<u64>> {
    if text.trim() == "max" {
        Ok(None)
    } else {
        parse_u64(text).map(Some)
    }
}

/// The value of `key` in a flat keyed file: lines of `key value`
/// (`memory.stat`, `cpu.stat`). Other lines are not looked at.
///
/// # Errors
///
/// `InvalidData` when no line has the key, or its value is not an unsigned
/// integer.
pub fn keyed_value(text: &str, key: &str) -> io::Result<u64> {
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        if fields.next() == Some(key) {
            let value = fields.next().unwrap_or("");
            if fields.next().is_some() {
                return Err(invalid(format!("{key}: more than one value in {line:?}")));
            }
            return parse_u64(value);
        }
    }
    Err(invalid(format!("no {key:?} line")))
}

/// One line of a pressure-stall (PSI) file: the share of wall time, in
/// percent, that some (or all) tasks stalled on the resource, averaged over
/// 10 s, 60 s and 300 s, and the total stall time in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Psi {
    /// Percent of the last 10 s, in `[0, 100]`.
    pub avg10: f64,
    /// Percent of the last 60 s, in `[0, 100]`.
    pub avg60: f64,
    /// Percent of the last 300 s, in `[0, 100]`.
    pub avg300: f64,
    /// Total stall time, in microseconds.
    pub total: u64,
}

/// A PSI file (`memory.pressure`, `/proc/pressure/memory`): the `some` line
/// and, where the kernel writes it, the `full` line.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Pressure {
    /// Some tasks stalled.
    pub some: Psi,
    /// All non-idle tasks stalled at once (absent for CPU on older kernels).
    pub full: Option<Psi>,
}

/// Parses a PSI file:
/// `some avg10=0.12 avg60=0.05 avg300=0.01 total=1234` and an optional
/// `full …` line.
///
/// # Errors
///
/// `InvalidData` when there is no `some` line, a field is missing or not a
/// number, or an average is outside `[0, 100]`.
pub fn parse_pressure(text: &str) -> io::Result<Pressure> {
    let mut some = None;
    let mut full = None;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("some") => some = Some(parse_psi_fields(fields)?),
            Some("full") => full = Some(parse_psi_fields(fields)?),
            _ => {}
        }
    }
    let some = some.ok_or_else(|| invalid("no \"some\" line in a PSI file"))?;
    Ok(Pressure { some, full })
}

fn parse_psi_fields<'a>(fields: impl Iterator<Item = &'a str>) -> io::Result<Psi> {
    let (mut avg10, mut avg60, mut avg300, mut total) = (None, None, None, None);
    for field in fields {
        let Some((k, v)) = field.split_once('=') else {
            return Err(invalid(format!("PSI field without '=': {field:?}")));
        };
        match k {
            "avg10" => avg10 = Some(parse_percent(v)?),
            "avg60" => avg60 = Some(parse_percent(v)?),
            "avg300" => avg300 = Some(parse_percent(v)?),
            "total" => total = Some(parse_u64(v)?),
            _ => {}
        }
    }
    match (avg10, avg60, avg300, total) {
        (Some(avg10), Some(avg60), Some(avg300), Some(total)) => Ok(Psi {
            avg10,
            avg60,
            avg300,
            total,
        }),
        _ => Err(invalid("PSI line lacks avg10, avg60, avg300 or total")),
    }
}

fn parse_percent(v: &str) -> io::Result<f64> {
    match v.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(invalid(format!("PSI average is not a percentage: {v:?}"))),
    }
}
