//! The VM guest runner: runs a shell script as root inside Debian's 6.1 kernel under qemu TCG,
//! for what the host kernel cannot do (BPF LSM, fq/netem qdiscs, kernel modules; see
//! `shared/docs/ENVIRONMENT.md`).
//!
//! # Use
//!
//! ```no_run
//! use std::time::Duration;
//! use harness::vm::Guest;
//!
//! let out = Guest::new()
//!     .carry("/usr/sbin/tc")?                      // + its ldd libraries and the dynamic loader
//!     .carry_as("target/impls/jittergen-aya", "/usr/local/bin/jittergen-aya")?
//!     .file("/etc/jittergen.yml", "outIf: veth0\n", 0o644)
//!     .module("sch_fq")?                            // + its modules.dep dependencies, insmod-ed in order
//!     .module("veth")?
//!     .timeout(Duration::from_secs(120))
//!     .run("/usr/local/bin/tc qdisc add dev lo root fq && echo ok")?;
//! out.success()?;                                   // exit code 0, else an error with stderr and console
//! assert_eq!(out.stdout.trim(), "ok");
//! # anyhow::Ok(())
//! ```
//!
//! * [`Guest::carry`] puts a host executable at `/usr/local/bin/<name>` (first in `PATH`),
//!   [`Guest::carry_as`] at a path of your choice; a dynamically linked one brings the libraries
//!   `ldd` lists, at the same paths as on the host, and the dynamic loader. busybox `sh` runs its
//!   own applet for names like `ip` or `tc` before anything in `PATH`: call carried tools that
//!   share a name with an applet by their full path.
//! * [`Guest::module`] takes a module name (`veth`, `sch_netem`, `bridge`, ...) from
//!   `/lib/modules/<guest kernel>`; `/init` loads it and its dependencies before the script. A
//!   module that fails to load is a setup failure (an `Err` from [`Guest::run`]), not a script
//!   exit code.
//! * [`Guest::run`] boots, runs `script` with busybox `sh` (as `/run.sh`, working directory `/`)
//!   and returns a [`GuestOutput`]: the script's exit code, its stdout and stderr (each on its own
//!   serial port, so kernel messages never mix in) and the console (kernel log and `/init`). The
//!   exit code is whatever the script returned: check it with [`GuestOutput::success`].
//! * A guest that crashed (kernel panic, oops — `oops=panic` makes it a panic), hung past the
//!   timeout, or powered off without the exit marker is an `Err` naming the cause, with the end
//!   of the console. Never a pass.
//!
//! # What the guest has
//! Kernel: Debian's `linux-image-amd64` (6.1, `CONFIG_BPF_LSM=y`), booted with
//! `lsm=lockdown,capability,landlock,yama,apparmor,bpf` ([`Guest::lsm`] changes it), one CPU
//! ([`Guest::cpus`]), 1 GiB ([`Guest::memory_mb`]), no network device. `/init` mounts proc,
//! sysfs, devtmpfs, devpts, securityfs, bpffs (`/sys/fs/bpf`), tracefs (`/sys/kernel/tracing`),
//! debugfs, tmpfs on `/tmp` and `/run` (`/var/run` -> `/run`), brings `lo` up, and loads the
//! modules. busybox-static provides the shell and the usual tools. When the script ends, every
//! process it left is killed, its output is flushed and the guest powers off.
//! Timing inside TCG is emulated: use the guest for behaviour, and for performance only as
//! ratios measured in the same guest.
//!
//! # Costs and cleanliness
//! The uncompressed kernel is extracted once from `/boot/vmlinuz-<ver>` into
//! `<workspace>/target/vm/` (`$BPFEVAL_VM_CACHE` overrides), keyed by version and size; the
//! busybox part of the initramfs is built once per process. A run costs about 2 s of boot plus
//! what the script does. Nothing is written to disk per run: the initramfs and the serial
//! outputs are memfds that qemu opens through `/proc/<pid>/fd`. qemu runs under the timeout, is
//! killed and reaped when the run ends or unwinds (a guard's `Drop`), and gets SIGKILL from the
//! kernel if the calling thread dies first (`PR_SET_PDEATHSIG`). Guests may run in parallel.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};

