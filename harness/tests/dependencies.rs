//! No crates.io package in any Cargo.lock of the repository (every tracked one: the root
//! workspace, RedBPF's, cargo-bpf's) is yanked or deprecated, as crates.io's sparse index says.
//!
//! The index has one JSON line per published version, with `yanked`; it has no deprecation
//! flag. Deprecation shows there only in a version's build metadata, as serde_yaml's author did
//! with `0.9.34+deprecated`: a package is flagged when its locked version says so, or when the
//! crate's latest published (not yanked) version does. A crate deprecated only in its
//! description, keywords or a RustSec "unmaintained" advisory is invisible to the index and is
//! not caught here.
//!
//! Each crate's index file is fetched once per run (several lock files share crates), at most
//! eight at a time, and kept under `target/dependency-index/` for 15 minutes so that a second
//! run soon after does not fetch again. An unreachable index fails the test. Exceptions are
//! [`ALLOWED`], printed on every run; an exception that no longer matches anything fails too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

const INDEX: &str = "https://index.crates.io";
/// How Cargo.lock names crates.io, whichever protocol resolved it.
const CRATES_IO: &str = "registry+https://github.com/rust-lang/crates.io-index";
const CACHE_FOR: Duration = Duration::from_secs(15 * 60);
const PARALLEL: &str = "8";

/// (lock file, crate, version, why it may stay): only RedBPF's pins, which its last release
/// (2.3.0, 2022) and Rust 1.59 fix (impls/redbpf/README.md).
const ALLOWED: &[(&str, &str, &str, &str)] = &[(
    "impls/redbpf/Cargo.lock",
    "proc-macro-hack",
    "0.5.20+deprecated",
    "redbpf-probes 2.3.0 requires ufmt 0.1, whose macros need it (ufmt 0.2 dropped it); RedBPF is unmaintained, so no release will move",
)];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Every Cargo.lock git tracks (vendored crates' own lock files are not tracked).
fn lock_files(root: &Path) -> Vec<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "--", "Cargo.lock", "*/Cargo.lock"])
        .output()
        .expect("running git ls-files");
    assert!(out.status.success(), "git ls-files: {}", String::from_utf8_lossy(&out.stderr));
    let files: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(String::from).collect();
    assert!(files.iter().any(|f| f == "Cargo.lock"), "git lists no Cargo.lock in {}", root.display());
    files
}

/// crates.io packages of a lock file: (name, version). Cargo.lock is generated in a fixed
/// shape: `[[package]]` blocks of `key = "value"` lines.
fn registry_packages(text: &str) -> Vec<(String, String)> {
    text.split("[[package]]")
        .skip(1)
        .filter_map(|block| {
            let field = |key: &str| {
                block.lines().find_map(|l| {
                    l.strip_prefix(key)?.trim_start().strip_prefix('=')?.trim().strip_prefix('"')?.strip_suffix('"').map(String::from)
                })
            };
            (field("source")? == CRATES_IO).then_some((field("name")?, field("version")?))
        })
        .collect()
}

/// The index path of a crate: `1/a`, `2/ab`, `3/a/abc`, `se/rd/serde`.
fn index_path(name: &str) -> String {
    let n = name.to_lowercase();
    match n.len() {
        1 => format!("1/{n}"),
        2 => format!("2/{n}"),
        3 => format!("3/{}/{n}", &n[..1]),
        _ => format!("{}/{}/{n}", &n[..2], &n[2..4]),
    }
}

/// The index file of every crate in `names`, from the cache when fresh, else fetched.
fn index_files(names: &BTreeSet<String>, cache: &Path) -> BTreeMap<String, String> {
    std::fs::create_dir_all(cache).unwrap();
    let fresh = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .is_ok_and(|t| SystemTime::now().duration_since(t).unwrap_or_default() < CACHE_FOR)
    };
    let missing: BTreeMap<String, &String> =
        names.iter().filter(|n| !fresh(&cache.join(n))).map(|n| (format!("{INDEX}/{}", index_path(n)), n)).collect();
    if !missing.is_empty() {
        // A fresh staging directory: only complete, successful responses enter the cache.
        let staging = cache.join(format!(".fetch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).unwrap();
        let config: String = missing
            .iter()
            .map(|(url, n)| format!("url = \"{url}\"\noutput = \"{}\"\n", staging.join(n).display()))
            .collect();
        let config_path = staging.join("curl.config");
        std::fs::write(&config_path, config).unwrap();
        let out = Command::new("curl")
            .args(["--parallel", "--parallel-max", PARALLEL, "--silent", "--no-progress-meter", "--show-error", "--fail"])
            .args(["--connect-timeout", "15", "--max-time", "60", "--retry", "2"])
            .args(["--write-out", "%{http_code} %{url_effective}\\n", "--config"])
            .arg(&config_path)
            .output()
            .expect("running curl (scripts/apt-packages installs it)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut failed: BTreeSet<&String> = missing.values().copied().collect();
        for url in stdout.lines().filter_map(|l| l.strip_prefix("200 ")) {
            if let Some(n) = missing.get(url) {
                std::fs::rename(staging.join(n), cache.join(n)).unwrap();
                failed.remove(n);
            }
        }
        let _ = std::fs::remove_dir_all(&staging);
        assert!(
            out.status.success() && failed.is_empty(),
            "crates.io's index could not be read ({} of {} crates not fetched, e.g. {:?}); curl {}:\n{}\n{}",
            failed.len(),
            missing.len(),
            failed.iter().take(5).collect::<Vec<_>>(),
            out.status,
            String::from_utf8_lossy(&out.stderr).lines().take(10).collect::<Vec<_>>().join("\n"),
            stdout.lines().filter(|l| !l.starts_with("200 ")).take(10).collect::<Vec<_>>().join("\n"),
        );
    }
    names.iter().map(|n| (n.clone(), std::fs::read_to_string(cache.join(n)).unwrap())).collect()
}

#[derive(serde::Deserialize)]
struct IndexLine {
    vers: String,
    #[serde(default)]
    yanked: bool,
}

fn is_deprecated(version: &str) -> bool {
    version.split_once('+').is_some_and(|(_, meta)| meta.to_lowercase().contains("deprecated"))
}

/// What is wrong with `name` `version` according to its index file, if anything.
fn problem(name: &str, version: &str, index: &str) -> Option<String> {
    let lines: Vec<IndexLine> = index
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("index line of {name}: {e}: {l}")))
        .collect();
    let Some(locked) = lines.iter().find(|l| l.vers == version) else {
        return Some("not in crates.io's index".into());
    };
    if locked.yanked {
        return Some("yanked".into());
    }
    if is_deprecated(version) {
        return Some("deprecated (its version says so)".into());
    }
    // The index lists versions in publish order: the last one not yanked is the author's latest word.
    match lines.iter().rev().find(|l| !l.yanked) {
        Some(latest) if is_deprecated(&latest.vers) => Some(format!("deprecated (its latest release is {})", latest.vers)),
        _ => None,
    }
}

