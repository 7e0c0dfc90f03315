//! The scenario loaders (packetfilter, loadbalancer and jittergen vectors, comtrace's workload)
//! on arbitrary text: the first byte picks the loader. Accepted or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((which, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    match which % 4 {
        0 => drop(harness::scenario::Vectors::parse(text)),
        1 => drop(harness::usecases::loadbalancer::bed::Vectors::parse(text)),
        2 => drop(harness::usecases::jittergen::bed::Vectors::parse(text)),
        _ => drop(harness::usecases::comtrace::bed::parse_sizes(text)),
    }
});
