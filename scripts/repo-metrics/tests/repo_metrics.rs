//! End to end: small git repositories made in temporary directories, with chosen authors,
//! committers, dates and files, measured through the library API and the binary under both
//! methods; exact numbers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use repo_metrics::{collect, run, Args, IssueStats, Method, MethodArg, Metric, Options, Report};

/// Who makes a commit: author name and e-mail, committer e-mail, author and committer date.
#[derive(Clone, Copy)]
struct Who<'a> {
    name: &'a str,
    email: &'a str,
    committer: &'a str,
    authored: &'a str,
    committed: &'a str,
}

/// Author and committer `email` at `date`.
fn by<'a>(email: &'a str, date: &'a str) -> Who<'a> {
    Who { name: email, email, committer: email, authored: date, committed: date }
}

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

    /// Runs git isolated from the user's and the system's configuration; prints its output.
    fn git(&self, args: &[&str], who: Option<Who>) -> String {
        let mut cmd = Command::new("git");
        cmd.arg("-C").arg(&self.dir).args(args);
        cmd.env("HOME", self.home.path()).env("GIT_CONFIG_NOSYSTEM", "1").env("GIT_CONFIG_GLOBAL", "/dev/null");
        cmd.env_remove("GIT_DIR").env_remove("GIT_WORK_TREE");
        let w = who.unwrap_or(by("setup@example.org", "2000-01-01T00:00:00Z"));
        cmd.env("GIT_AUTHOR_NAME", w.name).env("GIT_AUTHOR_EMAIL", w.email).env("GIT_AUTHOR_DATE", w.authored);
        cmd.env("GIT_COMMITTER_NAME", "committer").env("GIT_COMMITTER_EMAIL", w.committer);
        cmd.env("GIT_COMMITTER_DATE", w.committed);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Changes (or creates) each file and commits; returns the commit's hash.
    fn commit(&mut self, who: Who, files: &[&str]) -> String {
        for f in files {
            self.serial += 1;
            let path = self.dir.join(f);
            let old = std::fs::read_to_string(&path).unwrap_or_default();
            std::fs::write(&path, format!("{old}change {}\n", self.serial)).unwrap();
        }
        self.git(&["add", "-A"], None);
        let msg = format!("commit {}", self.serial);
        self.git(&["commit", "-q", "--allow-empty", "-m", &msg], Some(who));
        self.git(&["rev-parse", "HEAD"], None)
    }
}

fn day(s: &str) -> chrono::NaiveDate {
    s.parse().unwrap()
}

/// January 2023.
fn args(repos: &[(&str, &Path)], issues: &[(&str, &Path)], method: MethodArg, out: &Path) -> Args {
    let named = |list: &[(&str, &Path)]| list.iter().map(|(n, p)| (n.to_string(), p.to_path_buf())).collect();
    Args {
        repos: named(repos),
        issues: named(issues),
        method,
        preset: None,
        ranges: Vec::new(),
        since: Some(day("2023-01-01")),
        until: Some(day("2023-01-31")),
        allow_empty: false,
        out: out.into(),
    }
}

/// alpha, January 2023. Thesis (committer date in [Jan 1 00:00:00, Jan 31 00:00:00]): 8
/// commits with the merge and the bot, 7 raw committer e-mails, 10 files / 8 = 1.25, rounded to
/// one. Corrected (all of January): 8 commits without merge and bot, 6 authors after .mailmap,
/// 11 files / 8 = 1.375.
struct Alpha {
    repo: Repo,
    /// The hashes of the 1st (root), 2nd and 7th (the merge) commits.
    root: String,
    second: String,
    merge: String,
}

