//! The metric catalogue: one place that says what each metric means, its unit, which way is
//! better and which plot it belongs to, so that the harness that records and the report that
//! renders agree. Metrics a run records that are missing here still render, with the defaults
//! of [`better`] and [`group`].

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Lower,
    Higher,
    /// Closest to a target value: the `ref:configured` row of the same use case, metric and
    /// class (see [`TARGET_REFERENCE`]); without one the metric is not ranked.
    Target,
}

/// The reference whose value a [`Better::Target`] metric should hit, and the one it is also
/// compared with as a second view.
pub const TARGET_REFERENCE: &str = "ref:configured";
pub const SECOND_TARGET_REFERENCE: &str = "ref:netem";

impl Better {
    pub fn as_str(self) -> &'static str {
        match self {
            Better::Lower => "lower",
            Better::Higher => "higher",
            Better::Target => "closest to configured",
        }
    }

    /// ↓ or ↑, as the tables mark it.
    pub fn arrow(self) -> &'static str {
        match self {
            Better::Lower => "↓",
            Better::Higher => "↑",
            Better::Target => "◎",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Metric {
    pub name: &'static str,
    pub unit: &'static str,
    pub description: &'static str,
    pub better: Better,
    /// Metrics of one group share a unit and a scale and are drawn in one chart.
    pub group: &'static str,
}

const fn m(
    name: &'static str,
    unit: &'static str,
    better: Better,
    group: &'static str,
    description: &'static str,
) -> Metric {
    Metric {
        name,
        unit,
        description,
        better,
        group,
    }
}

use Better::{Higher, Lower, Target};

/// In report order.
#[rustfmt::skip]
pub const CATALOGUE: &[Metric] = &[
    m("loc_total", "lines", Lower, "loc", "Code lines the library's user writes for this tool: kernel, types, loader, build glue and patches (not the shared tool glue)"),
    m("loc_kernel", "lines", Lower, "loc", "Code lines of the BPF (kernel-side) program"),
    m("loc_types", "lines", Lower, "loc", "Code lines of the ABI shared by kernel and loader: types crate, C header, map-value encoders"),
    m("loc_loader", "lines", Lower, "loc", "Code lines of the user-space loader"),
    m("loc_build", "lines", Lower, "loc", "Code lines of build glue: build scripts, build-support crates, manifests, Makefiles"),
    m("loc_patches", "lines", Lower, "loc", "Lines of patches to the library (added lines) and of code working around what it lacks"),
    m("loc_glue", "lines", Lower, "loc_glue", "Code lines of the tool glue every library shares (CLI, config, lifecycle; RedBPF's bridge to it): not the library's cost"),
    m("dep_crates", "crates", Lower, "dependencies", "Crates in the user-space dependency tree"),
    m("build_cold_s", "s", Lower, "build_time", "Build time from a clean target directory: the library's first tool (in use-case order), its crates included"),
    m("build_next_s", "s", Lower, "build_time", "Build time of one more tool, in the target directory where its library's other tools were built"),
    m("build_warm_s", "s", Lower, "build_time", "Rebuild time after touching the tool's kernel program"),
    m("toolchain_build_s", "s", Lower, "toolchain_time", "One-time build of the library's own build tool from a clean target directory (RedBPF: cargo-bpf 2.3.0 with LLVM 13)"),
    m("toolchain_vendor_s", "s", Lower, "toolchain_time", "One-time resolving and vendoring of crates the pinned old toolchain cannot fetch itself (RedBPF)"),
    m("obj_bytes", "bytes", Lower, "object_size", "Size of the BPF object as loaded: DWARF stripped, BTF kept"),
    m("obj_debug_bytes", "bytes", Lower, "debug_size", "DWARF the build leaves in the BPF object (not loaded)"),
    m("bin_bytes", "bytes", Lower, "binary_size", "Size of the stripped loader, without the DWARF of an embedded BPF object and without our RedBPF bridge"),
    m("bin_debug_bytes", "bytes", Lower, "debug_size", "DWARF of the BPF object embedded in the loader"),
    m("bridge_bytes", "bytes", Lower, "bridge_size", "Our RedBPF bridge (bpfeval-shared as a shared object) embedded in the loader: plumbing, not the library"),
    m("load_attach_ms", "ms", Lower, "load_time", "Time from loader start until programs are loaded and attached"),
    m("verified_insns", "insns", Lower, "verifier", "Instructions processed by the verifier"),
    m("xlated_bytes", "bytes", Lower, "program_size", "Size of the translated (post-verifier) program"),
    m("jited_bytes", "bytes", Lower, "program_size", "Size of the JIT-compiled program"),
    m("rss_kib", "KiB", Lower, "memory", "Resident set size of the loader while attached (without the mapped pages of our RedBPF bridge)"),
    m("bridge_rss_kib", "KiB", Lower, "bridge_memory", "Resident pages of our RedBPF bridge library: plumbing, not the library"),
    m("loader_cpu_pct", "%", Lower, "cpu", "CPU use of the loader while attached and under load"),
    m("loader_reads_per_s", "calls/s", Lower, "loader_reads", "read(2)-type system calls of the loader per second in the loader_cpu_pct window (/proc/<pid>/io syscr): where its CPU went beside BPF calls and epoll"),
    m("test_run_ns", "ns", Lower, "test_run", "Per-packet run time with BPF_PROG_TEST_RUN"),
    m("veth_pps", "pps", Higher, "throughput", "Packets per second the program ran on (its run_cnt over time; for jittergen's ref:no TC program, the router's forwarded datagrams), under a generator (BPF_PROG_TEST_RUN live frames) that outruns the receiving CPU; see generator_bound"),
    m("live_ns_per_pkt", "ns", Lower, "live_cost", "Mean run time per packet under that load, from the kernel's BPF statistics (Δrun_time_ns / Δrun_cnt)"),
    m("rx_cpu_busy_pct", "%", Higher, "rx_busy", "Busy share of the receiving CPU (the veth's threaded NAPI kthread) during the throughput measurement: near 100% when the receiver, not the generator, is the bottleneck"),
    m("generator_pps", "pps", Higher, "throughput", "Frames per second the generator sent during the throughput measurement (what the receiver did not take, veth dropped)"),
    m("generator_bound", "bool", Lower, "saturation", "1 in a repetition whose receiver processed at least 95% of the generated frames: it kept up, so its veth_pps measured the generator, not the program"),
    m("conn_per_s", "conn/s", Higher, "connections", "Connections per second completed"),
    m("latency_p50_us", "µs", Lower, "latency", "Median round-trip latency"),
    m("latency_p99_us", "µs", Lower, "latency", "99th percentile round-trip latency"),
    // loadbalancer: connections through the balancer (compare with ref:direct to one backend).
    m("conn_latency_p50_us", "µs", Lower, "conn_latency", "Median time from connect() to the first answer, one connection at a time"),
    m("conn_latency_p99_us", "µs", Lower, "conn_latency", "99th percentile time from connect() to the first answer"),
    m("spread_max_dev_pct", "%", Lower, "spread", "Largest deviation of a backend's share of connections from its weight's share"),
    m("conns_moved_pct", "%", Lower, "conns_moved", "Open connections that changed backend or broke across a change (class = the change)"),
    // jittergen on the wire (VM guest): compare with `ref:configured`, not lower or higher.
    m("wire_drop_pct", "%", Target, "wire_share", "Share of a stream's packets lost on the wire (jittergen: compare with ref:configured and ref:netem)"),
    m("wire_reorder_pct", "%", Target, "wire_share", "Share of a stream's packets that arrived after a later-sent one (compare with ref:configured and ref:netem)"),
    m("wire_delay_p50_ms", "ms", Target, "wire_delay", "Median one-way delay of a stream (compare with ref:configured and ref:netem)"),
    m("wire_delay_p99_ms", "ms", Target, "wire_delay", "99th percentile one-way delay of a stream (compare with ref:configured and ref:netem)"),
    // lsmbpf (VM guest): decisions per case, and a cost ratio measured in one guest (TCG times are emulated).
    m("decision_pass", "bool", Higher, "decisions", "1 when a chroot case got the decision the policy demands (lsmbpf decision matrix, class = case); absent where the program did not decide the case (decision_exercised 0)"),
    m("decision_exercised", "bool", Higher, "decisions", "1 when the program under test made the decision of a chroot case; 0 where another program decided first (prior_deny on kernel 6.1: the kernel stops at the first denial), so there is no pass to report"),
    m("chroot_cost_ratio", "×", Lower, "syscall_overhead", "Cost of chroot(\"/\") with the program attached over without, in the same VM guest"),
    m("attach_ms", "ms", Lower, "load_time", "Time to attach the loaded program (the loader's own measurement)"),
    // comtrace: a tracer's cost to the traced workload and how completely it reports.
    m("conn_overhead_pct", "%", Lower, "conn_overhead", "Connections per second lost to the attached tracer, relative to the same workload without it"),
    m("events_lost", "records", Lower, "record_loss", "Records the kernel could not deliver (ring buffer full), by offered connection rate (class)"),
    m("conns_missing", "records", Lower, "record_loss", "Sockets of the workload without a record, by offered connection rate (class)"),
    m("record_latency_p50_us", "µs", Lower, "record_latency", "Median time from a connection's close in the kernel to its record read by the harness (1000 conn/s)"),
    m("record_latency_p99_us", "µs", Lower, "record_latency", "99th percentile time from a connection's close in the kernel to its record read by the harness (1000 conn/s)"),
    m("prog_run_ns", "ns", Lower, "prog_cost", "Mean run time per program invocation under load (kernel BPF statistics, run_time_ns / run_cnt); comtrace: with the ring buffer reader running (its wake-ups included) and stopped (the program alone)"),
];

/// Metrics that are one true value rather than a sample of a noisy measurement: ranked by value
/// (equal values tie), with no test and no minimum of repetitions.
pub const EXACT: &[&str] = &[
    "loc_total", "loc_kernel", "loc_types", "loc_loader", "loc_build", "loc_patches", "dep_crates", "obj_bytes", "bin_bytes",
    "verified_insns", "xlated_bytes", "jited_bytes", "decision_pass", "decision_exercised",
];

/// Metrics that describe the conditions of a measurement rather than the library: shown, never
/// ranked, with the reason.
pub const CONDITIONS: &[(&str, &str)] = &[
    ("rx_cpu_busy_pct", "a condition of the throughput measurement"),
    ("generator_bound", "a flag of the throughput measurement"),
    ("generator_pps", "a condition of the throughput measurement"),
    ("loader_reads_per_s", "a diagnostic of loader_cpu_pct"),
];

/// Why `name` is never ranked, if it is a [`CONDITIONS`] metric.
pub fn condition(name: &str) -> Option<&'static str> {
    CONDITIONS.iter().find(|(n, _)| *n == name).map(|(_, why)| *why)
}

