//! Every external command the harness, the tests and the implementations execute is installed by
//! `scripts/setup.sh`: found by scanning the Rust sources for the places that start a process,
//! resolved on this machine and traced to its Debian package with `dpkg -S`. The package must be
//! in `scripts/apt-packages` or Essential (on every Debian); a command from no package (rustup's,
//! cargo's) must be named by a set-up script. A fresh machine otherwise fails on the first test
//! that runs the missing command (as `ping` once did).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() {
            // Generated and vendored trees are not ours.
            if !matches!(name.as_str(), "target" | "vendor" | "patched" | ".git") {
                sources(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// The string literal right after `pat` on `line`, if `pat` is followed by one.
fn literal_after<'a>(line: &'a str, pat: &str) -> Vec<&'a str> {
    line.match_indices(pat)
        .filter_map(|(i, _)| {
            let rest = line[i + pat.len()..].trim_start().strip_prefix('"')?;
            rest.split('"').next()
        })
        .collect()
}

/// Commands a source file starts, with the line they appear on.
fn commands_in(text: &str) -> Vec<(String, usize)> {
    // Calls whose first argument is the program: std's Command and the harness's helpers around it
    // (netns exec, the VM guest's carry, doctor and fingerprint probes).
    const STARTERS: [&str; 7] =
        ["Command::new(", ".exec(", "which(", ".carry(", " cmd(", "run_cmd(", " output("];
    // Wrappers that run their first plain argument as a program.
    const WRAPPERS: [&str; 2] = ["nsenter", "timeout"];
    let mut found = Vec::new();
    let mut wrapped = false;
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        for pat in STARTERS {
            for c in literal_after(line, pat) {
                found.push((c.to_string(), n + 1));
                wrapped |= WRAPPERS.contains(&c);
            }
        }
        if wrapped {
            if let Some(c) = literal_after(line, ".arg(").into_iter().find(|a| !a.starts_with('-')) {
                found.push((c.to_string(), n + 1));
                wrapped = false;
            }
        }
        // Programs named by absolute path (guest tools, busybox).
        for lit in line.split('"').skip(1).step_by(2) {
            if ["/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/"].iter().any(|d| lit.starts_with(d)) && !lit.contains(' ') {
                found.push((lit.to_string(), n + 1));
            }
        }
    }
    found.dedup();
    found.into_iter().filter(|(c, _)| !c.is_empty() && !c.contains(['{', '$'])).collect()
}

/// Every file on the search path that `cmd` names, in search order (a machine may shadow a
/// package's command with its own, as this machine kind does with git in /usr/local/bin).
fn locate(cmd: &str) -> Vec<PathBuf> {
    if cmd.starts_with('/') {
        return Path::new(cmd).exists().then(|| PathBuf::from(cmd)).into_iter().collect();
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let path = std::env::var("PATH").unwrap_or_default();
    let mut found: Vec<PathBuf> = path
        .split(':')
        .map(PathBuf::from)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .chain([Path::new(&home).join(".cargo/bin")])
        .map(|d| d.join(cmd))
        .filter(|p| p.is_file())
        .collect();
    found.dedup();
    found
}

/// The Debian package that owns `path` (trying the path as found and with symlinks resolved, and
/// the /usr-merged twin of /bin and /sbin).
fn owner(path: &Path) -> Option<String> {
    let mut tries = vec![path.to_path_buf()];
    if let Ok(real) = path.canonicalize() {
        tries.push(real);
    }
    for p in tries.clone() {
        let s = p.to_string_lossy().to_string();
        if let Some(rest) = s.strip_prefix("/usr") {
            tries.push(PathBuf::from(rest));
        } else {
            tries.push(PathBuf::from(format!("/usr{s}")));
        }
    }
    tries.iter().find_map(|p| {
        let out = Command::new("dpkg").arg("-S").arg(p).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        // `diversion by dash from: /bin/sh` lines name no owner; `dash: /bin/sh` does.
        let owner = text.lines().find(|l| !l.starts_with("diversion by"))?.split(':').next()?.trim().to_string();
        out.status.success().then_some(owner)
    })
}

fn essential(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Essential}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "yes")
        .unwrap_or(false)
}