fn alpha(dir: PathBuf) -> Alpha {
    let mut r = Repo::new(dir);
    // Configuration must not change the numbers: repo-metrics passes the options it relies on.
    r.git(&["config", "diff.renames", "false"], None);
    r.git(&["config", "log.mailmap", "true"], None);
    // One second before the window: neither method.
    let root = r.commit(by("old@example.org", "2022-12-31T23:59:59Z"), &["a.txt", "b.txt"]);
    // The first second; committed through GitHub's web interface (committer noreply@github.com).
    let web = Who {
        name: "Ann",
        email: "ann@example.org",
        committer: "noreply@github.com",
        ..by("", "2023-01-01T00:00:00Z")
    };
    let second = r.commit(web, &["a.txt", "b.txt", "c.txt"]);
    // Authored before the window, committed in it (the committer date decides); the same
    // author in other case, committing herself: one author, a second committer e-mail.
    let ann = Who { authored: "2022-12-01T00:00:00Z", ..by("ANN@Example.ORG", "2023-01-15T12:00:00+05:00") };
    r.commit(Who { committer: "ann@example.org", ..ann }, &["a.txt"]);
    // Ann's old address, mapped to her by .mailmap (for authors only, never the thesis'
    // committers), committed by herself under that address.
    std::fs::write(r.dir.join(".mailmap"), "Ann <ann@example.org> <ann.old@example.org>\n").unwrap();
    r.commit(by("ann.old@example.org", "2023-01-16T00:00:00Z"), &[]);
    r.git(&["checkout", "-q", "-b", "side"], None);
    r.commit(by("bob@example.org", "2023-01-20T00:00:00Z"), &["d.txt"]);
    r.git(&["checkout", "-q", "main"], None);
    r.commit(by("carl@example.org", "2023-01-21T00:00:00Z"), &["e.txt", "f.txt"]);
    // A merge: the thesis counts it (0 files, committer merger@), corrected does not.
    r.git(
        &["merge", "-q", "--no-ff", "-m", "merge side", "side"],
        Some(by("merger@example.org", "2023-01-22T00:00:00Z")),
    );
    let merge = r.git(&["rev-parse", "HEAD"], None);
    // A bot: counted by the thesis (committer noreply@github.com), listed and left out by corrected.
    let bot = "49699333+dependabot[bot]@users.noreply.github.com";
    let bot = Who { name: "dependabot[bot]", committer: "noreply@github.com", ..by(bot, "2023-01-25T00:00:00Z") };
    r.commit(bot, &["Cargo.lock"]);
    // The thesis' last second (pydriller's `to`, git's inclusive --until); a rename is one file.
    r.git(&["mv", "a.txt", "g.txt"], None);
    r.commit(by("dan@example.org", "2023-01-31T00:00:00Z"), &[]);
    // One second after the thesis' end, and the corrected window's last second.
    r.commit(by("eve@example.org", "2023-01-31T00:00:01Z"), &["h.txt"]);
    r.commit(by("fay@example.org", "2023-01-31T23:59:59Z"), &["i.txt"]);
    // One second after the corrected window; authored in it.
    r.commit(Who { authored: "2023-01-10T00:00:00Z", ..by("gus@example.org", "2023-02-01T00:00:00Z") }, &["j.txt"]);
    Alpha { repo: r, root, second, merge }
}

/// beta: 2 commits by 2 people, 1 file each.
fn beta(dir: PathBuf) -> Repo {
    let mut r = Repo::new(dir);
    r.commit(by("x@example.org", "2023-01-03T00:00:00Z"), &["x"]);
    r.commit(by("y@example.org", "2023-01-04T00:00:00Z"), &["y"]);
    r
}

