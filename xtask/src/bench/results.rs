//! Reads the results of earlier runs: criterion's `estimates.json` files and
//! the ratios a paired bench writes beside them (`paired.json`).

use std::fs;
use std::path::{Path, PathBuf};

use super::{PAIRED, Results};

/// Where criterion keeps its results: `$CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion`, else `target/criterion`.
pub(super) fn criterion_dir(root: &Path) -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return root.join(home);
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |t| root.join(t));
    target.join("criterion")
}

/// Every `**/new/estimates.json` under `dir`. The folders above `new` name
/// the benchmark: the first is the group, the rest (joined by `/`) the
/// benchmark; a benchmark outside any group is its own group.
pub(super) fn read_results(dir: &Path) -> Result<Results, String> {
    let mut found = Vec::new();
    estimate_files(dir, &mut found);
    let mut results = Results::new();
    for file in found {
        let Some(id) = file
            .parent()
            .and_then(Path::parent)
            .and_then(|p| p.strip_prefix(dir).ok())
        else {
            continue;
        };
        let parts: Vec<String> = id
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let Some((group, rest)) = parts.split_first() else {
            continue;
        };
        let bench = if rest.is_empty() {
            group.clone()
        } else {
            rest.join("/")
        };
        let text = fs::read_to_string(&file)
            .map_err(|e| format!("could not read {}: {e}", file.display()))?;
        let median = median_ns(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        results
            .entry(group.clone())
            .or_default()
            .insert(bench, median);
    }
    // Paired measurements a bench wrote beside criterion's (`paired.json`
    // in a group's folder): a ratio, not a time, kept apart from the times.
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let file = entry.path().join("paired.json");
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not JSON: {e}", file.display()))?;
        if value["median_ratio"].as_f64().is_none() {
            return Err(format!("{}: no median_ratio", file.display()));
        }
        let group = entry.file_name().to_string_lossy().into_owned();
        let paired = results.entry(format!("{group}{PAIRED}")).or_default();
        // Every top-level ratio: `median_ratio` and any `*_ratio` beside it.
        for (key, v) in value.as_object().into_iter().flatten() {
            if let (true, Some(ratio)) = (key.ends_with("_ratio"), v.as_f64()) {
                paired.insert(key.clone(), ratio);
            }
        }
    }
    Ok(results)
}

fn estimate_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let estimates = path.join("estimates.json");
        if path.file_name().is_some_and(|n| n == "new") && estimates.is_file() {
            out.push(estimates);
        } else {
            estimate_files(&path, out);
        }
    }
}

/// The median point estimate of a criterion `estimates.json`, in ns.
fn median_ns(json: &str) -> Result<f64, String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    value["median"]["point_estimate"]
        .as_f64()
        .ok_or_else(|| "no median.point_estimate".to_owned())
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::bench::tests::{estimates, write};

    #[test]
    fn a_bench_outside_a_group_is_its_own_group() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-single-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        write(&dir, "priority_parse/new/estimates.json", &estimates(5.0));
        let results = read_results(&dir);
        fs::remove_dir_all(&dir).expect("remove the fixture");
        let results = results.expect("the fixture parses");
        assert_eq!(results["priority_parse"]["priority_parse"], 5.0);
    }

    #[test]
    fn a_missing_median_is_an_error() {
        assert!(median_ns(r#"{"mean":{"point_estimate":1.0}}"#).is_err());
        assert_eq!(median_ns(&estimates(12.5)), Ok(12.5));
    }
}
