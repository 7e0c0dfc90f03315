//! The build script of every cilium/ebpf implementation `impls/cilium-ebpf/<usecase>/`:
//! 1. bpf2go (cmd/bpf2go of the same cilium/ebpf) compiles the C kernel program every C-kernel
//!    library shares, `impls/kernel/<usecase>/<usecase>.bpf.c`, with clang and the flags
//!    libbpf-rs uses, and generates its Go bindings, both into `$OUT_DIR/gen`;
//! 2. `go build -buildmode=c-archive` builds the Go loader `<usecase>.go` (with the bindings laid
//!    into its directory by `-overlay`, so nothing is generated into the source tree) into
//!    `$OUT_DIR/lib<usecase>_go.a`, which the Rust binary links.
//!
//! Go and the Go modules are Debian's, unpacked by `impls/cilium-ebpf/setup.sh`; the build runs
//! offline. Go's build cache lives in the cargo target directory, so a cold cargo build is a cold
//! Go build too.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the program's kernel types come from.
pub enum Headers {
    /// The UAPI headers of linux-libc-dev: enough for XDP and TC.
    Uapi,
    /// A `vmlinux.h` dumped from this machine's BTF into `$OUT_DIR` (never committed): for
    /// programs that read kernel structs, which CO-RE relocates against the running kernel.
    Vmlinux,
}

const BTF: &str = "/sys/kernel/btf/vmlinux";

fn env_path(name: &str) -> PathBuf {
    PathBuf::from(env::var_os(name).unwrap_or_else(|| panic!("cargo sets {name}")))
}

/// Call from `build.rs`; panics (failing the build) with the reason.
pub fn build(headers: Headers) {
    let out_dir = env_path("OUT_DIR");
    let manifest = env_path("CARGO_MANIFEST_DIR");
    let loader = env::var("CARGO_PKG_NAME").expect("cargo sets CARGO_PKG_NAME");
    let usecase = loader.strip_suffix("-cilium-ebpf").expect("packages are named <usecase>-cilium-ebpf");
    // The package is impls/cilium-ebpf/<usecase>; no `..` in paths, or dep-info would carry it.
    let module = manifest.parent().expect("packages live in impls/cilium-ebpf/<usecase>");
    let impls = module.parent().expect("packages live in impls/cilium-ebpf/<usecase>");
    let root = impls.parent().expect("impls/ is in the repository");
    let kernel = impls.join("kernel").join(usecase);
    let go = go_binary(root);

    let include = out_dir.join("include");
    std::fs::create_dir_all(include.join("bpf")).expect("creating $OUT_DIR/include/bpf");
    for (name, text) in libbpf_sys::API_HEADERS {
        std::fs::write(include.join("bpf").join(name), text).expect("writing libbpf's headers");
    }
    // libbpf-cargo's flags (-g -O2 -target bpf -fno-stack-protector -D__TARGET_ARCH_<arch>) and
    // ours for libbpf-rs: the object must be the one libbpf-rs loads. bpf2go adds -O2, -g, and
    // -mcpu=v1, which -mcpu=generic overrides (clang's default, v1 on clang 14, newer later).
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    let kernel_arch = match arch.as_str() {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        other => other,
    };
    let mut cflags = vec![
        "-mcpu=generic".to_string(),
        "-fno-stack-protector".into(),
        format!("-D__TARGET_ARCH_{kernel_arch}"),
        "-Wall".into(),
        "-Werror".into(),
        format!("-I{}", include.display()),
    ];
    match headers {
        // `-target bpf` drops clang's multiarch include dir, where Debian keeps <asm/types.h>.
        Headers::Uapi => cflags.push(format!("-I/usr/include/{arch}-linux-gnu")),
        Headers::Vmlinux => {
            write_vmlinux_h(&include);
            println!("cargo:rerun-if-changed={BTF}");
        }
    }

    // -no-strip keeps the object as libbpf-cargo leaves it (the harness strips DWARF itself).
    let gen = out_dir.join("gen");
    std::fs::create_dir_all(&gen).expect("creating $OUT_DIR/gen");
    let src = kernel.join(format!("{usecase}.bpf.c"));
    run(go_command(&go, module, &out_dir).args(["run", "github.com/cilium/ebpf/cmd/bpf2go", "-go-package", "main"])
        .arg("-output-dir")
        .arg(&gen)
        .args(["-target", "bpfel", "-no-strip", "-cc", "clang", "-cflags", &cflags.join(" "), usecase])
        .arg(&src));

    // The generated files appear in the loader's package directory through -overlay.
    let pkg = module.join(usecase);
    let replace: Vec<String> = ["go", "o"]
        .iter()
        .map(|ext| {
            let name = format!("{usecase}_bpfel.{ext}");
            format!("{:?}: {:?}", pkg.join(&name).display().to_string(), gen.join(&name).display().to_string())
        })
        .collect();
    let overlay = out_dir.join("overlay.json");
    std::fs::write(&overlay, format!("{{\"Replace\": {{{}}}}}", replace.join(", "))).expect("writing overlay.json");
    let archive = out_dir.join(format!("lib{usecase}_go.a"));
    // netgo/osusergo: no libc resolver or user lookups, which a static archive would drag in.
    run(go_command(&go, module, &out_dir)
        .args(["build", "-buildmode=c-archive", "-trimpath", "-tags", "netgo,osusergo"])
        .arg(format!("-overlay={}", overlay.display()))
        .arg("-o")
        .arg(&archive)
        .arg(format!("./{usecase}")));

    println!("cargo:rustc-link-search=native={}", out_dir.display());
    println!("cargo:rustc-link-lib=static={usecase}_go");
    // File by file: cargo's dep-info then lists them, which is where the harness finds the files
    // an implementation's build compiled (its lines of code).
    let mut inputs = vec![src, kernel.join(format!("{usecase}.h")), module.join("go.mod"), module.join("debs.lock")];
    for dir in [pkg, module.join("common")] {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
            let path = entry.expect("listing a directory").path();
            if path.extension().is_some_and(|e| e == "go" || e == "h") {
                inputs.push(path);
            }
        }
    }
    for file in inputs {
        println!("cargo:rerun-if-changed={}", file.display());
    }
}