/// gamma: 4 commits by 1 person, 3 files each.
fn gamma(dir: PathBuf) -> Repo {
    let mut r = Repo::new(dir);
    for d in ["2023-01-02", "2023-01-09", "2023-01-16", "2023-01-23"] {
        r.commit(by("solo@example.org", &format!("{d}T08:00:00Z")), &["p", "q", "r"]);
    }
    r
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn libs(report: &Report, method: Method) -> Vec<&repo_metrics::LibraryReport> {
    report.of(method).collect()
}

struct Setup {
    tmp: tempfile::TempDir,
    alpha: Alpha,
    repos: Vec<Repo>,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let alpha = alpha(tmp.path().join("alpha"));
    let repos = vec![beta(tmp.path().join("beta")), gamma(tmp.path().join("gamma"))];
    Setup { tmp, alpha, repos }
}

impl Setup {
    fn repos(&self) -> Vec<(&'static str, &Path)> {
        vec![("alpha", self.alpha.repo.dir.as_path()), ("beta", &self.repos[0].dir), ("gamma", &self.repos[1].dir)]
    }
    fn out(&self) -> PathBuf {
        self.tmp.path().join("out")
    }
}

/// (commits, merges, contributors, files per commit, bot commits) of each library.
fn activity(report: &Report, method: Method) -> Vec<(u64, u64, u64, f64, u64)> {
    libs(report, method)
        .iter()
        .map(|l| {
            let c = &l.commits;
            (c.commits, c.merges, c.contributors, c.files_per_commit, c.bot_commits)
        })
        .collect()
}

#[test]
fn both_methods_side_by_side() {
    let s = setup();
    let beta_issues = s.tmp.path().join("beta.json");
    std::fs::write(&beta_issues, "[]").unwrap();
    let issues = [("alpha", fixture("issues-alpha.json")), ("beta", beta_issues)];
    let issues: Vec<(&str, &Path)> = issues.iter().map(|(n, p)| (*n, p.as_path())).collect();
    let opts: Options = args(&s.repos(), &issues, MethodArg::Both, &s.out()).options().unwrap();
    let report = run(&opts).unwrap();
    assert_eq!(report.methods, [Method::Thesis, Method::Corrected]);
    let head = s.alpha.repo.git(&["rev-parse", "HEAD"], None);
    assert!(report.libraries.iter().filter(|l| l.name == "alpha").all(|l| l.head == head));

    // The thesis: merges and bots counted, raw committer e-mails, the window ends at Jan 31
    // 00:00:00 (included), files per commit rounded (10 / 8 = 1.25 -> 1).
    assert_eq!(activity(&report, Method::Thesis), [(8, 1, 7, 1.0, 0), (2, 0, 2, 1.0, 0), (4, 0, 1, 3.0, 0)]);
    // Corrected: no merges, no bots, authors through .mailmap, all of Jan 31, 11 / 8 files.
    assert_eq!(activity(&report, Method::Corrected), [(8, 1, 6, 1.375, 1), (2, 0, 2, 1.0, 0), (4, 0, 1, 3.0, 0)]);
    let alpha_c = libs(&report, Method::Corrected)[0];
    assert_eq!(alpha_c.commits.bots, ["49699333+dependabot[bot]@users.noreply.github.com"]);
    assert_eq!(libs(&report, Method::Thesis)[0].commits.files_over, "the window");

    // Tickets: the thesis lists #1-#5 (updated since Jan 1, created by Jan 31 00:00, the pull
    // request too), 4 closed when exported: 80 %, (21 + 10 + 1 + 39) / 4 = 17 whole days.
    let thesis = IssueStats { opened: 5, closed: 4, closed_percent: Some(80.0), mean_age_days: Some(17.0) };
    assert_eq!(libs(&report, Method::Thesis)[0].issues.as_ref(), Some(&thesis));
    let corrected = IssueStats { opened: 4, closed: 3, closed_percent: Some(50.0), mean_age_days: Some(10.5625) };
    assert_eq!(alpha_c.issues.as_ref(), Some(&corrected));
    let none = IssueStats { opened: 0, closed: 0, closed_percent: None, mean_age_days: None };
    assert_eq!(libs(&report, Method::Corrected)[1].issues.as_ref(), Some(&none));
    assert_eq!(libs(&report, Method::Thesis)[2].issues, None);
    assert_eq!(libs(&report, Method::Thesis)[2].tickets, "skipped: no --issues export");
    assert!(
        report.notes.iter().any(|n| n.contains("ticket metrics skipped: no --issues export for gamma")
            && n.ends_with("scores are averaged over commits, contributors, files_per_commit")),
        "{:?}",
        report.notes
    );

    // gamma has no ticket export: only activity is ranked. The thesis cuts commits (8, 2, 4)
    // at 2.67 and 6.67, contributors (7, 2, 1) at 1.33 and 5.33, files (1, 1, 3) at 1 and 2.33.
    use Metric::*;
    let t = |m: Method, i: usize| libs(&report, m)[i].tertiles.clone();
    let three = |a, b, c| BTreeMap::from([(Commits, a), (Contributors, b), (FilesPerCommit, c)]);
    assert_eq!(
        [t(Method::Thesis, 0), t(Method::Thesis, 1), t(Method::Thesis, 2)],
        [three(3, 3, 2), three(1, 2, 2), three(2, 1, 3)]
    );
    assert_eq!(
        [t(Method::Corrected, 0), t(Method::Corrected, 1), t(Method::Corrected, 2)],
        [three(3, 3, 2), three(1, 2, 1), three(2, 1, 3)]
    );
    let r2 = |v: [f64; 2]| v.map(|x| (x * 100.0).round() / 100.0);
    assert_eq!(r2(report.cut_points[&Commits]), [2.67, 6.67]);
    let scores = |m| libs(&report, m).iter().map(|l| l.score.unwrap()).collect::<Vec<_>>();
    assert_eq!(scores(Method::Thesis), [8.0 / 3.0, 5.0 / 3.0, 2.0]);
    assert_eq!(scores(Method::Corrected), [8.0 / 3.0, 4.0 / 3.0, 2.0]);
    assert_eq!(libs(&report, Method::Thesis)[0].score_over, [Commits, Contributors, FilesPerCommit]);

    // One line per differing value, saying why.
    let d = &report.differences;
    assert!(
        d.iter()
            .any(|l| l
                .starts_with("alpha contributors: thesis 7 vs corrected 6: the thesis counts distinct raw committer")),
        "{d:?}"
    );
    // 8 commits either way (the merge and the bot against the last day): no line.
    assert!(!d.iter().any(|l| l.starts_with("alpha commits:")), "{d:?}");
    assert!(d.iter().any(|l| l.starts_with("alpha issues_mean_age_days: thesis 17 vs corrected 10.5625")), "{d:?}");
    assert!(d.iter().any(|l| l.starts_with("beta tertiles:")), "{d:?}");
    assert!(!d.iter().any(|l| l.starts_with("gamma")), "{d:?}");

    let [csv, json, svg, html] = repo_metrics::report_files(&s.out());
    let mut csv = csv::Reader::from_path(csv).unwrap();
    let header: Vec<String> = csv.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header[..10],
        ["method", "library", "repo", "head", "window", "merges", "bot_commits", "bots", "files_over", "tickets"]
    );
    assert_eq!(header.last().unwrap(), "score_over");
    let rows: Vec<BTreeMap<String, String>> = csv.deserialize().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 6);
    let row = |i: usize, k: &str| rows[i][k].clone();
    assert_eq!([row(0, "method"), row(0, "library"), row(0, "head")], ["thesis", "alpha", head.as_str()]);
    assert_eq!([row(0, "commits"), row(0, "contributors"), row(0, "files_per_commit")], ["8", "7", "1"]);
    assert_eq!(row(0, "window"), "[2023-01-01T00:00:00Z, 2023-01-31T00:00:00Z]");
    assert_eq!(row(3, "window"), "[2023-01-01T00:00:00Z, 2023-02-01T00:00:00Z)");
    assert_eq!([row(3, "method"), row(3, "files_per_commit"), row(3, "bot_commits")], ["corrected", "1.375", "1"]);
    assert_eq!([row(0, "issues_closed_percent"), row(3, "issues_closed_percent")], ["80", "50"]);
    assert_eq!([row(2, "tickets"), row(2, "issues_opened"), row(2, "score")], ["skipped: no --issues export", "", "2"]);
    assert_eq!(row(4, "score_over"), "commits contributors files_per_commit");

    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(json["methods"], serde_json::json!(["thesis", "corrected"]));
    assert_eq!(json["libraries"][0]["method"], "thesis");
    assert_eq!(json["libraries"][0]["head"], head.as_str());
    assert_eq!(json["libraries"][3]["issues"]["mean_age_days"], 10.5625);
    assert!(json["tool"].as_str().unwrap().starts_with("repo-metrics "));
    assert!(json["differences"].as_array().unwrap().len() >= 5);

    assert!(json["scoring"]["thesis"]
        .as_str()
        .unwrap()
        .contains("the tertile rule and the equal-weight mean are this tool's reading"));
    assert!(json["scoring"]["corrected"].as_str().unwrap().starts_with("tertile by midrank percentile"));
    assert_eq!(json["libraries"][0]["commits"]["files_changed"], 10);

    // The page: both methods' tables side by side, every difference, the plot inline, nothing
    // fetched from elsewhere.
    let html = std::fs::read_to_string(html).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    let thesis_at = html.find("<h2>thesis method</h2>").expect("the thesis' table");
    let corrected_at = html.find("<h2>corrected method</h2>").expect("the corrected table");
    assert!(thesis_at < corrected_at && html[..thesis_at].contains("<div class=\"methods\">"));
    assert!(html.contains("<tr><td>commits</td><td>8 <small>T3</small></td><td>2 <small>T1</small></td>"));
    assert!(html.contains("<tr><td>files_per_commit</td><td>1.375 <small>T2</small></td>"));
    for line in &report.differences {
        let escaped = line.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
        assert!(html.contains(&format!("<li>{escaped}</li>")), "the page lacks {line:?}");
    }
    assert!(html.contains("Scoring: cut points") && html.contains("this tool's reading"));
    assert!(html.contains("<svg") && !html.contains("<?xml"));
    for external in ["<script", "src=", "href=", "@import", "url("] {
        assert!(!html.contains(external), "the page refers to something outside: {external}");
    }

    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
    for text in [
        "alpha",
        "gamma",
        "thesis method (left), corrected (right)",
        "commits (higher is better)",
        "issues_mean_age_days (lower is better)",
        "8, T3",
        "1.38, T2",
        "score: mean tertile",
    ] {
        assert!(svg.contains(text), "the plot lacks {text:?}");
    }
}