pub fn is_exact(name: &str) -> bool {
    EXACT.contains(&name)
}

/// Groups of metrics that are our plumbing or what we strip before comparing, not the library's
/// cost: shown beside the rest, never ranked, in no dimension.
pub const OURS: &[&str] = &["loc_glue", "debug_size", "bridge_size", "bridge_memory"];

pub fn is_ours(name: &str) -> bool {
    OURS.contains(&group(name))
}

/// A question the summary answers ("which library is cheapest per packet?"): metric groups that
/// answer it, with the key the weights file uses.
pub struct Dimension {
    pub key: &'static str,
    pub title: &'static str,
    pub groups: &'static [&'static str],
}

/// In summary order. Every group of the catalogue is in exactly one dimension.
#[rustfmt::skip]
pub const DIMENSIONS: &[Dimension] = &[
    Dimension { key: "cost", title: "per-packet/per-event cost", groups: &["test_run", "live_cost", "prog_cost", "syscall_overhead", "conn_overhead", "cpu", "loader_reads"] },
    Dimension { key: "throughput", title: "throughput", groups: &["throughput", "rx_busy", "saturation", "connections"] },
    Dimension { key: "latency", title: "latency", groups: &["latency", "conn_latency", "record_latency"] },
    Dimension { key: "load_time", title: "load time", groups: &["load_time"] },
    Dimension { key: "memory", title: "memory", groups: &["memory"] },
    Dimension { key: "size", title: "object/binary size", groups: &["object_size", "binary_size", "program_size", "verifier"] },
    Dimension { key: "build", title: "build time and toolchain burden", groups: &["build_time", "toolchain_time", "dependencies"] },
    Dimension { key: "code_size", title: "code size", groups: &["loc"] },
    Dimension { key: "fidelity", title: "fidelity (wire behaviour vs configured, spread, lost records, decisions)", groups: &["wire_share", "wire_delay", "spread", "conns_moved", "record_loss", "decisions"] },
];

