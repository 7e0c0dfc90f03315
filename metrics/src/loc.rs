//! Lines of code of one implementation, by one rule for every library: the files its user would
//! have to write, wherever they live, each counted in one category, with tokei (code lines only:
//! no comments, no blank lines).
//!
//! The files are the implementation's directory plus every file of this repository its build
//! compiled (cargo's dep-info, so a file borrowed from another library through `#[path]` counts
//! where it is used) plus the patches to the library it declares. Each file's category comes
//! from its path relative to the repository ([`classify`]):
//! - **kernel**: the kernel program (`kernel/`, `*.bpf.c`);
//! - **types**: the ABI shared by kernel and loader (`types/`, a C header next to the kernel
//!   program, and the map-value encoders of `impls/shared/src/<usecase>/abi.rs`);
//! - **loader**: the user-space program;
//! - **build**: build scripts, manifests, Makefiles, a library's build-support crate;
//! - **patches**: patches to the library and code that works around what it lacks (RedBPF's
//!   `patches/` and `ext/`); a patch counts its added lines;
//! - **glue**: the tool glue every library shares (CLI, config, lifecycle in `impls/shared`), and
//!   what connects a library to it from another language or toolchain (RedBPF's bridge, the FFI
//!   shims of the C loaders in a `glue/` directory): not the library's cost, shown on its own row.
//!
//! Prose (Markdown, plain text, AsciiDoc) and data (YAML, JSON) are not code. Generated sources
//! (`vmlinux.h`, libbpf skeletons) and build output are skipped.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use anyhow::{ensure, Context, Result};
use serde::{Deserialize, Serialize};
use tokei::{Config, LanguageType, Languages};

use crate::record::Row;

/// Never counted: build output, vendored and patched trees (a patch counts instead), generated code.
const IGNORED: &[&str] = &["target", "vendor", "patched", "vmlinux.h", "*.skel.rs"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    Kernel,
    Types,
    Loader,
    Build,
    Patches,
    Glue,
}

impl Part {
    pub const ALL: [Part; 6] = [Part::Kernel, Part::Types, Part::Loader, Part::Build, Part::Patches, Part::Glue];

    pub fn metric(self) -> &'static str {
        match self {
            Part::Kernel => "loc_kernel",
            Part::Types => "loc_types",
            Part::Loader => "loc_loader",
            Part::Build => "loc_build",
            Part::Patches => "loc_patches",
            Part::Glue => "loc_glue",
        }
    }
}

/// Which category a file belongs to, by its path relative to the repository.
pub fn classify(rel: &Path) -> Part {
    let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let s = rel.to_string_lossy();
    if s.starts_with("impls/shared/") {
        if name == "abi.rs" { Part::Types } else { Part::Glue }
    } else if s.starts_with("impls/redbpf/shared/") || matches!(name, "glue.rs" | "glue.go") {
        // glue.rs/glue.go: the C ABI between a Go library's loader and the shared Rust lifecycle.
        Part::Glue
    } else if has_dir(rel, "patches") || has_dir(rel, "ext") || name.ends_with(".patch") {
        Part::Patches
    } else if matches!(name, "build.rs" | "build_support.rs" | "Makefile" | "makefile" | "GNUmakefile" | "Cargo.toml")
        || name.ends_with(".mk")
        || has_dir(rel, "build-support")
    {
        Part::Build
    } else if has_dir(rel, "glue") {
        Part::Glue
    } else if has_dir(rel, "types") || (has_dir(rel, "kernel") && name.ends_with(".h") && !name.ends_with(".bpf.h")) {
        Part::Types
    } else if has_dir(rel, "kernel") || name.ends_with(".bpf.c") || name.ends_with(".bpf.h") {
        Part::Kernel
    } else {
        Part::Loader
    }
}

fn has_dir(rel: &Path, dir: &str) -> bool {
    rel.parent().is_some_and(|p| p.components().any(|c| c == Component::Normal(dir.as_ref())))
}

/// Code lines per category.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loc {
    pub kernel: usize,
    pub types: usize,
    pub loader: usize,
    pub build: usize,
    pub patches: usize,
    pub glue: usize,
    /// Every file counted, relative to the repository, with its category and lines.
    #[serde(default)]
    pub files: Vec<(String, String, usize)>,
}

impl Loc {
    pub fn get(&self, part: Part) -> usize {
        match part {
            Part::Kernel => self.kernel,
            Part::Types => self.types,
            Part::Loader => self.loader,
            Part::Build => self.build,
            Part::Patches => self.patches,
            Part::Glue => self.glue,
        }
    }

    /// What the library costs its user: everything but the shared tool glue.
    pub fn library_total(&self) -> usize {
        self.kernel + self.types + self.loader + self.build + self.patches
    }

