//! The build script of every libbpf-rs implementation `impls/libbpf-rs/<usecase>/`: compiles
//! the C kernel program every C-kernel library shares, `impls/kernel/<usecase>/<usecase>.bpf.c`,
//! with clang into `$OUT_DIR/<usecase>.bpf.o` (kept there so the harness can measure it) and
//! generates the skeleton `$OUT_DIR/<usecase>.skel.rs`. The libbpf (C) implementations compile
//! their object here too ([`build_object`]), so both load the very same program.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use libbpf_cargo::SkeletonBuilder;

/// Where the program's kernel types come from.
pub enum Headers {
    /// The UAPI headers of linux-libc-dev (`<linux/bpf.h>`, ...): enough for XDP and TC.
    Uapi,
    /// A `vmlinux.h` dumped from this machine's BTF into `$OUT_DIR` (never committed): for
    /// programs that read kernel structs, which CO-RE relocates against the running kernel.
    Vmlinux,
}

const BTF: &str = "/sys/kernel/btf/vmlinux";

/// Call from `build.rs`; panics (failing the build) with the reason.
pub fn build_skeleton(headers: Headers) {
    let (usecase, out_dir) = (usecase(), out_dir());
    let src = build_object(headers);
    SkeletonBuilder::new()
        .obj(out_dir.join(format!("{usecase}.bpf.o")))
        .generate(out_dir.join(format!("{usecase}.skel.rs")))
        .unwrap_or_else(|e| panic!("generating the BPF skeleton of {}: {e:#}", src.display()));
}

/// Compiles the use case's shared C kernel program into `$OUT_DIR/<usecase>.bpf.o` as
/// libbpf-cargo does (clang -g -O2 -target bpf with libbpf's headers, then libbpf's linker,
/// which drops the DWARF): also the object of the libbpf (C) implementations. Returns the source.
pub fn build_object(headers: Headers) -> PathBuf {
    let (usecase, out_dir) = (usecase(), out_dir());
    let include = match headers {
        // `-target bpf` drops clang's multiarch include dir, where Debian keeps <asm/types.h>.
        Headers::Uapi => {
            let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
            format!("-I/usr/include/{arch}-linux-gnu")
        }
        Headers::Vmlinux => {
            write_vmlinux_h(&out_dir);
            println!("cargo:rerun-if-changed={BTF}");
            format!("-I{}", out_dir.display())
        }
    };
    let kernel = kernel_dir(&usecase);
    let src = kernel.join(format!("{usecase}.bpf.c"));
    // libbpf's own headers (<bpf/bpf_helpers.h>) come with libbpf-cargo.
    SkeletonBuilder::new()
        .source(&src)
        .obj(out_dir.join(format!("{usecase}.bpf.o")))
        .clang_args([include.as_str(), "-Wall", "-Werror"])
        .build()
        .unwrap_or_else(|e| panic!("compiling {}: {e:#}", src.display()));
    // File by file, not the directory: cargo's dep-info then lists them, which is where the
    // harness finds the files an implementation's build compiled (its lines of code).
    for file in [&src, &kernel.join(format!("{usecase}.h"))] {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    src
}

fn out_dir() -> PathBuf {
    PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
}

/// The use case of the package being built, `impls/<lib>/<usecase>`.
pub fn usecase() -> String {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    manifest.file_name().expect("packages live in impls/<lib>/<usecase>").to_string_lossy().into_owned()
}

/// `impls/kernel/<usecase>/`: the kernel program and its header, shared by the C-kernel libraries.
fn kernel_dir(usecase: &str) -> PathBuf {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    // The package is impls/<lib>/<usecase>; no `..` in the path, or dep-info would carry it.
    let impls = manifest.parent().and_then(Path::parent).expect("packages live in impls/<lib>/<usecase>");
    impls.join("kernel").join(usecase)
}

fn write_vmlinux_h(out_dir: &Path) {
    let dump = Command::new("bpftool")
        .args(["btf", "dump", "file", BTF, "format", "c"])
        .output()
        .unwrap_or_else(|e| panic!("running bpftool (`make setup` installs it): {e}"));
    assert!(dump.status.success(), "bpftool btf dump file {BTF}: {}", String::from_utf8_lossy(&dump.stderr));
    std::fs::write(out_dir.join("vmlinux.h"), &dump.stdout).expect("writing vmlinux.h to OUT_DIR");
}
