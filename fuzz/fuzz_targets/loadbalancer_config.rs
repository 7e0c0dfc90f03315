//! The loadbalancer config parser on arbitrary text: accepted, or rejected with file, field and reason.
#![no_main]

use bpf_eval_fuzz::{check, path};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check(bpfeval_shared::loadbalancer::Config::parse(text, path()));
    }
});