/// Overrides where the extracted kernel is cached.
pub const CACHE_ENV: &str = "BPFEVAL_VM_CACHE";

/// The default `lsm=` list: Debian's, with `bpf` (without it an LSM program attaches and never runs).
pub const DEFAULT_LSM: &str = "lockdown,capability,landlock,yama,apparmor,bpf";

const BUSYBOX: &str = "/bin/busybox";
const MARKER: &str = "BPFEVAL-GUEST";

/// A guest to boot: what goes into its initramfs, and how qemu runs it.
#[derive(Debug, Clone)]
pub struct Guest {
    files: Vec<Entry>,
    /// Module files, relative to `/lib/modules/<ver>`, dependencies first.
    modules: Vec<String>,
    timeout: Duration,
    memory_mb: u32,
    cpus: u32,
    lsm: String,
    /// An unpacked kernel package (`scripts/fetch-kernels.sh`); `None`: the installed 6.1.
    kernel_dir: Option<PathBuf>,
}

#[derive(Debug, Clone)]
struct Entry {
    path: String,
    mode: u32,
    data: Source,
}

#[derive(Debug, Clone)]
enum Source {
    Host(PathBuf),
    Bytes(Vec<u8>),
}

/// What a guest run produced.
#[derive(Debug, Clone)]
pub struct GuestOutput {
    /// The script's exit code.
    pub exit_code: i32,
    /// The script's stdout.
    pub stdout: String,
    /// The script's stderr.
    pub stderr: String,
    /// The serial console: kernel messages and `/init`'s own.
    pub console: String,
    /// Wall time from starting qemu to its exit.
    pub elapsed: Duration,
}

impl GuestOutput {
    /// The lines of stdout that are JSON objects (`{…}`), parsed: how the guest programs report,
    /// one object per result, among whatever else they print.
    pub fn json_lines<T: serde::de::DeserializeOwned>(&self) -> Result<Vec<T>> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).with_context(|| format!("guest line {l}")))
            .collect()
    }

    /// `self` if the script exited 0, else an error with its exit code, stderr and console tail.
    pub fn success(&self) -> Result<&GuestOutput> {
        ensure!(
            self.exit_code == 0,
            "guest script exited {}\n--- stderr ---\n{}\n--- console (end) ---\n{}",
            self.exit_code,
            self.stderr.trim_end(),
            tail(&self.console, 30)
        );
        Ok(self)
    }
}

impl Default for Guest {
    fn default() -> Self {
        Guest::new()
    }
}

/// Where [`Guest::carry`] puts the executable `host` in the guest.
pub fn carried_path(host: &Path) -> Result<String> {
    let name = host.file_name().and_then(|n| n.to_str()).with_context(|| format!("{}: no file name", host.display()))?;
    Ok(format!("/usr/local/bin/{name}"))
}

impl Guest {
    pub fn new() -> Guest {
        Guest {
            files: Vec::new(),
            modules: Vec::new(),
            timeout: Duration::from_secs(180),
            memory_mb: 1024,
            cpus: 1,
            lsm: DEFAULT_LSM.into(),
            kernel_dir: None,
        }
    }

    /// Carries the executable `host` to [`carried_path`] (`/usr/local/bin/<its file name>`),
    /// with its libraries.
    pub fn carry(self, host: impl AsRef<Path>) -> Result<Guest> {
        let guest = carried_path(host.as_ref())?;
        self.carry_as(host, &guest)
    }

    /// Carries the executable `host` to `guest` (an absolute path), with its libraries.
    pub fn carry_as(mut self, host: impl AsRef<Path>, guest: &str) -> Result<Guest> {
        let host = host.as_ref();
        ensure!(guest.starts_with('/'), "guest path {guest:?} is not absolute");
        let meta = std::fs::metadata(host).with_context(|| format!("carrying {} into the guest", host.display()))?;
        ensure!(meta.is_file(), "carrying {}: not a file", host.display());
        for lib in shared_libraries(host)? {
            let path = lib.to_str().context("library path is not UTF-8")?.to_string();
            if !self.has(&path) {
                self.files.push(Entry { path, mode: 0o755, data: Source::Host(lib) });
            }
        }
        self.files.push(Entry { path: guest.into(), mode: 0o755, data: Source::Host(host.into()) });
        Ok(self)
    }

