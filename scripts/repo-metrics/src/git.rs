//! Commit activity of a local clone, read with `git log --numstat`.
//!
//! The git command line rather than git2/gix: the clones to measure are made with git anyway,
//! `git log` gives exactly the data needed, and libgit2 (vendored, C) or gix (a hundred crates)
//! would dwarf the rest of this crate. Every option that shapes the output is passed
//! explicitly, so a user's git configuration does not change the numbers.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::Window;

/// Activity in the window. Merge commits are left out: whether a project merges pull requests
/// with merge commits or squashes them would otherwise decide its commit count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommitStats {
    /// Non-merge commits whose committer date is in the window.
    pub commits: u64,
    /// Distinct author e-mail addresses of those commits (after .mailmap, case-insensitive).
    pub contributors: u64,
    /// Files changed per commit, averaged over those commits (0 when there are none).
    pub files_per_commit: f64,
}

/// Field and record separators in `git log --format`: bytes that do not occur in e-mail
/// addresses, hashes or numbers, nor at the start of a numstat line.
const FIELD: char = '\x1f';
const RECORD: char = '\x1e';

/// Reads the history reachable from HEAD of the clone at `repo`.
pub fn commit_stats(repo: &Path, window: &Window) -> Result<CommitStats> {
    if !repo.is_dir() {
        bail!("{} is not a directory", repo.display());
    }
    let shallow = git(repo, &["rev-parse", "--is-shallow-repository"])?;
    if shallow.trim() == "true" {
        bail!("a shallow clone lacks history the window may need; run `git -C {} fetch --unshallow`", repo.display());
    }
    // The window is applied here, not with --since/--until: git's date limiting stops walking
    // at old commits and can miss commits with skewed dates.
    let log = git(
        repo,
        &[
            "-c",
            "log.showSignature=false",
            "log",
            "--no-merges",
            "--numstat",
            "--find-renames",
            "--no-relative",
            "--no-ext-diff",
            "--no-color",
            "--format=%x1e%H%x1f%aE%x1f%ct",
            "HEAD",
        ],
    )?;
    parse_log(&log, window)
}

/// Parses the output of `commit_stats`' `git log` and keeps the commits in the window.
pub(crate) fn parse_log(log: &str, window: &Window) -> Result<CommitStats> {
    let (mut commits, mut files) = (0u64, 0u64);
    let mut authors = BTreeSet::new();
    for record in log.split(RECORD).skip(1) {
        let mut lines = record.lines();
        let header = lines.next().unwrap_or_default();
        let fields: Vec<&str> = header.split(FIELD).collect();
        let [hash, email, time] = fields[..] else {
            bail!("unexpected `git log` header line {header:?}");
        };
        let time: i64 = time.parse().with_context(|| format!("commit {hash}: committer time {time:?}"))?;
        if !window.contains(time) {
            continue;
        }
        commits += 1;
        authors.insert(email.to_lowercase());
        // One numstat line per file, renames and binary files (`-\t-\tpath`) included.
        files += lines.filter(|l| !l.is_empty()).count() as u64;
    }
    let files_per_commit = if commits == 0 { 0.0 } else { files as f64 / commits as f64 };
    Ok(CommitStats { commits, contributors: authors.len() as u64, files_per_commit })
}

/// Runs git in `repo`, failing with git's own message.
fn git(repo: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        // Inherited from a hook or a wrapper these would point git at another repository.
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .context("running git (it must be installed to read the repositories)")?;
    if !out.status.success() {
        bail!("git {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    String::from_utf8(out.stdout).context("git printed non-UTF-8 output")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_records_and_applies_the_window() {
        let w = Window::new("2023-01-01".parse().unwrap(), "2023-01-01".parse().unwrap()).unwrap();
        let t = w.start();
        let log = format!(
            "\x1ea\x1fA@x.org\x1f{t}\n\n1\t0\tsrc/a.rs\n-\t-\tlogo.png\n\
             \x1eb\x1fa@X.org\x1f{}\n\n3\t1\tsrc/{{a.rs => b.rs}}\n\
             \x1ec\x1fc@x.org\x1f{}\n\n1\t1\tREADME\n\
             \x1ed\x1fd@x.org\x1f{}\n",
            t + 10,
            w.end(),
            t + 20
        );
        let s = parse_log(&log, &w).unwrap();
        // c is outside the window; d changed no file (an empty commit).
        assert_eq!(s, CommitStats { commits: 3, contributors: 2, files_per_commit: 1.0 });
        assert!(parse_log("\x1ebroken\n", &w).is_err());
        assert_eq!(parse_log("", &w).unwrap().files_per_commit, 0.0);
    }
}