#[test]
fn files_per_commit_over_a_range_as_pydriller() {
    let tmp = tempfile::tempdir().unwrap();
    let a = alpha(tmp.path().join("alpha"));
    let out = tmp.path().join("out");
    let with_range = |from: &str, to: &str| {
        let mut a_args = args(&[("alpha", &a.repo.dir)], &[], MethodArg::Both, &out);
        a_args.ranges = vec![repo_metrics::parse_range(&format!("alpha={from}..{to}")).unwrap()];
        let report = collect(&a_args.options().unwrap()).unwrap();
        let [t, c] = [Method::Thesis, Method::Corrected].map(|m| libs(&report, m)[0].commits.clone());
        // The range is the thesis' only; corrected keeps the window.
        assert_eq!((c.files_per_commit, c.files_over.as_str()), (1.375, "the commits counted"));
        (t.files_per_commit, t.files_over)
    };
    // FROM included (its parent's history excluded), the merge counted with 0 files: 6 commits,
    // 3 + 1 + 1 + 1 + 2 + 0 = 8 files, 1.33 -> 1 (2 if the merge were left out).
    let r = with_range(&a.second, &a.merge);
    assert_eq!(r, (1.0, format!("range {}..{} (6 commits)", a.second, a.merge)));
    // From the root commit, as files_per_commit.py does: 7 commits, 10 files, 1.43 -> 1.
    let r = with_range(&a.root, "HEAD~5");
    assert_eq!(r, (1.0, format!("range {}..HEAD~5 (7 commits)", a.root)));
    // The merge alone.
    assert_eq!(with_range(&a.merge, &a.merge), (0.0, format!("range {0}..{0} (1 commits)", a.merge)));
    let mut bad = args(&[("alpha", &a.repo.dir)], &[], MethodArg::Thesis, &out);
    bad.ranges = vec![repo_metrics::parse_range("alpha=nosuch..HEAD").unwrap()];
    let e = format!("{:#}", collect(&bad.options().unwrap()).unwrap_err());
    assert!(e.contains("library alpha") && e.contains("commit nosuch of --range nosuch..HEAD"), "{e}");
}