/// The dimension of a metric; unknown metrics belong to none and stay out of the summary.
pub fn dimension(metric: &str) -> Option<&'static Dimension> {
    let g = group(metric);
    DIMENSIONS.iter().find(|d| d.groups.contains(&g))
}

/// The use cases and libraries under study, in report order; others sort after them by name.
/// The harness' list of use cases is this one (`harness::usecases::NAMES`).
pub const USECASES: &[&str] = &[
    "packetfilter",
    "loadbalancer",
    "jittergen",
    "comtrace",
    "lsmbpf",
];
/// The harness' library registry (harness/src/libs.rs) lists the same names in this order (tested there).
pub const LIBRARIES: &[&str] = &["aya", "libbpf-rs", "libbpf", "redbpf", "cilium-ebpf", "libbpfgo"];

/// Sort key of a name within `known`: listed names first, in list order, then the rest by name.
pub fn listed_order<'a>(known: &[&str], name: &'a str) -> (usize, &'a str) {
    (
        known.iter().position(|k| *k == name).unwrap_or(known.len()),
        name,
    )
}

pub fn lookup(name: &str) -> Option<&'static Metric> {
    CATALOGUE.iter().find(|m| m.name == name)
}

/// Lower is better unless the catalogue says otherwise.
pub fn better(name: &str) -> Better {
    lookup(name).map_or(Lower, |m| m.better)
}

