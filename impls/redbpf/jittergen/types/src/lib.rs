//! The jittergen types of the RedBPF program and loader: the Aya program's, from their very file
//! (plain `#[repr(C)]` Rust that Rust 1.59 compiles; its `aya::Pod` impls are behind a feature
//! this crate does not have), so both Rust programs have one definition of the ABI.
//! Not a dependency on jittergen-aya-types: its manifest inherits root-workspace keys, which
//! Rust 1.59's cargo cannot read.
#![no_std]

#[allow(unused_attributes)] // the file's `#![no_std]`, which only a crate root can carry
#[path = "../../../../aya/jittergen/types/src/lib.rs"]
mod aya_types;

pub use aya_types::*;
