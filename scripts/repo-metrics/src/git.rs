//! Commit activity of a local clone, read with `git log --raw`.
//!
//! The git command line rather than git2/gix: the clones to measure are made with git anyway,
//! `git log` gives exactly the data needed, the thesis' pydriller itself asks git (`git
//! rev-list` through GitPython) for its commits, and libgit2 (vendored, C) or gix (a hundred
//! crates) would dwarf the rest of this crate. Every option that shapes the output is passed
//! explicitly, so a user's git configuration does not change the numbers.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use serde::Serialize;

use crate::{Method, Window};

/// A commit range as pydriller's `from_commit`/`to_commit` take it: FROM itself included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitRange {
    pub from: String,
    pub to: String,
}

impl std::fmt::Display for CommitRange {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}..{}", self.from, self.to)
    }
}

/// Activity in the window, as a [`Method`] defines it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommitStats {
    /// Commits in the window (thesis: merges included; corrected: without merges and bots).
    pub commits: u64,
    /// Merge commits in the window: counted (thesis) or left out (corrected).
    pub merges: u64,
    /// Distinct identities of those commits (thesis: raw committer e-mails; corrected: author
    /// e-mails after .mailmap, lower-cased, without bots).
    pub contributors: u64,
    /// Files changed per commit (thesis: over `files_over`, merges as 0, rounded to a whole
    /// number; corrected: over the commits counted, unrounded). 0 without commits.
    pub files_per_commit: f64,
    /// The total `files_per_commit` is the mean of (thesis: pydriller's modified files, a
    /// change between file and symlink counting twice).
    pub files_changed: u64,
    /// What `files_per_commit` averages over.
    pub files_over: String,
    /// Corrected: bot identities (author e-mails) whose commits were left out.
    pub bots: Vec<String>,
    /// Corrected: commits by bots in the window, left out.
    pub bot_commits: u64,
}

/// One commit as `git log` prints it with [`FORMAT`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Commit {
    pub parents: usize,
    /// Author name and e-mail after .mailmap.
    pub author_name: String,
    pub author_email: String,
    /// The committer e-mail as recorded in the commit.
    pub committer_email: String,
    /// Committer time, Unix seconds.
    pub time: i64,
    /// Files changed against the first parent, one per `--raw` entry, a rename being one (0 for
    /// merges, as pydriller has it).
    pub files: u64,
    /// Of those, the ones changing type (file, symlink, submodule): `git diff -p`, whose entries
    /// pydriller counts through GitPython, splits each into a deletion and a creation.
    pub type_changes: u64,
}

impl Commit {
    /// pydriller's `len(commit.modified_files)`.
    fn pydriller_files(&self) -> u64 {
        self.files + self.type_changes
    }
}

/// Field and record separators in `git log --format`: bytes that do not occur in e-mail
/// addresses, hashes or numbers, nor at the start of a `--raw` line.
const FIELD: char = '\x1f';
const RECORD: char = '\x1e';
/// %aN/%aE follow .mailmap whatever the options; %ce is the raw committer e-mail (with
/// --no-mailmap, which keeps log.mailmap from rewriting it).
const FORMAT: &str = "--format=%x1e%H%x1f%P%x1f%aN%x1f%aE%x1f%ce%x1f%ct";

/// Checks that `repo` is a repository's top directory (or a bare repository) with its full
/// history, and returns its HEAD commit.
pub fn head(repo: &Path) -> Result<String> {
    ensure!(repo.is_dir(), "{} is not a directory", repo.display());
    let bare = git(repo, &["rev-parse", "--is-bare-repository"])?;
    let top = if bare.trim() == "true" {
        git(repo, &["rev-parse", "--absolute-git-dir"])?
    } else {
        git(repo, &["rev-parse", "--show-toplevel"]).context("not inside a work tree")?
    };
    let (top, here) = (Path::new(top.trim()).canonicalize()?, repo.canonicalize()?);
    // git would happily read the enclosing repository: its numbers, not the directory's.
    ensure!(
        top == here,
        "{} is inside the repository {}, not its top: give the repository's top directory",
        repo.display(),
        top.display()
    );
    let shallow = git(repo, &["rev-parse", "--is-shallow-repository"])?;
    if shallow.trim() == "true" {
        bail!("a shallow clone lacks history the window may need; run `git -C {} fetch --unshallow`", repo.display());
    }
    Ok(git(repo, &["rev-parse", "--verify", "HEAD^{commit}"])?.trim().to_string())
}