/// Debian's Go as `impls/cilium-ebpf/setup.sh` unpacked it.
fn go_binary(root: &Path) -> PathBuf {
    let lib = root.join("target/cilium-ebpf/root/usr/lib");
    let found = std::fs::read_dir(&lib)
        .ok()
        .and_then(|d| d.filter_map(|e| e.ok()).map(|e| e.path().join("bin/go")).find(|p| p.is_file()));
    found.unwrap_or_else(|| panic!("no Go under {}: run scripts/setup.sh (impls/cilium-ebpf/setup.sh)", lib.display()))
}

/// `go` in the module, offline, with its caches in the cargo target directory.
fn go_command(go: &Path, module: &Path, out_dir: &Path) -> Command {
    // OUT_DIR is <target>/<profile>/build/<package>-<hash>/out.
    let target = out_dir.ancestors().nth(4).expect("OUT_DIR is inside the target directory");
    let mut cmd = Command::new(go);
    cmd.current_dir(module)
        .env("GOCACHE", target.join("go-build"))
        .env("GOPATH", target.join("go"))
        .env("GOFLAGS", "-mod=readonly")
        .envs([("GOPROXY", "off"), ("GOSUMDB", "off"), ("GOTOOLCHAIN", "local"), ("GOWORK", "off")])
        .envs([("GOENV", "off"), ("GOTELEMETRY", "off"), ("CGO_ENABLED", "1")])
        .env_remove("GOROOT");
    cmd
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    if !out.status.success() {
        panic!("{cmd:?} failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
}

fn write_vmlinux_h(include: &Path) {
    let dump = Command::new("bpftool")
        .args(["btf", "dump", "file", BTF, "format", "c"])
        .output()
        .unwrap_or_else(|e| panic!("running bpftool (`make setup` installs it): {e}"));
    assert!(dump.status.success(), "bpftool btf dump file {BTF}: {}", String::from_utf8_lossy(&dump.stderr));
    std::fs::write(include.join("vmlinux.h"), &dump.stdout).expect("writing vmlinux.h to OUT_DIR");
}