    /// One `loc_*` row per category and `loc_total` (the library's, glue excluded); single shot.
    pub fn rows(&self, usecase: &str, lib: &str) -> Vec<Row> {
        Part::ALL
            .iter()
            .map(|p| (p.metric(), self.get(*p)))
            .chain([("loc_total", self.library_total())])
            .map(|(metric, n)| Row::new(usecase, lib, metric, "lines", 1, n as f64))
            .collect()
    }

    fn add(&mut self, rel: &Path, code: usize) {
        let part = classify(rel);
        match part {
            Part::Kernel => self.kernel += code,
            Part::Types => self.types += code,
            Part::Loader => self.loader += code,
            Part::Build => self.build += code,
            Part::Patches => self.patches += code,
            Part::Glue => self.glue += code,
        }
        self.files.push((rel.display().to_string(), part.metric().trim_start_matches("loc_").to_string(), code));
    }
}

/// Documentation (literate formats like Markdown, plain text) and data files (example
/// configurations in YAML or JSON) are not code anyone had to write to use the library.
fn is_code(lang: LanguageType) -> bool {
    !(lang.is_literate() || matches!(lang, LanguageType::AsciiDoc | LanguageType::Yaml | LanguageType::Json))
}

/// The repository files a cargo dep-info file (`target/release/<bin>.d`) lists: every local
/// source the binary and its build scripts compiled, `#[path]` includes too.
pub fn dep_info(path: &Path, repo: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut files = BTreeSet::new();
    for line in text.lines() {
        let Some((_, deps)) = line.split_once(": ") else { continue };
        // Paths are separated by spaces; a space inside a path is escaped.
        let deps = deps.replace("\\ ", "\u{0}");
        for dep in deps.split_whitespace() {
            let dep = PathBuf::from(dep.replace('\u{0}', " "));
            if let Ok(rel) = dep.strip_prefix(repo) {
                if dep.is_file() && !rel.components().any(|c| IGNORED.iter().any(|i| c == Component::Normal(i.as_ref()))) {
                    files.insert(dep);
                }
            }
        }
    }
    Ok(files.into_iter().collect())
}

