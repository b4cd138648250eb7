//! `cargo xtask tidy`: source hygiene, also run as a `#[test]`.
//!
//! - every Rust module opens with a `//!` doc comment;
//! - every lint `allow`/`expect` attribute gives a `reason = "…"`;
//! - no `std::time::Instant` in the layer crates (`crates/*/src`): time goes
//!   through `tokio::time` so tests can pause it — unless the line says why
//!   the real clock is meant, with a `tidy: real clock` comment.

use std::fs;
use std::path::{Path, PathBuf};

/// The folders whose Rust files are checked.
const ROOTS: [&str; 4] = ["crates", "examples", "benches", "xtask"];

/// Checks the workspace at `root`; the problems found, one line each.
pub(crate) fn check(root: &Path) -> Result<(), Vec<String>> {
    let mut files = Vec::new();
    for dir in ROOTS {
        rust_files(&root.join(dir), &mut files);
    }
    files.sort();
    let mut problems = Vec::new();
    for file in &files {
        let text = match fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!("{}: unreadable: {e}", file.display()));
                continue;
            }
        };
        let rel = file.strip_prefix(root).unwrap_or(file);
        let is_layer_src = rel.starts_with("crates")
            && rel
                .components()
                .nth(2)
                .is_some_and(|c| c.as_os_str() == "src");
        problems.extend(check_file(&rel.display().to_string(), &text, is_layer_src));
    }
    if files.is_empty() {
        problems.push(format!("no Rust files found under {}", root.display()));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// The problems in one file's `text`.
fn check_file(name: &str, text: &str, is_layer_src: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    if !first.is_some_and(|l| l.starts_with("//!")) {
        problems.push(format!(
            "{name}: does not open with a `//!` module doc comment"
        ));
    }
    // The attribute openings are built from pieces so this file does not match itself.
    let openings = [
        concat!("#[", "allow("),
        concat!("#![", "allow("),
        concat!("#[", "expect("),
        concat!("#![", "expect("),
    ];
    for (i, line) in text.lines().enumerate() {
        for open in openings {
            if let Some(at) = line.find(open) {
                // The attribute may span lines: read up to its closing `]`.
                let rest: String = text.lines().skip(i).collect::<Vec<_>>().join("\n");
                let start = rest.find(open).unwrap_or(at);
                let attr = rest[start..].split(']').next().unwrap_or_default();
                if !attr.contains("reason") {
                    problems.push(format!(
                        "{name}:{}: lint attribute without `reason = \"…\"`",
                        i + 1
                    ));
                }
            }
        }
        let code = line.split("//").next().unwrap_or_default();
        let real_clock_meant = line.contains(concat!("tidy: ", "real clock"));
        if is_layer_src
            && !real_clock_meant
            && code.contains(concat!("std::", "time"))
            && code.contains("Instant")
        {
            problems.push(format!(
                "{name}:{}: `std::time::Instant` in a layer crate; use `tokio::time::Instant`",
                i + 1
            ));
        }
    }
    problems
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_is_tidy() {
        if let Err(problems) = check(&crate::workspace_root()) {
            panic!("tidy found problems:\n{}", problems.join("\n"));
        }
    }

    #[test]
    fn a_module_without_doc_comment_is_reported() {
        let p = check_file("a.rs", "use std::fmt;\n", false);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("//!"));
    }

    #[test]
    fn an_allow_without_reason_is_reported_and_one_with_reason_is_not() {
        let bad = format!(
            "//! m\n{}dead_code)]\nfn f() {{}}\n",
            concat!("#[", "allow(")
        );
        assert_eq!(check_file("a.rs", &bad, false).len(), 1);
        let good = format!(
            "//! m\n{}\n    dead_code,\n    reason = \"kept for the demo\"\n)]\nfn f() {{}}\n",
            concat!("#[", "allow(")
        );
        assert_eq!(check_file("a.rs", &good, false), Vec::<String>::new());
    }

    #[test]
    fn std_instant_is_reported_in_layer_crates_only() {
        let src = format!(
            "//! m\nuse {}::{{Duration, Instant}};\n",
            concat!("std::", "time")
        );
        assert_eq!(check_file("a.rs", &src, true).len(), 1);
        assert!(check_file("a.rs", &src, false).is_empty());
    }
}