    /// Puts `contents` at `guest` (an absolute path) with `mode`.
    pub fn file(mut self, guest: &str, contents: impl Into<Vec<u8>>, mode: u32) -> Guest {
        self.files.push(Entry { path: guest.into(), mode, data: Source::Bytes(contents.into()) });
        self
    }

    /// Boots the kernel unpacked in `dir` (a Debian image package with `boot/vmlinuz-*` or
    /// `lib/modules/<ver>/vmlinuz`, and `lib/modules/<ver>/modules.dep`) instead of the installed
    /// 6.1. Call it before [`Guest::module`].
    pub fn kernel(mut self, dir: impl Into<PathBuf>) -> Guest {
        self.kernel_dir = Some(dir.into());
        self
    }

    /// The guest kernel's version (`uname -r`).
    pub fn kernel_version(&self) -> Result<String> {
        Ok(kernel(self.kernel_dir.as_deref())?.version.clone())
    }

    /// Loads kernel module `name` (`-`/`_` alike) and its dependencies before the script runs.
    pub fn module(mut self, name: &str) -> Result<Guest> {
        let kernel = kernel(self.kernel_dir.as_deref())?;
        for m in kernel.module_with_deps(name)? {
            if !self.modules.contains(&m) {
                self.modules.push(m);
            }
        }
        Ok(self)
    }

    /// The longest the whole run (boot, script, power-off) may take; default 180 s.
    pub fn timeout(mut self, timeout: Duration) -> Guest {
        self.timeout = timeout;
        self
    }

    pub fn memory_mb(mut self, mb: u32) -> Guest {
        self.memory_mb = mb;
        self
    }

    pub fn cpus(mut self, cpus: u32) -> Guest {
        self.cpus = cpus.max(1);
        self
    }

    /// The kernel's `lsm=` list (default [`DEFAULT_LSM`]).
    pub fn lsm(mut self, lsm: &str) -> Guest {
        self.lsm = lsm.into();
        self
    }

    fn has(&self, path: &str) -> bool {
        self.files.iter().any(|e| e.path == path)
    }