/// Reads the history reachable from HEAD of the clone at `repo` and measures it.
pub fn commit_stats(repo: &Path, window: &Window, method: Method, range: Option<&CommitRange>) -> Result<CommitStats> {
    match method {
        Method::Thesis => {
            // pydriller's Repository(since=, to=) asks `git rev-list` for exactly this, with
            // str(datetime) as the dates; git's date limiting, quirks included, decides.
            let at = |d: chrono::NaiveDate| format!("{d} 00:00:00+00:00");
            let revs =
                [format!("--since={}", at(window.since)), format!("--until={}", at(window.until)), "HEAD".into()];
            let commits = log(repo, &revs)?;
            let ranged = range.map(|r| range_revs(repo, r).and_then(|revs| log(repo, &revs))).transpose()?;
            let (over, files_over) = match (&ranged, range) {
                (Some(list), Some(r)) => (list, format!("range {r} ({} commits)", list.len())),
                _ => (&commits, "the window".to_string()),
            };
            let files: u64 = over.iter().map(Commit::pydriller_files).sum();
            let committers: BTreeSet<&str> = commits.iter().map(|c| c.committer_email.as_str()).collect();
            Ok(CommitStats {
                commits: commits.len() as u64,
                merges: commits.iter().filter(|c| c.parents > 1).count() as u64,
                contributors: committers.len() as u64,
                files_per_commit: round_half_even(files, over.len() as u64) as f64,
                files_changed: files,
                files_over,
                bots: Vec::new(),
                bot_commits: 0,
            })
        }
        Method::Corrected => {
            // The window is applied here, not with --since/--until: git's date limiting stops
            // walking at old commits and can miss commits with skewed dates.
            let all = log(repo, &["HEAD".into()])?;
            let in_window: Vec<&Commit> = all.iter().filter(|c| window.contains(c.time)).collect();
            let (merges, single): (Vec<&Commit>, Vec<&Commit>) = in_window.into_iter().partition(|c| c.parents > 1);
            let (bots, humans): (Vec<&Commit>, Vec<&Commit>) =
                single.into_iter().partition(|c| is_bot(&c.author_name, &c.author_email));
            let authors: BTreeSet<String> = humans.iter().map(|c| c.author_email.to_lowercase()).collect();
            let bot_ids: BTreeSet<String> = bots.iter().map(|c| c.author_email.to_lowercase()).collect();
            let files: u64 = humans.iter().map(|c| c.files).sum();
            let n = humans.len() as u64;
            Ok(CommitStats {
                commits: n,
                merges: merges.len() as u64,
                contributors: authors.len() as u64,
                files_per_commit: if n == 0 { 0.0 } else { files as f64 / n as f64 },
                files_changed: files,
                files_over: "the commits counted".into(),
                bots: bot_ids.into_iter().collect(),
                bot_commits: bots.len() as u64,
            })
        }
    }
}

/// GitHub apps commit as `name[bot]`; other automation names itself `...-bot`.
pub fn is_bot(name: &str, email: &str) -> bool {
    let local = email.split('@').next().unwrap_or_default();
    [name, local].iter().any(|s| {
        let s = s.to_lowercase();
        s.ends_with("[bot]") || s.ends_with("-bot") || s.ends_with("_bot")
    })
}

/// Python's `round(a / b)` for the integers pydriller averages: to nearest, ties to even.
pub fn round_half_even(a: u64, b: u64) -> u64 {
    if b == 0 {
        return 0;
    }
    let (q, r) = (a / b, a % b);
    match (2 * r).cmp(&b) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + q % 2,
    }
}

/// The revisions pydriller 2.5.1 passes to `git rev-list` for `from_commit`/`to_commit`
/// (`ProcessMetric` and `Conf.build_args`): the same string twice is that commit alone;
/// otherwise FROM and TO are swapped unless FROM is the older (committer date, then author
/// date), and the range is `--ancestry-path=FROM`, FROM's parents excluded (none for a root:
/// then FROM is not named again), up to TO.
fn range_revs(repo: &Path, range: &CommitRange) -> Result<Vec<String>> {
    struct Rev {
        hash: String,
        parents: Vec<String>,
        /// Committer and author time, Unix seconds.
        dates: (i64, i64),
    }
    let resolve = |rev: &str| -> Result<Rev> {
        let spec = format!("{rev}^{{commit}}");
        let line = git(repo, &["log", "--no-walk", "--format=%H%x1f%P%x1f%ct%x1f%at", &spec, "--"])
            .with_context(|| format!("commit {rev} of --range {range}"))?;
        let fields: Vec<&str> = line.trim().split(FIELD).collect();
        let [hash, parents, committed, authored] = fields[..] else {
            bail!("commit {rev} of --range {range}: unexpected `git log` output {line:?}");
        };
        let date = |s: &str| s.parse::<i64>().with_context(|| format!("commit {hash}: time {s:?}"));
        let parents = parents.split_whitespace().map(str::to_string).collect();
        Ok(Rev { hash: hash.into(), parents, dates: (date(committed)?, date(authored)?) })
    };
    if range.from == range.to {
        return Ok(vec!["-n".into(), "1".into(), resolve(&range.to)?.hash]);
    }
    let (mut from, mut to) = (resolve(&range.from)?, resolve(&range.to)?);
    // `_is_commit_before`: tuples compare the committer dates first, then the author dates.
    if from.dates >= to.dates {
        std::mem::swap(&mut from, &mut to);
    }
    let mut revs = vec![format!("--ancestry-path={}", from.hash)];
    revs.extend(from.parents.iter().map(|p| format!("^{p}")));
    revs.push(to.hash);
    Ok(revs)
}

