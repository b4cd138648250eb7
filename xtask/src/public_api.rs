//! `cargo xtask public-api [--bless]`: the public surface of every library
//! crate, read from the rustdoc pages, against the snapshot committed in
//! `docs/public-api/`, so that the surface only grows (or shrinks) on
//! purpose. `--bless` writes the snapshot anew; `--count <doc folder>` only
//! counts the items of docs built elsewhere (another checkout, for a
//! before/after figure).
//!
//! An item is a line: a path (`struct Foo`, `fn cgroup::read`), an inherent
//! method or associated const (`method Foo::bar`), a public field, a
//! variant, or a trait's method or associated type. Trait implementations
//! are not listed: they follow from the items.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, ExitCode};

/// The library crates, as rustdoc names their folders.
const CRATES: [&str; 8] = [
    "tower_pressure_core",
    "tower_pressure_classify",
    "tower_pressure_admission",
    "tower_pressure_memory",
    "tower_pressure_cpu",
    "tower_pressure_adaptive",
    "tower_pressure_client",
    "tower_pressure",
];

/// Page kinds listed in `all.html`.
const KINDS: [&str; 8] = [
    "struct", "enum", "trait", "fn", "constant", "type", "macro", "static",
];

pub(crate) fn run(args: &[String]) -> ExitCode {
    let root = crate::workspace_root();
    if let Some(i) = args.iter().position(|a| a == "--count") {
        let Some(docs) = args.get(i + 1) else {
            eprintln!("public-api: --count needs a doc folder");
            return ExitCode::from(2);
        };
        for krate in CRATES {
            match surface(&Path::new(docs).join(krate)) {
                Ok(items) => println!("{krate}: {} public items", items.len()),
                Err(e) => println!("{krate}: {e}"),
            }
        }
        return ExitCode::SUCCESS;
    }
    let bless = args.iter().any(|a| a == "--bless");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let doc = Command::new(cargo)
        .args([
            "doc",
            "--workspace",
            "--no-deps",
            "--all-features",
            "--quiet",
        ])
        .current_dir(&root)
        .status();
    if !doc.is_ok_and(|s| s.success()) {
        eprintln!("public-api: cargo doc failed");
        return ExitCode::FAILURE;
    }
    let docs = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), |t| root.join(t))
        .join("doc");
    let mut changed = Vec::new();
    for krate in CRATES {
        let items = match surface(&docs.join(krate)) {
            Ok(items) => items,
            Err(e) => {
                eprintln!("public-api: {krate}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let text: String = items.iter().map(|i| format!("{i}\n")).collect();
        let snapshot = root.join("docs/public-api").join(format!("{krate}.txt"));
        let old = std::fs::read_to_string(&snapshot).unwrap_or_default();
        println!("{krate}: {} public items", items.len());
        if old == text {
            continue;
        }
        if bless {
            if let Err(e) = std::fs::write(&snapshot, &text) {
                eprintln!("public-api: could not write {}: {e}", snapshot.display());
                return ExitCode::FAILURE;
            }
        } else {
            let before: BTreeSet<&str> = old.lines().collect();
            for i in &items {
                if !before.contains(i.as_str()) {
                    changed.push(format!("{krate}: + {i}"));
                }
            }
            let now: BTreeSet<&str> = items.iter().map(String::as_str).collect();
            for i in before.difference(&now) {
                changed.push(format!("{krate}: - {i}"));
            }
        }
    }
    if changed.is_empty() {
        return ExitCode::SUCCESS;
    }
    for c in &changed {
        eprintln!("{c}");
    }
    eprintln!(
        "public-api: the public surface changed; if on purpose, run `cargo xtask public-api --bless`"
    );
    ExitCode::FAILURE
}

/// Every public item of the crate documented in `dir`.
fn surface(dir: &Path) -> Result<BTreeSet<String>, String> {
    let all = std::fs::read_to_string(dir.join("all.html")).map_err(|e| e.to_string())?;
    let mut items = BTreeSet::new();
    for page in pages(&all) {
        let (module, file) = page
            .rsplit_once('/')
            .map_or(("", page.as_str()), |(m, f)| (m, f));
        let Some((kind, rest)) = file.split_once('.') else {
            continue;
        };
        let name = rest.trim_end_matches(".html");
        let path = if module.is_empty() {
            name.to_owned()
        } else {
            format!("{}::{name}", module.replace('/', "::"))
        };
        items.insert(format!("{kind} {path}"));
        if matches!(kind, "struct" | "enum" | "trait") {
            let html = std::fs::read_to_string(dir.join(&page)).map_err(|e| e.to_string())?;
            for member in members(kind, &html) {
                items.insert(format!("{member} {path}::"));
            }
        }
    }
    // `members` yields "kind name"; put the name after the owner's path.
    Ok(items
        .into_iter()
        .map(|i| match i.split_once(' ') {
            Some((kind, rest)) if rest.ends_with("::") => {
                let (member, owner) = kind.split_once(':').unwrap_or((kind, ""));
                format!("{member} {rest}{owner}")
            }
            _ => i,
        })
        .collect())
}

/// The item pages linked from `all.html`, relative to the crate's folder.
fn pages(all: &str) -> Vec<String> {
    let mut out = Vec::new();
    for chunk in all.split("href=\"").skip(1) {
        let Some(href) = chunk.split('"').next() else {
            continue;
        };
        let file = href.rsplit('/').next().unwrap_or(href);
        let kind = file.split('.').next().unwrap_or("");
        if KINDS.contains(&kind) && href.ends_with(".html") && !href.starts_with("..") {
            out.push(href.to_owned());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The members of a struct, enum or trait page, as `kind:name`: public
/// fields, variants, inherent methods and associated consts (not those of
/// trait implementations), and a trait's own items.
fn members(kind: &str, html: &str) -> Vec<String> {
    let section = |start: &str, ends: &[&str]| -> String {
        let Some(from) = html.find(start) else {
            return String::new();
        };
        let rest = &html[from..];
        let to = ends
            .iter()
            .filter_map(|e| rest.find(e))
            .min()
            .unwrap_or(rest.len());
        rest[..to].to_owned()
    };
    let mut scopes = vec![(
        section(
            "<h2 id=\"fields\"",
            &[
                "<h2 id=\"implementations\"",
                "<h2 id=\"trait-implementations\"",
            ],
        ),
        &["structfield"][..],
    )];
    scopes.push((
        section(
            "<h2 id=\"variants\"",
            &[
                "<h2 id=\"implementations\"",
                "<h2 id=\"trait-implementations\"",
            ],
        ),
        &["variant"][..],
    ));
    scopes.push((
        section(
            "<h2 id=\"implementations\"",
            &[
                "<h2 id=\"trait-implementations\"",
                "<h2 id=\"synthetic-implementations\"",
                "<h2 id=\"blanket-implementations\"",
            ],
        ),
        &["method", "associatedconstant"][..],
    ));
    if kind == "trait" {
        scopes.push((
            section(
                "<h2 id=\"required-",
                &[
                    "<h2 id=\"implementors\"",
                    "<h2 id=\"dyn-compatibility\"",
                    "<h2 id=\"foreign-impls\"",
                ],
            ),
            &["tymethod", "method", "associatedtype", "associatedconstant"][..],
        ));
        scopes.push((
            section(
                "<h2 id=\"provided-",
                &[
                    "<h2 id=\"implementors\"",
                    "<h2 id=\"dyn-compatibility\"",
                    "<h2 id=\"foreign-impls\"",
                ],
            ),
            &["method"][..],
        ));
    }
    let mut out = BTreeSet::new();
    for (text, prefixes) in scopes {
        for chunk in text.split("id=\"").skip(1) {
            let id = chunk.split('"').next().unwrap_or("");
            // `variant.V.field.f` and the like: parts of a listed item.
            if let Some((prefix, name)) = id.split_once('.')
                && prefixes.contains(&prefix)
                && !name.contains('.')
            {
                let prefix = if prefix == "tymethod" {
                    "method"
                } else {
                    prefix
                };
                out.insert(format!("{prefix}:{name}"));
            }
        }
    }
    out.into_iter().collect()
}