#[test]
fn no_dependency_is_yanked_or_deprecated() {
    let root = root();
    let mut packages: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for lock in lock_files(&root) {
        let text = std::fs::read_to_string(root.join(&lock)).unwrap_or_else(|e| panic!("reading {lock}: {e}"));
        let found = registry_packages(&text);
        assert!(!found.is_empty() || !text.contains(CRATES_IO), "{lock}: no crates.io package parsed");
        eprintln!("{lock}: {} crates.io packages", found.len());
        for p in found {
            packages.entry(p).or_default().insert(lock.clone());
        }
    }
    let names: BTreeSet<String> = packages.keys().map(|(n, _)| n.clone()).collect();
    let index = index_files(&names, &root.join("target").join("dependency-index"));

    let mut failures = Vec::new();
    let mut used = BTreeSet::new();
    for ((name, version), locks) in &packages {
        let Some(why) = problem(name, version, &index[name]) else { continue };
        for lock in locks {
            match ALLOWED.iter().position(|(l, n, v, _)| (*l, *n, *v) == (lock.as_str(), name.as_str(), version.as_str())) {
                Some(i) => {
                    used.insert(i);
                }
                None => failures.push(format!("{name} {version}: {why} (in {lock})")),
            }
        }
    }
    for (i, (lock, name, version, reason)) in ALLOWED.iter().enumerate() {
        let state = if used.contains(&i) { "allowed" } else { "STALE: no longer flagged, remove it" };
        eprintln!("{state}: {name} {version} in {lock}: {reason}");
        if !used.contains(&i) {
            failures.push(format!("allowlist entry {name} {version} ({lock}) matches nothing"));
        }
    }
    eprintln!("{} packages ({} crates) checked against crates.io's index", packages.len(), names.len());
    assert!(failures.is_empty(), "{} dependencies need attention:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn flags_yanked_deprecated_and_missing_versions() {
    let index = [
        r#"{"name":"serde_yaml","vers":"0.9.33","deps":[],"cksum":"","features":{},"yanked":false}"#,
        r#"{"name":"serde_yaml","vers":"0.9.34+deprecated","deps":[],"cksum":"","features":{},"yanked":false}"#,
    ]
    .join("\n");
    assert_eq!(problem("serde_yaml", "0.9.34+deprecated", &index).as_deref(), Some("deprecated (its version says so)"));
    assert_eq!(
        problem("serde_yaml", "0.9.33", &index).as_deref(),
        Some("deprecated (its latest release is 0.9.34+deprecated)")
    );
    assert_eq!(problem("serde_yaml", "0.9.1", &index).as_deref(), Some("not in crates.io's index"));
    let yanked = r#"{"name":"x","vers":"1.0.0","yanked":true}
{"name":"x","vers":"1.0.1","yanked":false}
{"name":"x","vers":"2.0.0+deprecated","yanked":true}"#;
    assert_eq!(problem("x", "1.0.0", yanked).as_deref(), Some("yanked"));
    // Build metadata that is not a deprecation, and a yanked deprecated release, are fine.
    assert_eq!(problem("x", "1.0.1", yanked), None);
    assert_eq!(problem("toml", "0.9.12+spec-1.1.0", r#"{"vers":"0.9.12+spec-1.1.0"}"#), None);
    assert_eq!(index_path("a"), "1/a");
    assert_eq!(index_path("cc"), "2/cc");
    assert_eq!(index_path("syn"), "3/s/syn");
    assert_eq!(index_path("Serde_YAML"), "se/rd/serde_yaml");
    let lock = "version = 4\n\n[[package]]\nname = \"harness\"\nversion = \"0.1.0\"\n\n[[package]]\nname = \"libc\"\nversion = \"0.2.1\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"00\"\n";
    assert_eq!(registry_packages(lock), vec![("libc".to_string(), "0.2.1".to_string())]);
}