/// delta, January 2023: the root adds a file and a symlink (2 files); the next turns the
/// symlink into a file and makes the file executable (pydriller: 3 files, the type change as a
/// deletion and a creation; corrected: 2); the last renames the file (1).
fn delta(dir: PathBuf) -> (Repo, [String; 3]) {
    let mut r = Repo::new(dir);
    std::fs::write(r.dir.join("a"), "a\n").unwrap();
    std::os::unix::fs::symlink("a", r.dir.join("link")).unwrap();
    let root = r.commit(by("x@example.org", "2023-01-02T00:00:00Z"), &[]);
    std::fs::remove_file(r.dir.join("link")).unwrap();
    std::fs::write(r.dir.join("link"), "now a file\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(r.dir.join("a"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let second = r.commit(by("x@example.org", "2023-01-03T00:00:00Z"), &[]);
    r.git(&["mv", "a", "b"], None);
    let third = r.commit(by("x@example.org", "2023-01-04T00:00:00Z"), &[]);
    (r, [root, second, third])
}

#[test]
fn files_are_counted_as_pydriller_and_ranges_ordered_as_it_does() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, [root, second, third]) = delta(tmp.path().join("delta"));
    let out = tmp.path().join("out");
    let measure = |range: Option<String>| {
        let mut a = args(&[("delta", &d.dir)], &[], MethodArg::Both, &out);
        a.ranges = range.iter().map(|r| repo_metrics::parse_range(&format!("delta={r}")).unwrap()).collect();
        let report = collect(&a.options().unwrap()).unwrap();
        let [t, c] = [Method::Thesis, Method::Corrected].map(|m| libs(&report, m)[0].commits.clone());
        (t.files_changed, t.files_per_commit, c.files_changed, c.files_per_commit)
    };
    // Over the window: 6 files / 3 = 2 (thesis), 5 / 3 (corrected).
    assert_eq!(measure(None), (6, 2.0, 5, 5.0 / 3.0));
    // From the root, as files_per_commit.py: the same 3 commits.
    assert_eq!(measure(Some(format!("{root}..{third}"))).0, 6);
    // pydriller swaps FROM and TO when FROM is the newer commit.
    assert_eq!(measure(Some(format!("{third}..{root}"))).0, 6);
    assert_eq!(measure(Some(format!("{third}..{second}"))).0, 4);
    assert_eq!(measure(Some(format!("{second}..{second}"))).0, 3);
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
        r#"[{"created_at":"2023-01-02T00:00:00Z","closed_at":"2023-01-03T00:00:00Z",
             "updated_at":"2023-01-03T00:00:00Z","state":"closed"},
            {"created_at":"2023-01-05T00:00:00Z","closed_at":"2023-01-06T00:00:00Z",
             "updated_at":"2023-01-06T00:00:00Z","state":"closed"}]"#,
    );
    let gamma = write(
        "gamma.json",
        r#"[[{"created_at":"2023-01-29T00:00:00Z","closed_at":null,
              "updated_at":"2023-01-29T00:00:00Z","state":"open"}]]"#,
    );
    let alpha = fixture("issues-alpha.json");
    let opts = args(&s.repos(), &[("alpha", &alpha), ("beta", &beta), ("gamma", &gamma)], MethodArg::Both, &s.out())
        .options()
        .unwrap();
    let report = collect(&opts).unwrap();
    assert!(!s.out().exists(), "collect writes nothing");
    assert!(report.notes.is_empty(), "{:?}", report.notes);

    use Metric::*;
    let issue_tertiles = |m, lib: usize| {
        let t = &libs(&report, m)[lib].tertiles;
        [IssuesOpened, IssuesClosed, IssuesClosedPercent, IssuesMeanAgeDays].map(|k| t.get(&k).copied())
    };
    assert_eq!(issue_tertiles(Method::Corrected, 0), [3, 3, 2, 1].map(Some));
    assert_eq!(issue_tertiles(Method::Corrected, 1), [2, 2, 3, 3].map(Some));
    assert_eq!(issue_tertiles(Method::Corrected, 2), [1, 1, 1, 2].map(Some));
    // Thesis: opened (5, 2, 1), closed (4, 2, 0), closed % (80, 100, 0); gamma's mean age is
    // undefined (no closed ticket: the script would fail), so that metric is not ranked.
    assert_eq!(issue_tertiles(Method::Thesis, 0), [Some(3), Some(3), Some(2), None]);
    assert_eq!(issue_tertiles(Method::Thesis, 1), [Some(2), Some(2), Some(3), None]);
    assert_eq!(issue_tertiles(Method::Thesis, 2), [Some(1), Some(1), Some(1), None]);
    let scores: Vec<f64> = libs(&report, Method::Corrected).iter().map(|l| l.score.unwrap()).collect();
    assert_eq!(scores, [17.0 / 7.0, 14.0 / 7.0, 11.0 / 7.0]);
    assert_eq!(libs(&report, Method::Thesis)[0].score_over.len(), 6);
}