    /// Boots the guest, runs `script` with `sh`, and returns what it produced.
    pub fn run(&self, script: &str) -> Result<GuestOutput> {
        let kernel = kernel(self.kernel_dir.as_deref())?;
        let nonce = format!("{:x}{:x}", std::process::id(), unique() as u64);

        // Written into the memfd entry by entry: the carried files are read one at a time, never
        // the whole archive into memory (the harness' own memory has a budget).
        let initrd_fd = memfd("bpfeval-initrd", base_archive()?)?;
        let mut cpio = Cpio::new(std::io::BufWriter::new(&initrd_fd));
        let mut dirs = BTreeSet::new();
        for Entry { path, mode, data } in &self.files {
            cpio.parents(path, &mut dirs)?;
            match data {
                Source::Bytes(b) => cpio.file(path, *mode, b)?,
                Source::Host(h) => {
                    cpio.file(path, *mode, &std::fs::read(h).with_context(|| format!("reading {}", h.display()))?)?
                }
            }
        }
        let mut guest_modules = Vec::new();
        for m in &self.modules {
            // Newer packages compress modules; busybox insmod takes them plain.
            let plain = m.trim_end_matches(".xz").trim_end_matches(".zst").to_string();
            let guest = format!("/lib/modules/{}/{plain}", kernel.version);
            cpio.parents(&guest, &mut dirs)?;
            cpio.file(&guest, 0o644, &read_module(&kernel.modules_dir.join(m))?)?;
            guest_modules.push(plain);
        }
        cpio.file("/init", 0o755, init_script(&kernel.version, &guest_modules, &nonce).as_bytes())?;
        cpio.file("/run.sh", 0o755, script.as_bytes())?;
        cpio.finish()?.flush().context("writing the initramfs")?;
        let outputs = [memfd("bpfeval-console", &[])?, memfd("bpfeval-stdout", &[])?, memfd("bpfeval-stderr", &[])?];
        let proc_path = |f: &File| format!("/proc/{}/fd/{}", std::process::id(), f.as_raw_fd());

        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(["-accel", "tcg", "-nodefaults", "-no-reboot", "-display", "none", "-monitor", "none"])
            .args(["-m", &self.memory_mb.to_string(), "-smp", &self.cpus.to_string()])
            .arg("-kernel")
            .arg(&kernel.vmlinux)
            .args(["-initrd", &proc_path(&initrd_fd)])
            .args([
                "-append",
                &format!("console=ttyS0 quiet panic=-1 oops=panic printk.devkmsg=on lsm={} {MARKER}={nonce}", self.lsm),
            ]);
        for f in &outputs {
            cmd.args(["-serial", &format!("file:{}", proc_path(f))]);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let started = Instant::now();
        let child = cmd.spawn().context("starting qemu-system-x86_64 (`make setup` installs qemu-system-x86)")?;
        let mut qemu = Qemu(child);
        let status = qemu.wait_until(started + self.timeout)?;
        let elapsed = started.elapsed();
        let mut qemu_err = String::new();
        if let Some(mut e) = qemu.0.stderr.take() {
            let _ = e.read_to_string(&mut qemu_err);
        }
        drop(qemu);

        let [console, stdout, stderr] = outputs.map(|f| read_all(&f));
        let console = console?;
        let Some(status) = status else {
            bail!(
                "guest hung: no power-off within {:?}; qemu killed\n--- console (end) ---\n{}",
                self.timeout,
                tail(&console, 40)
            );
        };
        let marker = format!("{MARKER} {nonce} ");
        let verdict = console.lines().find_map(|l| l.find(&marker).map(|i| l[i + marker.len()..].trim().to_string()));
        match verdict.as_deref() {
            Some(v) if v.starts_with("exit ") => {
                let exit_code = v[5..].trim().parse().with_context(|| format!("bad exit marker {v:?}"))?;
                Ok(GuestOutput { exit_code, stdout: stdout?, stderr: stderr?, console, elapsed })
            }
            Some(v) => bail!("guest set-up failed: {v}\n--- console (end) ---\n{}", tail(&console, 40)),
            None => {
                let cause = if console.contains("Kernel panic") { "kernel panic" } else { "crash or early power-off" };
                bail!(
                    "guest ended without an exit status ({cause}; qemu {status}){}\n--- console (end) ---\n{}",
                    if qemu_err.trim().is_empty() { String::new() } else { format!("\nqemu: {}", qemu_err.trim()) },
                    tail(&console, 40)
                )
            }
        }
    }
}

fn unique() -> u128 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) as u128;
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    t ^ (n << 64)
}

/// The `/init` the guest runs as pid 1.
fn init_script(version: &str, modules: &[String], nonce: &str) -> String {
    let mut s = String::from(
        r#"#!/bin/sh
export PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t securityfs securityfs /sys/kernel/security
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
ip link set lo up
# The verdict goes through the kernel log: printk writes the console synchronously.
report() { echo "<2>MARKER NONCE $*" > /dev/kmsg; }
"#,
    )
    .replace("MARKER", MARKER)
    .replace("NONCE", nonce);
    for m in modules {
        s.push_str(&format!(
            "insmod /lib/modules/{version}/{m} || {{ report setup-failed insmod {m}; poweroff -f; }}\n"
        ));
    }
    s.push_str(
        r#"cd /
/bin/sh /run.sh </dev/null >/dev/ttyS1 2>/dev/ttyS2
rc=$?
# Whatever the script left running dies here; the last close of each port waits until its
# output has left the UART.
kill -KILL -1 2>/dev/null
sleep 0.1
: >/dev/ttyS1
: >/dev/ttyS2
report exit $rc
poweroff -f
"#,
    );
    s
}

