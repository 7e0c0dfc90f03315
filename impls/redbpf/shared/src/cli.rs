//! The part of `bpfeval_shared::cli` a backend sees.

/// XDP attach mode (`bpfeval_shared::cli::XdpMode`): `Native` is the driver mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    Native,
    Skb,
}
