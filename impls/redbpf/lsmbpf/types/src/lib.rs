//! The lsmbpf types of the RedBPF program: the Aya program's, from their very file. The loader is
//! lsmbpf-aya's and fills the globals `SETTINGS` and `OFFSETS` with `lsmbpf_aya_types` values,
//! so both programs are built from one definition. Not a dependency on lsmbpf-aya-types: its
//! manifest inherits root-workspace keys, which Rust 1.59's cargo cannot read.
#![no_std]

#[allow(unused_attributes)] // the file's `#![no_std]`, which only a crate root can carry
#[path = "../../../../aya/lsmbpf/types/src/lib.rs"]
mod aya_types;

pub use aya_types::*;