/// qemu, killed and reaped when dropped.
struct Qemu(Child);

impl Qemu {
    /// Waits for exit until `deadline`; `None` if it was still running (it is killed then).
    fn wait_until(&mut self, deadline: Instant) -> Result<Option<std::process::ExitStatus>> {
        loop {
            if let Some(status) = self.0.try_wait().context("waiting for qemu")? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                self.kill();
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

fn memfd(name: &str, data: &[u8]) -> Result<File> {
    let cname = std::ffi::CString::new(name).expect("no NUL");
    // SAFETY: memfd_create with a valid C string; the fd is owned by the File from here on.
    let fd = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("memfd_create");
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let mut f = unsafe { File::from_raw_fd(fd) };
    f.write_all(data).context("writing a memfd")?;
    Ok(f)
}

fn read_all(f: &File) -> Result<String> {
    let len = f.metadata()?.len() as usize;
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, 0).context("reading a guest output")?;
    // The guest's ttys turn \n into \r\n.
    Ok(String::from_utf8_lossy(&buf).replace("\r\n", "\n"))
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The shared libraries and dynamic loader a host executable needs (`ldd`); empty if static.
fn shared_libraries(exe: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd").arg(exe).output().context("running ldd")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || text.contains("statically linked") {
        // ldd exits 1 with "not a dynamic executable" for static binaries.
        return Ok(Vec::new());
    }
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.contains("=> not found") {
            bail!("{}: {line}", exe.display());
        }
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)", "/lib64/ld-linux-x86-64.so.2 (0x...)"
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.trim(),
            None => line,
        };
        let path = path.split(" (").next().unwrap_or("").trim();
        if path.starts_with('/') {
            libs.push(PathBuf::from(path));
        }
    }
    Ok(libs)
}

/// The guest kernel: Debian's 6.1 image and its modules.
struct Kernel {
    version: String,
    vmlinux: PathBuf,
    modules_dir: PathBuf,
    /// `modules.dep`: module path -> dependency paths.
    deps: Vec<(String, Vec<String>)>,
}

/// The installed 6.1 (`dir` None) or the kernel unpacked in `dir`, found and extracted once.
fn kernel(dir: Option<&Path>) -> Result<&'static Kernel> {
    type Found = std::result::Result<&'static Kernel, String>;
    static KERNELS: std::sync::Mutex<Vec<(Option<PathBuf>, Found)>> = std::sync::Mutex::new(Vec::new());
    let mut known = KERNELS.lock().unwrap_or_else(|e| e.into_inner());
    let found = match known.iter().find(|(d, _)| d.as_deref() == dir) {
        Some((_, f)) => f.clone(),
        None => {
            let k = match dir {
                None => Kernel::find(),
                Some(d) => Kernel::unpacked(d),
            };
            let f: Found = k.map(|k| &*Box::leak(Box::new(k))).map_err(|e| format!("{e:#}"));
            known.push((dir.map(Path::to_path_buf), f.clone()));
            f
        }
    };
    found.map_err(|e| anyhow!("{e}"))
}

/// A module file, decompressed if it is `.ko.xz` or `.ko.zst`.
fn read_module(path: &Path) -> Result<Vec<u8>> {
    let tool = match path.extension().and_then(|e| e.to_str()) {
        Some("xz") => "xz",
        Some("zst") => "zstd",
        _ => return std::fs::read(path).with_context(|| format!("reading {}", path.display())),
    };
    let out = Command::new(tool)
        .arg("-dc")
        .arg(path)
        .output()
        .with_context(|| format!("running {tool} (`make setup` installs xz-utils and zstd)"))?;
    ensure!(out.status.success(), "{tool} -dc {}: {}", path.display(), String::from_utf8_lossy(&out.stderr).trim());
    Ok(out.stdout)
}