#[test]
fn errors_name_the_library_and_the_cause() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let plain = tmp.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    let err = |repos: &[(&str, &Path)], issues: &[(&str, &Path)]| {
        format!("{:#}", collect(&args(repos, issues, MethodArg::Both, &out).options().unwrap()).unwrap_err())
    };

    let e = err(&[("plain", &plain)], &[]);
    assert!(e.contains(&format!("library plain ({})", plain.display())) && e.contains("not a git repository"), "{e}");
    let missing = tmp.path().join("missing");
    let e = err(&[("gone", &missing)], &[]);
    assert!(e.contains("library gone") && e.contains("is not a directory"), "{e}");

    let b = beta(tmp.path().join("beta"));
    // A directory inside a repository: git would measure the enclosing repository.
    let sub = b.dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let e = err(&[("sub", &sub)], &[]);
    assert!(e.contains("is inside the repository") && e.contains("not its top"), "{e}");

    let shallow = tmp.path().join("shallow");
    let url = format!("file://{}", b.dir.display());
    b.git(&["clone", "-q", "--depth", "1", &url, shallow.to_str().unwrap()], None);
    let e = err(&[("shallow", &shallow)], &[]);
    assert!(e.contains("shallow clone") && e.contains("--unshallow"), "{e}");

    // A bare repository is measured as it is.
    let bare = tmp.path().join("bare.git");
    b.git(&["clone", "-q", "--bare", &url, bare.to_str().unwrap()], None);
    let report = collect(&args(&[("bare", &bare)], &[], MethodArg::Both, &out).options().unwrap()).unwrap();
    assert!(report.libraries.iter().all(|l| l.commits.commits == 2));

    let e = err(&[("beta", &b.dir)], &[("beta", &tmp.path().join("nope.json"))]);
    assert!(e.contains("library beta") && e.contains("nope.json"), "{e}");
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, r#"[{"number": 9, "created_at": "2023-13-01T00:00:00Z"}]"#).unwrap();
    let e = err(&[("beta", &b.dir)], &[("beta", &bad)]);
    assert!(e.contains("bad.json") && e.contains("issue #9") && e.contains("created_at"), "{e}");
    // The thesis' definitions need the export's update times and states.
    std::fs::write(&bad, r#"[{"number": 9, "created_at": "2023-01-01T00:00:00Z", "closed_at": null}]"#).unwrap();
    let e = err(&[("beta", &b.dir)], &[("beta", &bad)]);
    assert!(e.contains("library beta, thesis method") && e.contains("`updated_at` and `state`"), "{e}");
}