/// `git log` of `revs` (revisions and limiting options) with [`FORMAT`] and the raw diff.
fn log(repo: &Path, revs: &[String]) -> Result<Vec<Commit>> {
    let mut args: Vec<&str> = vec![
        "-c",
        "log.showSignature=false",
        "log",
        "--no-mailmap",
        // One line per changed file, with both modes: no line counts, so no blob is read but
        // for rename detection.
        "--raw",
        "--no-abbrev",
        // GitPython's diff, which pydriller counts files with, passes -M.
        "--find-renames",
        "--root",
        "--diff-merges=off",
        "--no-relative",
        "--no-ext-diff",
        "--no-color",
        FORMAT,
    ];
    args.extend(revs.iter().map(String::as_str));
    args.push("--");
    parse_log(&git(repo, &args)?)
}

/// Parses the output of [`log`].
pub(crate) fn parse_log(log: &str) -> Result<Vec<Commit>> {
    let mut commits = Vec::new();
    for record in log.split(RECORD).skip(1) {
        let mut lines = record.lines();
        let header = lines.next().unwrap_or_default();
        let fields: Vec<&str> = header.split(FIELD).collect();
        let [hash, parents, author_name, author_email, committer_email, time] = fields[..] else {
            bail!("unexpected `git log` header line {header:?}");
        };
        let time: i64 = time.parse().with_context(|| format!("commit {hash}: committer time {time:?}"))?;
        let (mut files, mut type_changes) = (0, 0);
        // `:OLD_MODE NEW_MODE OLD NEW STATUS\tPATH[\tPATH]`, one per file.
        for line in lines.filter(|l| !l.is_empty()) {
            let modes = line.strip_prefix(':').and_then(|l| {
                let mut m = l.split(' ').map(|m| u32::from_str_radix(m, 8));
                Some((m.next()?.ok()?, m.next()?.ok()?))
            });
            let Some((old, new)) = modes else { bail!("commit {hash}: unexpected `git log --raw` line {line:?}") };
            files += 1;
            // diff.c's run_diff: both sides present with different S_IFMT.
            const S_IFMT: u32 = 0o170000;
            if old != 0 && new != 0 && old & S_IFMT != new & S_IFMT {
                type_changes += 1;
            }
        }
        commits.push(Commit {
            parents: parents.split_whitespace().count(),
            author_name: author_name.into(),
            author_email: author_email.into(),
            committer_email: committer_email.into(),
            time,
            files,
            type_changes,
        });
    }
    Ok(commits)
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
    fn parses_records() {
        let log = "\x1ea\x1f\x1fAnn\x1fA@x.org\x1fc@x.org\x1f5\n\n\
                   :000000 100644 0000 1111 A\tsrc/a.rs\n\
                   :100644 100644 2222 2222 R100\told.png\tlogo.png\n\
                   :120000 100644 3333 4444 T\tREADME.md\n\
                   :100644 100755 5555 5555 M\trun.sh\n\
                   \x1eb\x1fp q\x1fBob\x1fb@x.org\x1fnoreply@github.com\x1f6\n";
        let c = parse_log(log).unwrap();
        assert_eq!((c[0].parents, c[0].files, c[0].time, c[0].committer_email.as_str()), (0, 4, 5, "c@x.org"));
        // The symlink that became a file is two of pydriller's files; a mode change is not.
        assert_eq!((c[0].type_changes, c[0].pydriller_files()), (1, 5));
        assert_eq!((c[1].parents, c[1].files, c[1].author_name.as_str()), (2, 0, "Bob"));
        assert!(parse_log("\x1ebroken\n").is_err());
        let e = parse_log("\x1ea\x1f\x1fA\x1fa@x\x1fa@x\x1f5\n1\t0\ta.rs\n").unwrap_err().to_string();
        assert!(e.contains("unexpected `git log --raw` line"), "{e}");
        assert!(parse_log("").unwrap().is_empty());
    }

    #[test]
    fn rounding_is_pythons() {
        let r = |a, b| round_half_even(a, b);
        assert_eq!([r(5, 2), r(7, 2), r(7, 3), r(8, 3), r(0, 0), r(9, 6)], [2, 4, 2, 3, 0, 2]);
    }

    #[test]
    fn bots() {
        assert!(is_bot("dependabot[bot]", "49699333+dependabot[bot]@users.noreply.github.com"));
        assert!(is_bot("CI", "release-bot@example.org") && is_bot("libbpf_bot", "x@y"));
        assert!(!is_bot("Abbot", "abbot@example.org") && !is_bot("GitHub", "noreply@github.com"));
    }
}