impl Kernel {
    /// The newest 6.1 kernel in /boot with its modules, extracted to the cache if not yet there.
    fn find() -> Result<Kernel> {
        let mut versions: Vec<String> = std::fs::read_dir("/boot")
            .context("reading /boot")?
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_prefix("vmlinuz-").map(String::from))
            .filter(|v| v.starts_with("6.1.") && Path::new("/lib/modules").join(v).join("modules.dep").exists())
            .collect();
        versions.sort_by_key(|v| {
            v.split(|c: char| !c.is_ascii_digit()).map(|n| n.parse::<u64>().unwrap_or(0)).collect::<Vec<_>>()
        });
        let version = versions
            .pop()
            .context("no /boot/vmlinuz-6.1.* with /lib/modules: `make setup` installs linux-image-amd64")?;
        let vmlinuz = PathBuf::from(format!("/boot/vmlinuz-{version}"));
        let size = vmlinuz.metadata().with_context(|| format!("{}", vmlinuz.display()))?.len();
        let cache = cache_dir();
        std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
        let vmlinux = cache.join(format!("vmlinux-{version}-{size}"));
        if !vmlinux.exists() {
            extract_vmlinux(&vmlinuz, &vmlinux)?;
        }
        Kernel::with_modules(version, vmlinux, PathBuf::from("/lib/modules"))
    }

    /// The kernel unpacked from Debian's packages into `dir` by `scripts/fetch-kernels.sh`.
    fn unpacked(dir: &Path) -> Result<Kernel> {
        let modules = dir.join("lib/modules");
        let version = std::fs::read_dir(&modules)
            .with_context(|| format!("reading {}", modules.display()))?
            .flatten()
            .find(|e| e.path().join("modules.dep").exists())
            .and_then(|e| e.file_name().to_str().map(String::from))
            .with_context(|| format!("no {}/<version>/modules.dep", modules.display()))?;
        let vmlinuz = [dir.join(format!("boot/vmlinuz-{version}")), modules.join(&version).join("vmlinuz")]
            .into_iter()
            .find(|p| p.is_file())
            .with_context(|| format!("no vmlinuz of {version} under {}", dir.display()))?;
        let size = vmlinuz.metadata()?.len();
        let cache = cache_dir();
        std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
        let vmlinux = cache.join(format!("vmlinux-{version}-{size}"));
        if !vmlinux.exists() {
            extract_vmlinux(&vmlinuz, &vmlinux)?;
        }
        Kernel::with_modules(version, vmlinux, modules)
    }

    fn with_modules(version: String, vmlinux: PathBuf, modules_root: PathBuf) -> Result<Kernel> {
        let modules_dir = modules_root.join(&version);
        let dep = std::fs::read_to_string(modules_dir.join("modules.dep")).context("reading modules.dep")?;
        let deps = dep
            .lines()
            .filter_map(|l| {
                let (m, d) = l.split_once(':')?;
                Some((m.trim().to_string(), d.split_whitespace().map(String::from).collect()))
            })
            .collect();
        Ok(Kernel { version, vmlinux, modules_dir, deps })
    }

    /// `name`'s module file and its dependencies, dependencies first.
    fn module_with_deps(&self, name: &str) -> Result<Vec<String>> {
        let norm = |s: &str| s.replace('-', "_");
        let wanted = norm(name);
        let (path, deps) = self
            .deps
            .iter()
            .find(|(p, _)| {
                let file = p.rsplit('/').next().unwrap_or("");
                let file = file.trim_end_matches(".xz").trim_end_matches(".zst");
                file.strip_suffix(".ko").map(norm).as_deref() == Some(&wanted)
            })
            .with_context(|| format!("kernel module {name:?} is not a module of {}", self.version))?;
        // modules.dep lists every (transitive) dependency, the ones loaded last first.
        let mut order: Vec<String> = deps.iter().rev().cloned().collect();
        order.push(path.clone());
        Ok(order)
    }
}

/// `$BPFEVAL_VM_CACHE`, else `<workspace>/target/vm`.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os(CACHE_ENV) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => crate::process::workspace_dir().join("target").join("vm"),
    }
}

