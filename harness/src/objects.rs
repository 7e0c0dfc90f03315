//! The built BPF kernel objects of every implementation, found without asking the library: ELF
//! files with machine type EM_BPF that a package's build script left in its `OUT_DIR`
//! (`<target>/release/build/<package>-<hash>/out/`), where aya-build, libbpf-cargo and RedBPF's
//! build script (impls/redbpf/build_support.rs) all put them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context as _, Result};

use crate::libs::{Build, LIBS};

/// `e_machine` of a BPF object (include/uapi/linux/elf-em.h).
pub const EM_BPF: u16 = 247;

/// One kernel object of one implementation.
#[derive(Debug, Clone)]
pub struct KernelObject {
    pub usecase: String,
    pub lib: String,
    pub path: PathBuf,
}

/// Whether `path` is an ELF file for EM_BPF.
pub fn is_bpf_elf(path: &Path) -> bool {
    let mut head = [0u8; 20];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .map(|()| &head[..4] == b"\x7fELF" && u16::from_le_bytes([head[18], head[19]]) == EM_BPF)
        .unwrap_or(false)
}

/// The BPF objects `package`'s build script left in `<release>/build/<package>-<hash>/out/`,
/// the newest per file name (an older build of other features or flags may leave a stale
/// directory behind). Only files directly in `out/` (and `out/gen/`, bpf2go's): build scripts keep intermediates
/// (RedBPF's `kernel-target/`, aya-build's target directory) in subdirectories. Empty if none.
pub fn in_build_output(release: &Path, package: &str) -> Result<Vec<PathBuf>> {
    let build = release.join("build");
    let Ok(dirs) = std::fs::read_dir(&build) else { return Ok(Vec::new()) };
    let mut newest: BTreeMap<std::ffi::OsString, (SystemTime, PathBuf)> = BTreeMap::new();
    for dir in dirs.flatten() {
        let name = dir.file_name();
        // `<package>-<hash>` exactly: `packetfilter-aya-kernel-<hash>` is another package.
        let is_ours = name
            .to_str()
            .and_then(|n| n.strip_prefix(package)?.strip_prefix('-'))
            .is_some_and(|hash| !hash.is_empty() && hash.bytes().all(|b| b.is_ascii_hexdigit()));
        if !is_ours {
            continue;
        }
        // `out/`, and `out/gen/` where cilium/ebpf's bpf2go leaves the object beside its bindings.
        let files = ["out", "out/gen"].iter().filter_map(|d| std::fs::read_dir(dir.path().join(d)).ok()).flatten();
        for file in files.flatten() {
            let (path, meta) = (file.path(), file.metadata()?);
            if !meta.is_file() || !is_bpf_elf(&path) {
                continue;
            }
            let modified = meta.modified()?;
            let slot = newest.entry(file.file_name()).or_insert((modified, path.clone()));
            if modified > slot.0 {
                *slot = (modified, path);
            }
        }
    }
    Ok(newest.into_values().map(|(_, path)| path).collect())
}

/// The `release` directories an implementation's package may build into: the root workspace's,
/// and a library's own workspace's (a hybrid like lsmbpf-redbpf is a root-workspace package).
fn release_dirs(workspace: &Path, lib: &str) -> Vec<PathBuf> {
    let mut dirs = vec![workspace.join("target/release")];
    if let Some(Build::OwnWorkspace { dir }) = crate::libs::by_name(lib).map(|l| l.build) {
        dirs.push(workspace.join(dir).join("target/release"));
    }
    dirs
}

/// The kernel objects of one implementation; an error naming it if there are none.
pub fn of_implementation(workspace: &Path, usecase: &str, lib: &str) -> Result<Vec<KernelObject>> {
    let package = format!("{usecase}-{lib}");
    let mut found = Vec::new();
    for release in release_dirs(workspace, lib) {
        found.extend(in_build_output(&release, &package)?);
    }
    if found.is_empty() {
        bail!("no BPF object (ELF, EM_BPF) of {package} in the build output of {:?}: build it first", release_dirs(workspace, lib));
    }
    Ok(found.into_iter().map(|path| KernelObject { usecase: usecase.into(), lib: lib.into(), path }).collect())
}

/// The kernel objects of every implementation in the workspace (every `impls/<lib>/<usecase>`
/// with a Cargo.toml). Fails naming each implementation whose objects are missing.
pub fn all(workspace: &Path) -> Result<Vec<KernelObject>> {
    let mut objects = Vec::new();
    let mut missing = Vec::new();
    for usecase in crate::usecases::NAMES {
        for lib in LIBS {
            if !lib.source_dir(workspace, usecase).join("Cargo.toml").exists() {
                continue;
            }
            match of_implementation(workspace, usecase, lib.name) {
                Ok(found) => objects.extend(found),
                Err(e) => missing.push(format!("{e:#}")),
            }
        }
    }
    if !missing.is_empty() {
        bail!("kernel objects missing:\n  {}", missing.join("\n  "));
    }
    Ok(objects)
}