/// An unknown metric forms a group of its own.
pub fn group(name: &str) -> &str {
    lookup(name).map_or(name, |m| m.group)
}

/// Sort key: catalogue position first, unknown metrics after, by name.
pub fn order(name: &str) -> (usize, &str) {
    (
        CATALOGUE
            .iter()
            .position(|m| m.name == name)
            .unwrap_or(CATALOGUE.len()),
        name,
    )
}

/// A group's name as a chart title: `build_time` -> `build time`.
pub fn group_title(group: &str) -> String {
    group.replace('_', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_unique_and_groups_share_a_unit() {
        for (i, a) in CATALOGUE.iter().enumerate() {
            for b in &CATALOGUE[i + 1..] {
                assert_ne!(a.name, b.name);
                if a.group == b.group {
                    assert_eq!(a.unit, b.unit, "group {} mixes units", a.group);
                }
            }
        }
    }

    #[test]
    fn every_metric_has_one_dimension() {
        for m in CATALOGUE {
            let n = DIMENSIONS.iter().filter(|d| d.groups.contains(&m.group)).count();
            assert_eq!(n, usize::from(!OURS.contains(&m.group)), "{} (group {})", m.name, m.group);
        }
        for e in EXACT {
            assert!(lookup(e).is_some(), "{e}");
        }
        assert_eq!(better("wire_drop_pct"), Target);
    }

    #[test]
    fn defaults_for_unknown_metrics() {
        assert_eq!(better("veth_pps"), Higher);
        assert_eq!(better("made_up"), Lower);
        assert_eq!(group("made_up"), "made_up");
        assert!(order("loc_kernel") < order("made_up"));
        assert!(listed_order(USECASES, "lsmbpf") < listed_order(USECASES, "aaa"));
        assert!(listed_order(LIBRARIES, "redbpf") < listed_order(LIBRARIES, "bcc"));
    }
}