/// Finds the xz (Debian up to 6.1) or zstd (6.12 on) stream in a bzImage and decompresses it
/// into an ELF vmlinux (boots in 2 s under TCG instead of 4.8 s for the compressed image).
fn extract_vmlinux(vmlinuz: &Path, dest: &Path) -> Result<()> {
    const XZ_MAGIC: &[u8] = &[0xFD, b'7', b'z', b'X', b'Z', 0x00];
    const ZSTD_MAGIC: &[u8] = &[0x28, 0xB5, 0x2F, 0xFD];
    let image = std::fs::read(vmlinuz).with_context(|| format!("reading {}", vmlinuz.display()))?;
    let at = |magic: &'static [u8], tool: &'static [&'static str]| {
        image.windows(magic.len()).enumerate().filter(move |(_, w)| *w == magic).map(move |(i, _)| (i, tool))
    };
    let candidates = at(XZ_MAGIC, &["xz", "-dc", "--single-stream"]).chain(at(ZSTD_MAGIC, &["zstd", "-dc"]));
    for (start, tool) in candidates {
        let mut xz = Command::new(tool[0])
            .args(&tool[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("running {} (`make setup` installs xz-utils and zstd)", tool[0]))?;
        let mut stdin = xz.stdin.take().expect("piped");
        let tail = image[start..].to_vec();
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(&tail);
        });
        let mut out = Vec::new();
        xz.stdout.take().expect("piped").read_to_end(&mut out)?;
        let _ = xz.wait();
        let _ = feeder.join();
        if out.starts_with(b"\x7fELF") {
            // Written under a unique name and renamed: parallel first runs do not see half a file.
            let tmp = dest.with_extension(format!("tmp{}-{}", std::process::id(), unique() as u64));
            std::fs::write(&tmp, &out).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, dest).with_context(|| format!("renaming to {}", dest.display()))?;
            return Ok(());
        }
    }
    bail!("{}: no xz- or zstd-compressed ELF kernel inside", vmlinuz.display())
}

/// busybox with its applet links and the directory skeleton, as a newc archive (built once).
fn base_archive() -> Result<&'static [u8]> {
    static BASE: OnceLock<std::result::Result<Vec<u8>, String>> = OnceLock::new();
    BASE.get_or_init(|| build_base().map_err(|e| format!("{e:#}"))).as_deref().map_err(|e| anyhow!("{e}"))
}

fn build_base() -> Result<Vec<u8>> {
    let busybox = std::fs::read(BUSYBOX).context("reading /bin/busybox (`make setup` installs busybox-static)")?;
    ensure!(
        shared_libraries(Path::new(BUSYBOX))?.is_empty(),
        "/bin/busybox is dynamically linked: install busybox-static"
    );
    let list = Command::new(BUSYBOX).arg("--list").output().context("busybox --list")?;
    let mut cpio = Cpio::new(Vec::new());
    for d in [
        "/bin",
        "/sbin",
        "/usr",
        "/usr/bin",
        "/usr/sbin",
        "/usr/local",
        "/usr/local/bin",
        "/lib",
        "/lib64",
        "/etc",
        "/proc",
        "/sys",
        "/dev",
        "/tmp",
        "/run",
        "/var",
        "/root",
        "/mnt",
    ] {
        cpio.dir(d)?;
    }
    cpio.symlink("/var/run", "/run")?;
    cpio.file("/bin/busybox", 0o755, &busybox)?;
    for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        if applet != "busybox" {
            cpio.symlink(&format!("/bin/{applet}"), "busybox")?;
        }
    }
    cpio.file("/etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n")?;
    cpio.file("/etc/group", 0o644, b"root:x:0:\n")?;
    Ok(cpio.finish()?)
}

/// A newc ("070701") cpio archive, as the kernel's initramfs unpacker reads it, written into
/// `out` as it is built. Archives can be concatenated; later entries win.
struct Cpio<W: Write> {
    out: W,
    /// Bytes written so far (entries are padded to 4 bytes, the archive to 512).
    len: u64,
    ino: u32,
}