#[test]
fn command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let b = beta(tmp.path().join("beta"));
    let g = gamma(tmp.path().join("gamma"));
    let out = tmp.path().join("out");
    let exe = env!("CARGO_BIN_EXE_repo-metrics");
    let repo = |name: &str, r: &Repo| format!("{name}={}", r.dir.display());
    let cmd = |extra: &[&str]| {
        let o = Command::new(exe)
            .args(["--repo", &repo("beta", &b), "--repo", &repo("gamma", &g), "--out"])
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = cmd(&["--since", "2023-01-01", "--until", "2023-01-31"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("corrected beta: 2 commits, 2 contributors, 1.00 files/commit, score 1.67"), "{stdout}");
    assert!(!stdout.contains("thesis"), "corrected is the default: {stdout}");
    assert!(stderr.contains("ticket metrics skipped: no --issues export for beta, gamma"), "{stderr}");
    assert!(repo_metrics::report_files(&out).iter().all(|f| f.is_file()));

    // An empty window: written, warned, and a failure unless --allow-empty. With the thesis'
    // definitions, --until 2023-01-02 ends at its 00:00:00, before anyone's first commit.
    let empty = ["--method", "thesis", "--since", "2023-01-01", "--until", "2023-01-02"];
    let (code, stdout, stderr) = cmd(&empty);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stderr
            .contains("warning: thesis: no commit of beta in the window [2023-01-01T00:00:00Z, 2023-01-02T00:00:00Z]"),
        "{stderr}"
    );
    assert!(stderr.contains("--allow-empty"), "{stderr}");
    assert!(stdout.contains("thesis beta: 0 commits"), "{stdout}");
    let (code, _, stderr) = cmd(&[&empty[..], &["--allow-empty"]].concat());
    assert_eq!(code, Some(0), "{stderr}");
    // Corrected includes all of Jan 2, gamma's first commit (08:00) too.
    let (code, stdout, _) = cmd(&["--method", "both", "--since", "2023-01-01", "--until", "2023-01-02"]);
    assert_eq!(code, Some(1));
    let line = "differs: gamma commits: thesis 0 vs corrected 1: the thesis counts merges (0) and ends at \
                2023-01-02 00:00:00 UTC; corrected leaves out merges (0) and bot commits (0) and includes the rest of \
                2023-01-02 (+1 commits of any kind)";
    assert!(stdout.contains(line), "{stdout}");
    assert!(stdout.contains("scoring (thesis): cut points statistics.quantiles(values, n=3)"), "{stdout}");
    assert!(stdout.contains("scoring (corrected): tertile by midrank percentile"), "{stdout}");

    let (code, _, stderr) = cmd(&["--since", "2023-01-01"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--until"), "{stderr}");
    let (code, _, stderr) = cmd(&["--since", "2023-02-30", "--until", "2023-03-01"]);
    assert_eq!(code, Some(2), "{stderr}");
    let (code, _, stderr) = cmd(&["--since", "2023-01-01", "--until", "2023-01-31", "--issues", "aya=x.json"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no --repo is named `aya`"), "{stderr}");
    let (code, _, stderr) = cmd(&["--preset", "thesis"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("the preset has no library `beta`"), "{stderr}");
    let (code, _, stderr) = cmd(&["--since", "2023-01-01", "--until", "2023-01-31", "--range", "beta=HEAD"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("expected NAME=FROM..TO"), "{stderr}");
}

#[test]
fn a_lone_library() {
    let tmp = tempfile::tempdir().unwrap();
    let g = gamma(tmp.path().join("gamma"));
    let out = tmp.path().join("out");
    let report = run(&args(&[("gamma", &g.dir)], &[], MethodArg::Both, &out).options().unwrap()).unwrap();
    // Corrected: the middle tertile. Thesis: statistics.quantiles needs two values; nothing ranked.
    let corrected = libs(&report, Method::Corrected)[0];
    assert!(corrected.tertiles.values().all(|&t| t == 2));
    assert_eq!(corrected.score, Some(2.0));
    let thesis = libs(&report, Method::Thesis)[0];
    assert!(thesis.tertiles.is_empty() && thesis.score.is_none());
    assert!(std::fs::read_to_string(out.join(repo_metrics::SVG_FILE)).unwrap().contains("gamma"));
}
