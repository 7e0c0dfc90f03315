//! End to end: small git repositories made in temporary directories, with chosen authors,
//! dates and files, measured through the library API and the binary; exact numbers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use repo_metrics::{collect, run, Args, CommitStats, IssueStats, Metric, Options, Report};

/// A git repository whose commits get the identities and dates a test chooses.
struct Repo {
    dir: PathBuf,
    home: tempfile::TempDir,
    serial: usize,
}

impl Repo {
    fn new(dir: PathBuf) -> Repo {
        std::fs::create_dir_all(&dir).unwrap();
        let repo = Repo { dir, home: tempfile::tempdir().unwrap(), serial: 0 };
        repo.git(&["init", "-q", "-b", "main"], None);
        repo
    }

    /// Runs git isolated from the user's and the system's configuration.
    fn git(&self, args: &[&str], who: Option<(&str, &str, &str)>) {
        let mut cmd = Command::new("git");
        cmd.arg("-C").arg(&self.dir).args(args);
        cmd.env("HOME", self.home.path()).env("GIT_CONFIG_NOSYSTEM", "1").env("GIT_CONFIG_GLOBAL", "/dev/null");
        cmd.env_remove("GIT_DIR").env_remove("GIT_WORK_TREE");
        let (email, author_date, committer_date) =
            who.unwrap_or(("setup@example.org", "2000-01-01T00:00:00Z", "2000-01-01T00:00:00Z"));
        cmd.env("GIT_AUTHOR_NAME", email).env("GIT_AUTHOR_EMAIL", email).env("GIT_AUTHOR_DATE", author_date);
        cmd.env("GIT_COMMITTER_NAME", "committer").env("GIT_COMMITTER_EMAIL", "committer@example.org");
        cmd.env("GIT_COMMITTER_DATE", committer_date);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Changes (or creates) each file and commits as `email` at `date` (author and committer).
    fn commit(&mut self, email: &str, date: &str, files: &[&str]) {
        self.commit_dated(email, date, date, files);
    }

    fn commit_dated(&mut self, email: &str, author_date: &str, committer_date: &str, files: &[&str]) {
        for f in files {
            self.serial += 1;
            let path = self.dir.join(f);
            let old = std::fs::read_to_string(&path).unwrap_or_default();
            std::fs::write(&path, format!("{old}change {}\n", self.serial)).unwrap();
        }
        self.git(&["add", "-A"], None);
        let msg = format!("commit {}", self.serial);
        self.git(&["commit", "-q", "--allow-empty", "-m", &msg], Some((email, author_date, committer_date)));
    }
}

fn day(s: &str) -> chrono::NaiveDate {
    s.parse().unwrap()
}

/// January 2023.
fn args(repos: &[(&str, &Path)], issues: &[(&str, &Path)], out: &Path) -> Args {
    let named = |list: &[(&str, &Path)]| list.iter().map(|(n, p)| (n.to_string(), p.to_path_buf())).collect();
    Args {
        repos: named(repos),
        issues: named(issues),
        since: day("2023-01-01"),
        until: day("2023-01-31"),
        out: out.into(),
    }
}

/// alpha: 6 commits in January by 5 people (one e-mail in two cases), 9 files; plus a merge,
/// commits just outside, and commits whose author and committer dates disagree.
fn alpha(dir: PathBuf) -> Repo {
    let mut r = Repo::new(dir);
    // Configuration must not change the numbers: repo-metrics passes the options it relies on.
    r.git(&["config", "diff.renames", "false"], None);
    r.commit("old@example.org", "2022-12-31T23:59:59Z", &["a.txt", "b.txt"]);
    r.commit("ann@example.org", "2023-01-01T00:00:00Z", &["a.txt", "b.txt", "c.txt"]);
    // Authored before the window, committed in it: counted (the committer date decides).
    r.commit_dated("fay@example.org", "2022-12-01T00:00:00Z", "2023-01-05T00:00:00Z", &["h.txt"]);
    r.commit("ANN@Example.ORG", "2023-01-15T12:00:00+05:00", &["a.txt"]);
    r.git(&["checkout", "-q", "-b", "side"], None);
    r.commit("bob@example.org", "2023-01-20T00:00:00Z", &["d.txt"]);
    r.git(&["checkout", "-q", "main"], None);
    r.commit("carl@example.org", "2023-01-21T00:00:00Z", &["e.txt", "f.txt"]);
    // Merges are not counted.
    r.git(
        &["merge", "-q", "--no-ff", "-m", "merge side", "side"],
        Some(("merger@example.org", "2023-01-22T00:00:00Z", "2023-01-22T00:00:00Z")),
    );
    // A rename is one file; the last second of the window is in it.
    r.git(&["mv", "a.txt", "g.txt"], None);
    r.commit("dan@example.org", "2023-01-31T23:59:59Z", &[]);
    // Authored in the window, committed after it: not counted.
    r.commit_dated("gus@example.org", "2023-01-10T00:00:00Z", "2023-02-05T00:00:00Z", &["i.txt"]);
    r.commit("eve@example.org", "2023-02-01T00:00:00Z", &["a2.txt"]);
    r
}

/// beta: 2 commits by 2 people, 1 file each.
fn beta(dir: PathBuf) -> Repo {
    let mut r = Repo::new(dir);
    r.commit("x@example.org", "2023-01-03T00:00:00Z", &["x"]);
    r.commit("y@example.org", "2023-01-04T00:00:00Z", &["y"]);
    r
}

/// gamma: 4 commits by 1 person, 3 files each.
fn gamma(dir: PathBuf) -> Repo {
    let mut r = Repo::new(dir);
    for d in ["2023-01-02", "2023-01-09", "2023-01-16", "2023-01-23"] {
        r.commit("solo@example.org", &format!("{d}T08:00:00Z"), &["p", "q", "r"]);
    }
    r
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn tertiles(report: &Report, lib: usize) -> BTreeMap<Metric, u8> {
    report.libraries[lib].tertiles.clone()
}

struct Setup {
    tmp: tempfile::TempDir,
    repos: Vec<Repo>,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let repos = vec![alpha(tmp.path().join("alpha")), beta(tmp.path().join("beta")), gamma(tmp.path().join("gamma"))];
    Setup { tmp, repos }
}

impl Setup {
    fn repos(&self) -> Vec<(&'static str, &Path)> {
        ["alpha", "beta", "gamma"].into_iter().zip(self.repos.iter().map(|r| r.dir.as_path())).collect()
    }
    fn out(&self) -> PathBuf {
        self.tmp.path().join("out")
    }
}

#[test]
fn activity_tertiles_score_and_files() {
    let s = setup();
    let beta_issues = s.tmp.path().join("beta.json");
    std::fs::write(&beta_issues, "[]").unwrap();
    let opts: Options = args(&s.repos(), &[("alpha", &fixture("issues-alpha.json")), ("beta", &beta_issues)], &s.out())
        .options()
        .unwrap();
    let report = run(&opts).unwrap();

    let c = |commits, contributors, files_per_commit| CommitStats { commits, contributors, files_per_commit };
    assert_eq!(report.libraries[0].commits, c(6, 5, 1.5));
    assert_eq!(report.libraries[1].commits, c(2, 2, 1.0));
    assert_eq!(report.libraries[2].commits, c(4, 1, 3.0));
    let alpha_issues = IssueStats { opened: 4, closed: 3, share_closed: Some(0.5), mean_age_days: Some(10.5625) };
    assert_eq!(report.libraries[0].issues.as_ref(), Some(&alpha_issues));
    let none = IssueStats { opened: 0, closed: 0, share_closed: None, mean_age_days: None };
    assert_eq!(report.libraries[1].issues.as_ref(), Some(&none));
    assert_eq!(report.libraries[2].issues, None);

    // gamma has no issues export: only the activity metrics are ranked.
    use Metric::*;
    assert_eq!(tertiles(&report, 0), BTreeMap::from([(Commits, 3), (Contributors, 3), (FilesPerCommit, 2)]));
    assert_eq!(tertiles(&report, 1), BTreeMap::from([(Commits, 1), (Contributors, 2), (FilesPerCommit, 1)]));
    assert_eq!(tertiles(&report, 2), BTreeMap::from([(Commits, 2), (Contributors, 1), (FilesPerCommit, 3)]));
    let scores: Vec<f64> = report.libraries.iter().map(|l| l.score.unwrap()).collect();
    assert_eq!(scores, [8.0 / 3.0, 4.0 / 3.0, 2.0]);

    let [csv, json, svg] = repo_metrics::report_files(&s.out());
    let csv = std::fs::read_to_string(csv).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(
        rows[0],
        [
            "library",
            "repo",
            "since",
            "until",
            "commits",
            "contributors",
            "files_per_commit",
            "issues_opened",
            "issues_closed",
            "issues_share_closed",
            "issues_mean_age_days",
            "tertile_commits",
            "tertile_contributors",
            "tertile_files_per_commit",
            "tertile_issues_opened",
            "tertile_issues_closed",
            "tertile_issues_share_closed",
            "tertile_issues_mean_age_days",
            "score"
        ]
    );
    let alpha_repo = s.repos[0].dir.display().to_string();
    assert_eq!(
        rows[1],
        [
            "alpha",
            &alpha_repo,
            "2023-01-01",
            "2023-01-31",
            "6",
            "5",
            "1.5",
            "4",
            "3",
            "0.5",
            "10.5625",
            "3",
            "3",
            "2",
            "",
            "",
            "",
            "",
            "2.6667"
        ]
    );
    assert_eq!(rows[2][4..], ["2", "2", "1", "0", "0", "", "", "1", "2", "1", "", "", "", "", "1.3333"]);
    assert_eq!(rows[3][4..], ["4", "1", "3", "", "", "", "", "2", "1", "3", "", "", "", "", "2"]);
    assert_eq!(rows.len(), 4);

    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(json["window"]["since"], "2023-01-01");
    assert_eq!(json["libraries"][0]["tertiles"]["files_per_commit"], 2);
    assert_eq!(json["libraries"][0]["issues"]["mean_age_days"], 10.5625);

    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
    for text in [
        "alpha",
        "beta",
        "gamma",
        "commits (higher is better)",
        "issues_mean_age_days (lower is better)",
        "6, T3",
        "score: mean tertile",
    ] {
        assert!(svg.contains(text), "the plot lacks {text:?}");
    }
}

#[test]
fn issue_metrics_are_ranked_when_every_library_has_an_export() {
    let s = setup();
    let write = |name: &str, text: &str| {
        let p = s.tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    // beta: two issues closed after a day each; gamma: one still open, two days before the end.
    let beta = write(
        "beta.json",
        r#"[{"created_at":"2023-01-02T00:00:00Z","closed_at":"2023-01-03T00:00:00Z"},
            {"created_at":"2023-01-05T00:00:00Z","closed_at":"2023-01-06T00:00:00Z"}]"#,
    );
    let gamma = write("gamma.json", r#"[[{"created_at":"2023-01-30T00:00:00Z","closed_at":null}]]"#);
    let alpha = fixture("issues-alpha.json");
    let opts = args(&s.repos(), &[("alpha", &alpha), ("beta", &beta), ("gamma", &gamma)], &s.out()).options().unwrap();
    let report = collect(&opts).unwrap();
    assert!(!s.out().exists(), "collect writes nothing");

    use Metric::*;
    let issue_tertiles = |lib| {
        let t = tertiles(&report, lib);
        [IssuesOpened, IssuesClosed, IssuesShareClosed, IssuesMeanAgeDays].map(|m| t[&m])
    };
    assert_eq!(issue_tertiles(0), [3, 3, 2, 1]);
    assert_eq!(issue_tertiles(1), [2, 2, 3, 3]);
    assert_eq!(issue_tertiles(2), [1, 1, 1, 2]);
    let scores: Vec<f64> = report.libraries.iter().map(|l| l.score.unwrap()).collect();
    assert_eq!(scores, [17.0 / 7.0, 14.0 / 7.0, 11.0 / 7.0]);
}

#[test]
fn errors_name_the_library_and_the_cause() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let plain = tmp.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    let err = |repos: &[(&str, &Path)], issues: &[(&str, &Path)]| {
        format!("{:#}", collect(&args(repos, issues, &out).options().unwrap()).unwrap_err())
    };

    let e = err(&[("plain", &plain)], &[]);
    assert!(e.contains(&format!("library plain ({})", plain.display())) && e.contains("not a git repository"), "{e}");
    let missing = tmp.path().join("missing");
    let e = err(&[("gone", &missing)], &[]);
    assert!(e.contains("library gone") && e.contains("is not a directory"), "{e}");

    let b = beta(tmp.path().join("beta"));
    let shallow = tmp.path().join("shallow");
    let url = format!("file://{}", b.dir.display());
    b.git(&["clone", "-q", "--depth", "1", &url, shallow.to_str().unwrap()], None);
    let e = err(&[("shallow", &shallow)], &[]);
    assert!(e.contains("shallow clone") && e.contains("--unshallow"), "{e}");

    let e = err(&[("beta", &b.dir)], &[("beta", &tmp.path().join("nope.json"))]);
    assert!(e.contains("library beta") && e.contains("nope.json"), "{e}");
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, r#"[{"number": 9, "created_at": "2023-13-01T00:00:00Z"}]"#).unwrap();
    let e = err(&[("beta", &b.dir)], &[("beta", &bad)]);
    assert!(e.contains("bad.json") && e.contains("issue #9") && e.contains("created_at"), "{e}");
}

#[test]
fn command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let b = beta(tmp.path().join("beta"));
    let g = gamma(tmp.path().join("gamma"));
    let out = tmp.path().join("out");
    let exe = env!("CARGO_BIN_EXE_repo-metrics");
    let repo = |name: &str, r: &Repo| format!("{name}={}", r.dir.display());
    let ok = Command::new(exe)
        .args([
            "--repo",
            &repo("beta", &b),
            "--repo",
            &repo("gamma", &g),
            "--since",
            "2023-01-01",
            "--until",
            "2023-01-31",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{stdout}{}", String::from_utf8_lossy(&ok.stderr));
    assert!(stdout.contains("beta: 2 commits, 2 contributors, 1.00 files/commit, score 1.67"), "{stdout}");
    assert!(repo_metrics::report_files(&out).iter().all(|f| f.is_file()));

    let fail = |extra: &[&str]| {
        let o = Command::new(exe).args(["--repo", &repo("beta", &b), "--out", "x"]).args(extra).output().unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let (code, stderr) = fail(&["--since", "2023-01-01"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--until"), "{stderr}");
    let (code, stderr) = fail(&["--since", "2023-02-30", "--until", "2023-03-01"]);
    assert_eq!(code, Some(2), "{stderr}");
    let (code, stderr) = fail(&["--since", "2023-01-01", "--until", "2023-01-31", "--issues", "aya=x.json"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no --repo is named `aya`"), "{stderr}");
}

#[test]
fn a_lone_library_is_in_the_middle_tertile() {
    let tmp = tempfile::tempdir().unwrap();
    let g = gamma(tmp.path().join("gamma"));
    let out = tmp.path().join("out");
    let report = run(&args(&[("gamma", &g.dir)], &[], &out).options().unwrap()).unwrap();
    assert!(report.libraries[0].tertiles.values().all(|&t| t == 2));
    assert_eq!(report.libraries[0].score, Some(2.0));
    assert!(std::fs::read_to_string(out.join(repo_metrics::SVG_FILE)).unwrap().contains("gamma"));
}