impl<W: Write> Cpio<W> {
    fn new(out: W) -> Cpio<W> {
        Cpio { out, len: 0, ino: 0 }
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.len += bytes.len() as u64;
        self.out.write_all(bytes)
    }

    fn pad(&mut self, to: u64) -> std::io::Result<()> {
        let n = (to - self.len % to) % to;
        self.write(&vec![0; n as usize])
    }

    fn entry(&mut self, path: &str, mode: u32, data: &[u8]) -> std::io::Result<()> {
        self.ino += 1;
        let name = path.trim_start_matches('/');
        let header = format!(
            "070701{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        );
        self.write(header.as_bytes())?;
        self.write(name.as_bytes())?;
        self.write(&[0])?;
        self.pad(4)?;
        self.write(data)?;
        self.pad(4)
    }

    fn dir(&mut self, path: &str) -> std::io::Result<()> {
        self.entry(path, 0o040755, &[])
    }

    fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> std::io::Result<()> {
        self.entry(path, 0o100000 | (perm & 0o7777), data)
    }

    fn symlink(&mut self, path: &str, target: &str) -> std::io::Result<()> {
        self.entry(path, 0o120777, target.as_bytes())
    }

    /// Adds the directories above `path` not added yet.
    fn parents(&mut self, path: &str, seen: &mut BTreeSet<String>) -> std::io::Result<()> {
        let mut dir = String::new();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            dir.push('/');
            dir.push_str(part);
            if seen.insert(dir.clone()) {
                self.dir(&dir)?;
            }
        }
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<W> {
        self.entry("TRAILER!!!", 0, &[])?;
        self.pad(512)?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_exit_code_stdout_stderr_and_lsm() {
        let out = Guest::new()
            .run("echo out; echo err >&2; cat /sys/kernel/security/lsm; echo; grep -q ' /sys/fs/bpf bpf ' /proc/mounts && echo bpffs; exit 7")
            .unwrap();
        assert_eq!(out.exit_code, 7, "console:\n{}", out.console);
        assert!(out.success().is_err());
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines[0], "out");
        assert!(lines[1].split(',').any(|l| l == "bpf"), "lsm list: {}", lines[1]);
        assert_eq!(lines[2], "bpffs");
        assert_eq!(out.stderr.trim(), "err");
    }

    #[test]
    fn carries_dynamic_binaries_files_and_modules() {
        let out = Guest::new()
            .carry("/usr/bin/cpio")
            .unwrap()
            .file("/etc/greeting", "hello\n", 0o644)
            .module("bridge")
            .unwrap()
            // A lot of output must arrive whole: the ports are drained before power-off.
            // by full path: busybox sh prefers its own cpio applet
            .run("/usr/local/bin/cpio --version | head -1; cat /etc/greeting; grep -c '^bridge ' /proc/modules; seq 1 20000 | tail -1")
            .unwrap();
        out.success().unwrap();
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert!(lines[0].contains("GNU cpio"), "{}", out.stdout);
        assert_eq!(&lines[1..], ["hello", "1", "20000"]);
    }

    #[test]
    fn long_output_arrives_whole() {
        let out = Guest::new().run("seq 1 30000").unwrap();
        out.success().unwrap();
        let n: Vec<u32> = out.stdout.lines().map(|l| l.parse().unwrap()).collect();
        assert_eq!(n, (1..=30000).collect::<Vec<_>>());
    }

    #[test]
    fn hung_guest_is_an_error_and_leaves_no_qemu() {
        let err = Guest::new().timeout(Duration::from_secs(8)).run("sleep 600").unwrap_err();
        assert!(format!("{err}").contains("guest hung"), "{err:#}");
    }

    #[test]
    fn crashed_guest_is_an_error() {
        let err = Guest::new().run("echo c > /proc/sysrq-trigger; sleep 30").unwrap_err();
        assert!(format!("{err}").contains("without an exit status"), "{err:#}");
    }

    #[test]
    fn unknown_module_is_an_error() {
        assert!(Guest::new().module("no_such_module").is_err());
    }
}