fn setup_packages(root: &Path) -> BTreeSet<String> {
    let list = std::fs::read_to_string(root.join("scripts/apt-packages")).expect("scripts/apt-packages");
    list.lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .filter(|l| !l.is_empty())
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

#[test]
fn the_scanner_finds_commands_in_every_form() {
    let src = r#"
        let a = Command::new("bpftool").arg("x");
        ns.exec("ping", &["-c", "1"])?;
        let t = which("tc")?;
        guest.carry("/usr/bin/cpio")?;
        // Command::new("commented-out")
        let o = Command::new("nsenter")
            .arg(format!("--net=/x"))
            .arg("xdp-filter");
        const BUSYBOX: &str = "/bin/busybox";
        let s = Command::new(program);
    "#;
    let found: Vec<String> = commands_in(src).into_iter().map(|(c, _)| c).collect();
    assert_eq!(found, ["bpftool", "ping", "tc", "/usr/bin/cpio", "nsenter", "xdp-filter", "/bin/busybox"]);
}

#[test]
fn every_executed_command_is_installed_by_setup() {
    let root = root();
    let mut files = Vec::new();
    for dir in ["harness", "impls", "metrics", "scripts"] {
        sources(&root.join(dir), &mut files);
    }
    let mut commands: BTreeMap<String, String> = BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        // This file's own examples are not commands.
        if file.ends_with("setup_commands.rs") {
            continue;
        }
        for (cmd, line) in commands_in(&text) {
            let at = format!("{}:{line}", file.strip_prefix(&root).unwrap().display());
            commands.entry(cmd).or_insert(at);
        }
    }
    assert!(commands.len() > 15, "the scan found too few commands to be working: {commands:?}");

    let packages = setup_packages(&root);
    let setup_text = ["scripts/setup.sh", "impls/redbpf/setup.sh"]
        .map(|f| std::fs::read_to_string(root.join(f)).unwrap())
        .join("\n");
    let mut problems = Vec::new();
    for (cmd, at) in &commands {
        let paths = locate(cmd);
        if paths.is_empty() {
            problems.push(format!("{cmd} (run at {at}): not on this machine, so set-up did not install it"));
            continue;
        }
        // Installed by set-up if any copy on the search path is: a fresh machine has that one.
        let owners: Vec<(PathBuf, Option<String>)> = paths.into_iter().map(|p| { let o = owner(&p); (p, o) }).collect();
        let by_setup = owners.iter().any(|(path, pkg)| match pkg {
            Some(pkg) => packages.contains(pkg) || essential(pkg),
            None => setup_text.contains(path.file_name().unwrap().to_string_lossy().as_ref()) && path.starts_with(
                Path::new(&std::env::var("HOME").unwrap_or_default()).join(".cargo/bin"),
            ),
        });
        if !by_setup {
            let from: Vec<String> = owners
                .iter()
                .map(|(p, o)| format!("{} ({})", p.display(), o.as_deref().unwrap_or("no package")))
                .collect();
            problems.push(format!(
                "{cmd} (run at {at}): {} — neither in scripts/apt-packages, nor Essential, nor installed into ~/.cargo/bin by a set-up script",
                from.join(", ")
            ));
        }
    }
    assert!(problems.is_empty(), "commands set-up does not install:\n  {}", problems.join("\n  "));
}

#[test]
fn the_readme_lists_every_package() {
    let root = root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let missing: Vec<String> =
        setup_packages(&root).into_iter().filter(|p| !readme.contains(p.as_str())).collect();
    assert!(missing.is_empty(), "README.md does not list these packages of scripts/apt-packages: {missing:?}");
}
