//! Lines of code of one implementation directory, split into kernel side, user side and build
//! glue, counted with tokei (code lines only: no comments, no blank lines).
//!
//! The classifier works on the path relative to the implementation directory:
//! - build glue: `build.rs`, `Makefile`, `Cargo.toml`, `*.mk` (first, so `kernel/Cargo.toml` is glue);
//! - kernel: anything under a `kernel/` directory, and `*.bpf.c` / `*.bpf.h`;
//! - user: every other code file. Files under `types/` (shared by both sides) count as user
//!   and are also reported on their own as `loc_types`.
//!
//! Prose (Markdown, plain text, AsciiDoc) and data (YAML, JSON) are not code. Generated sources
//! (`vmlinux.h`, libbpf skeletons) and build output are skipped: they would swamp what people
//! actually wrote.

use std::path::{Component, Path};

use anyhow::{ensure, Result};
use serde::{Deserialize, Serialize};
use tokei::{Config, LanguageType, Languages};

use crate::record::Row;

/// Never counted: build output and generated code.
const IGNORED: &[&str] = &["target", "vmlinux.h", "*.skel.rs"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Kernel,
    User,
    Build,
}

/// Which part a file belongs to, by its path relative to the implementation directory.
pub fn classify(rel: &Path) -> Part {
    let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if matches!(
        name,
        "build.rs" | "Makefile" | "makefile" | "GNUmakefile" | "Cargo.toml"
    ) || name.ends_with(".mk")
    {
        Part::Build
    } else if has_dir(rel, "kernel") || name.ends_with(".bpf.c") || name.ends_with(".bpf.h") {
        Part::Kernel
    } else {
        Part::User
    }
}

fn has_dir(rel: &Path, dir: &str) -> bool {
    rel.parent()
        .is_some_and(|p| p.components().any(|c| c == Component::Normal(dir.as_ref())))
}

/// Code lines per part. `types` is a subset of `user`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loc {
    pub kernel: usize,
    pub user: usize,
    pub build: usize,
    pub types: usize,
}

impl Loc {
    /// The four `loc_*` rows of one implementation (single shot: rep 1).
    pub fn rows(&self, usecase: &str, lib: &str) -> Vec<Row> {
        [
            ("loc_kernel", self.kernel),
            ("loc_user", self.user),
            ("loc_build", self.build),
            ("loc_types", self.types),
        ]
        .into_iter()
        .map(|(metric, n)| Row::new(usecase, lib, metric, "lines", 1, n as f64))
        .collect()
    }

    fn add(&mut self, rel: &Path, code: usize) {
        match classify(rel) {
            Part::Kernel => self.kernel += code,
            Part::Build => self.build += code,
            Part::User => {
                self.user += code;
                if has_dir(rel, "types") {
                    self.types += code;
                }
            }
        }
    }
}

/// Documentation (literate formats like Markdown, plain text) and data files (example
/// configurations in YAML or JSON) are not code anyone had to write to use the library.
fn is_code(lang: LanguageType) -> bool {
    !(lang.is_literate()
        || matches!(
            lang,
            LanguageType::AsciiDoc | LanguageType::Yaml | LanguageType::Json
        ))
}

/// Counts the implementation in `dir`. Honours `.gitignore` like tokei's CLI does.
pub fn count(dir: &Path) -> Result<Loc> {
    ensure!(dir.is_dir(), "{} is not a directory", dir.display());
    let mut languages = Languages::new();
    // Config::default, not the user's tokei.toml: counts must not depend on who runs them.
    languages.get_statistics(&[dir], IGNORED, &Config::default());
    let mut loc = Loc::default();
    for (lang, language) in languages.iter() {
        if !is_code(*lang) {
            continue;
        }
        for report in &language.reports {
            let rel = report.name.strip_prefix(dir).unwrap_or(&report.name);
            loc.add(rel, report.stats.summarise().code);
        }
    }
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
        assert_eq!(classify(Path::new("kernel/src/main.rs")), Part::Kernel);
        assert_eq!(classify(Path::new("src/bpf/filter.bpf.c")), Part::Kernel);
        assert_eq!(classify(Path::new("src/bpf/maps.bpf.h")), Part::Kernel);
        assert_eq!(classify(Path::new("kernel/Cargo.toml")), Part::Build);
        assert_eq!(classify(Path::new("build.rs")), Part::Build);
        assert_eq!(classify(Path::new("bpf/rules.mk")), Part::Build);
        assert_eq!(classify(Path::new("types/src/lib.rs")), Part::User);
        // A file merely named like the directory is not in it.
        assert_eq!(classify(Path::new("src/kernel")), Part::User);
    }

    #[test]
    fn splits_a_fixture_implementation() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // 3 code lines, 1 comment, 1 blank.
        write(
            root,
            "src/main.rs",
            "// loader\nfn main() {\n\n    run();\n}\n",
        );
        // 2 code lines under types/, also user.
        write(
            root,
            "types/src/lib.rs",
            "#[repr(C)]\npub struct Key(u32);\n",
        );
        // Kernel: 2 lines in the Aya-style crate, 3 in a libbpf-style C file.
        write(
            root,
            "kernel/src/main.rs",
            "#![no_std]\n/* xdp */\nfn prog() {}\n",
        );
        write(
            root,
            "src/bpf/filter.bpf.c",
            "#include \"vmlinux.h\"\n\nint x;\n// c\nint y;\n",
        );
        // Build glue: 2 + 2 + 1 (+ the kernel crate's manifest, 1).
        write(root, "build.rs", "fn main() {\n}\n");
        write(root, "Cargo.toml", "[package]\nname = \"x\"\n# comment\n");
        write(root, "Makefile", "all:\n");
        write(root, "kernel/Cargo.toml", "[package]\n");
        // Not counted: prose, data, generated code, build output.
        write(
            root,
            "README.md",
            "# Title\n\ntext\n\n```rust\nfn f() {}\n```\n",
        );
        write(root, "config.example.yml", "iface: veth0\nrules: []\n");
        write(root, "src/bpf/vmlinux.h", "struct a;\nstruct b;\n");
        write(root, "target/debug/build/out.rs", "fn generated() {}\n");

        let loc = count(root).unwrap();
        assert_eq!(
            loc,
            Loc {
                kernel: 5,
                user: 5,
                build: 6,
                types: 2
            }
        );
        let rows = loc.rows("packetfilter", "aya");
        assert_eq!(rows.len(), 4);
        assert!(rows
            .iter()
            .any(|r| r.metric == "loc_types" && r.value == 2.0 && r.unit == "lines"));
    }

    #[test]
    fn missing_directory_is_an_error() {
        assert!(count(Path::new("/nonexistent/impl")).is_err());
    }
}