/// Disassembles `object` with `llvm-objdump -dr` (relocations inline).
pub fn disassemble(object: &Path) -> Result<String> {
    let out = std::process::Command::new("llvm-objdump")
        .arg("-dr")
        .arg(object)
        .output()
        .context("running llvm-objdump (Debian package llvm)")?;
    if !out.status.success() {
        bail!("llvm-objdump -dr {}: {}", object.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Out-of-line memory routines: LLVM emits calls to them for copies and fills it does not expand
/// inline, and the BPF backend then calls a byte-wise loop (compiler_builtins') per use.
pub const MEM_ROUTINES: &[&str] = &["memset", "memcpy", "memmove", "memcmp", "bcmp"];

/// Whether a symbol is one of [`MEM_ROUTINES`], plain or as a Rust path
/// (`compiler_builtins::mem::memset`, mangled or not).
pub fn is_mem_routine(symbol: &str) -> bool {
    let base = symbol.trim_start_matches('_');
    MEM_ROUTINES.iter().any(|m| {
        base == *m
            || symbol.contains(&format!("::{m}"))
            || symbol.contains(&format!("{}{m}", m.len()))
            || base.starts_with(&format!("{m}."))
    })
}

/// Where an object calls a memory routine: `function: calls routine` lines, empty if nowhere.
/// Recognizes BPF-to-BPF calls (`call` with source register 1) by their relocation symbol or,
/// when the linker resolved them, by the function defined at the target address. A routine
/// that is only defined is not a use: bpf-linker keeps compiler_builtins' exported memcpy,
/// memset, ... in every Aya object's `.text`, and loaders load only the functions a program
/// calls.
pub fn mem_routine_uses(disassembly: &str) -> Vec<String> {
    struct Call {
        function: String,
        insn: u64,
        imm: i64,
        reloc: Option<String>,
    }
    let mut labels: BTreeMap<(String, u64), String> = BTreeMap::new();
    let (mut section, mut function) = (String::new(), String::new());
    let mut calls: Vec<(String, Call)> = Vec::new();
    let mut uses = Vec::new();
    for line in disassembly.lines() {
        if let Some(name) = line.strip_prefix("Disassembly of section ") {
            section = name.trim_end_matches(':').to_string();
            continue;
        }
        // `0000000000000000 <name>:`
        if let Some((addr, rest)) = line.split_once(" <") {
            if let (Ok(addr), Some(name)) = (u64::from_str_radix(addr.trim(), 16), rest.strip_suffix(">:")) {
                function = name.to_string();
                labels.insert((section.clone(), addr / 8), function.clone());
                continue;
            }
        }
        let trimmed = line.trim_start();
        // A relocation line under the instruction it patches, at its byte offset:
        // `0000000000000008:  R_BPF_64_32  memset`.
        if trimmed.contains("R_BPF_") {
            if let (Some((_, call)), Some(symbol)) = (calls.last_mut(), trimmed.split_whitespace().last()) {
                if call.reloc.is_none() && trimmed.starts_with(&format!("{:016x}:", call.insn * 8)) {
                    call.reloc = Some(symbol.to_string());
                }
            }
            continue;
        }
        // `      10:	85 10 00 00 ff ff ff ff	call -1`: the instruction's index, in decimal.
        let Some((index, rest)) = trimmed.split_once(':') else { continue };
        let Ok(index) = index.parse::<u64>() else { continue };
        let bytes: Vec<u8> = rest.split_whitespace().take(8).filter_map(|b| u8::from_str_radix(b, 16).ok()).collect();
        if bytes.len() == 8 && bytes[0] == 0x85 && bytes[1] >> 4 == 1 {
            let imm = i32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as i64;
            calls.push((section.clone(), Call { function: function.clone(), insn: index, imm, reloc: None }));
        }
    }
    for (section, call) in calls {
        let target = match call.reloc {
            Some(symbol) => symbol,
            None => {
                let at = (call.insn as i64 + 1 + call.imm) as u64;
                labels.get(&(section, at)).cloned().unwrap_or_default()
            }
        };
        if is_mem_routine(&target) {
            uses.push(format!("{}: calls {target}", call.function));
        }
    }
    uses
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_mem_routines() {
        for s in ["memset", "__memcpy", "_ZN17compiler_builtins3mem6memset17h0123456789abcdefE", "compiler_builtins::mem::memmove"] {
            assert!(is_mem_routine(s), "{s}");
        }
        for s in ["bpf_probe_read_kernel", "classify", "memory", ".text"] {
            assert!(!is_mem_routine(s), "{s}");
        }
    }

    #[test]
    fn finds_resolved_and_relocated_calls() {
        let text = "\
Disassembly of section xdp:

0000000000000000 <prog>:
       0:	85 10 00 00 03 00 00 00	call 3
       1:	85 00 00 00 01 00 00 00	call 1
       2:	85 10 00 00 ff ff ff ff	call -1
		0000000000000010:  R_BPF_64_32	memcpy
       3:	95 00 00 00 00 00 00 00	exit

0000000000000020 <memset>:
       4:	95 00 00 00 00 00 00 00	exit
";
        let uses = mem_routine_uses(text);
        assert_eq!(uses, ["prog: calls memset", "prog: calls memcpy"], "{uses:?}");
    }
}