/// Counts the files of `dir` and `extra` (deduplicated), classified relative to `repo`; a
/// `.patch` counts the lines it adds. Honours `.gitignore` like tokei's CLI does.
pub fn count(repo: &Path, dir: &Path, extra: &[PathBuf]) -> Result<Loc> {
    ensure!(dir.is_dir(), "{} is not a directory", dir.display());
    let (patches, sources): (Vec<&PathBuf>, Vec<&PathBuf>) =
        extra.iter().partition(|p| p.extension().is_some_and(|e| e == "patch"));
    let mut paths: Vec<&Path> = vec![dir];
    paths.extend(sources.iter().map(|p| p.as_path()).filter(|p| !p.starts_with(dir)));
    let mut languages = Languages::new();
    // Config::default, not the user's tokei.toml: counts must not depend on who runs them.
    languages.get_statistics(&paths, IGNORED, &Config::default());
    let mut seen = BTreeSet::new();
    let mut loc = Loc::default();
    for (lang, language) in languages.iter() {
        if !is_code(*lang) {
            continue;
        }
        for report in &language.reports {
            let rel = report.name.strip_prefix(repo).unwrap_or(&report.name).to_path_buf();
            if seen.insert(rel.clone()) {
                loc.add(&rel, report.stats.summarise().code);
            }
        }
    }
    for patch in patches {
        let text = std::fs::read_to_string(patch).with_context(|| format!("reading {}", patch.display()))?;
        let added = text
            .lines()
            .filter(|l| l.starts_with('+') && !l.starts_with("+++") && !l[1..].trim().is_empty())
            .count();
        loc.add(patch.strip_prefix(repo).unwrap_or(patch), added);
    }
    loc.files.sort();
    Ok(loc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn classifier() {
        let c = |p: &str| classify(Path::new(p));
        assert_eq!(c("impls/aya/packetfilter/kernel/src/main.rs"), Part::Kernel);
        // The C kernel programs the C-kernel libraries share.
        assert_eq!(c("impls/kernel/packetfilter/packetfilter.bpf.c"), Part::Kernel);
        assert_eq!(c("impls/kernel/packetfilter/packetfilter.h"), Part::Types);
        assert_eq!(c("impls/aya/packetfilter/types/src/lib.rs"), Part::Types);
        assert_eq!(c("impls/shared/src/packetfilter/abi.rs"), Part::Types);
        assert_eq!(c("impls/shared/src/packetfilter/run.rs"), Part::Glue);
        assert_eq!(c("impls/cilium-ebpf/packetfilter/src/glue.rs"), Part::Glue);
        assert_eq!(c("impls/cilium-ebpf/common/glue.go"), Part::Glue);
        assert_eq!(c("impls/cilium-ebpf/packetfilter/packetfilter.go"), Part::Loader);
        assert_eq!(c("impls/redbpf/shared/lifecycle/src/lib.rs"), Part::Glue);
        // A C loader (libbpf): the C is the loader, its FFI shim to the shared lifecycle glue.
        assert_eq!(c("impls/libbpf/packetfilter/packetfilter.c"), Part::Loader);
        assert_eq!(c("impls/libbpf/common/helpers.c"), Part::Loader);
        assert_eq!(c("impls/libbpf/packetfilter/glue/main.rs"), Part::Glue);
        assert_eq!(c("impls/libbpf/glue/src/lib.rs"), Part::Glue);
        assert_eq!(c("impls/libbpf/glue/Cargo.toml"), Part::Build);
        assert_eq!(c("impls/aya/packetfilter/kernel/Cargo.toml"), Part::Build);
        assert_eq!(c("impls/aya/build-support/src/lib.rs"), Part::Build);
        assert_eq!(c("impls/redbpf/build_support.rs"), Part::Build);
        assert_eq!(c("impls/redbpf/patches/0001-x.patch"), Part::Patches);
        assert_eq!(c("impls/redbpf/ext/src/lib.rs"), Part::Patches);
        assert_eq!(c("impls/aya/packetfilter/src/main.rs"), Part::Loader);
        // A file merely named like the directory is not in it.
        assert_eq!(c("impls/aya/packetfilter/src/kernel"), Part::Loader);
    }

    #[test]
    fn counts_borrowed_files_where_used_and_patches_by_added_lines() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        let imp = repo.join("impls/lib/uc");
        // 3 code lines, 1 comment, 1 blank.
        write(&imp, "src/main.rs", "// loader\nfn main() {\n\n    run();\n}\n");
        // Kernel: 2 lines of C, plus a 2-line header shared with the loader (types).
        write(&imp, "kernel/uc.bpf.c", "#include \"uc.h\"\n\nint x;\n// c\n");
        write(&imp, "kernel/uc.h", "struct a;\nstruct b;\n");
        // Build glue: 2 + 2 + 1.
        write(&imp, "build.rs", "fn main() {\n}\n");
        write(&imp, "Cargo.toml", "[package]\nname = \"x\"\n# comment\n");
        write(&imp, "Makefile", "all:\n");
        // Borrowed from another library (types), shared glue, a patch adding 2 lines.
        write(repo, "impls/other/uc/types/src/lib.rs", "#[repr(C)]\npub struct Key(u32);\n");
        write(repo, "impls/shared/src/cli.rs", "pub fn cli() {}\n");
        write(repo, "impls/lib/patches/0001.patch", "--- a/x\n+++ b/x\n@@ -1 +1,2 @@\n-old\n+new\n+more\n+\n");
        // Not counted: prose, data, generated code, build output.
        write(&imp, "README.md", "# Title\n\ntext\n");
        write(&imp, "config.example.yml", "iface: veth0\n");
        write(&imp, "kernel/vmlinux.h", "struct a;\nstruct b;\n");
        write(&imp, "target/debug/build/out.rs", "fn generated() {}\n");
        let extra: Vec<PathBuf> = ["impls/other/uc/types/src/lib.rs", "impls/shared/src/cli.rs", "impls/lib/patches/0001.patch", "impls/lib/uc/src/main.rs"]
            .iter()
            .map(|p| repo.join(p))
            .collect();
        let loc = count(repo, &imp, &extra).unwrap();
        assert_eq!(
            (loc.kernel, loc.types, loc.loader, loc.build, loc.patches, loc.glue),
            (2, 4, 3, 5, 2, 1),
            "{:?}",
            loc.files
        );
        assert_eq!(loc.library_total(), 16);
        let rows = loc.rows("uc", "lib");
        assert_eq!(rows.len(), 7);
        assert!(rows.iter().any(|r| r.metric == "loc_total" && r.value == 16.0));
    }

    #[test]
    fn reads_cargo_dep_info() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        write(repo, "a/src/main.rs", "fn main() {}\n");
        write(repo, "b c/lib.rs", "\n");
        write(repo, "target/gen.rs", "\n");
        let d = format!(
            "{r}/target/release/x: {r}/a/src/main.rs {r}/b\\ c/lib.rs {r}/target/gen.rs /elsewhere/lib.rs\n",
            r = repo.display()
        );
        write(repo, "x.d", &d);
        let files = dep_info(&repo.join("x.d"), repo).unwrap();
        assert_eq!(files, vec![repo.join("a/src/main.rs"), repo.join("b c/lib.rs")]);
    }

    #[test]
    fn missing_directory_is_an_error() {
        assert!(count(Path::new("/"), Path::new("/nonexistent/impl"), &[]).is_err());
    }
}
