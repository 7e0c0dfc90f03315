//! The thesis' six libraries with their commit ranges from its `scripts/files_per_commit.py`
//! (each from the repository's first commit to the commit the thesis measured), and its window
//! from `scripts/contributors_and_commits.py` and `scripts/ticket_statistics.py`.

use chrono::NaiveDate;
use serde::Serialize;

use crate::CommitRange;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// aya, ebpf, libbpf, libbpfgo, libbpf-rs, redbpf; 2022-12-01 to 2023-06-05.
    Thesis,
}

/// One library of a preset: its name (as the thesis' scripts name it), where to clone it
/// from, and the range `files_per_commit.py` averages over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresetLibrary {
    pub name: &'static str,
    pub github: &'static str,
    pub from: &'static str,
    pub to: &'static str,
}

impl PresetLibrary {
    pub fn range(&self) -> CommitRange {
        CommitRange { from: self.from.into(), to: self.to.into() }
    }
}

const THESIS: [PresetLibrary; 6] = [
    lib("aya", "aya-rs/aya", "15be301f8c1c57df3b94a79bdb808cb9135013c8", "d85b36f6d80236f142395f1ab173acbed74af99b"),
    lib("ebpf", "cilium/ebpf", "ac675eba74ca67b6e876e658f8714a3f6b2bf5c5", "3cd2cb36d0786219e49e7dde9c2debfdc7c304ca"),
    lib(
        "libbpf",
        "libbpf/libbpf",
        "66684189f0f5d182b1c3ab362fc0f919970c7079",
        "fbd60dbff51c870f5e80a17c4f2fd639eb80af90",
    ),
    lib(
        "libbpfgo",
        "aquasecurity/libbpfgo",
        "54b9c393a554215fc7ead0165aa6a1ce46eed0ed",
        "1be18b35389c51e6934472218fd01572324eebda",
    ),
    lib(
        "libbpf-rs",
        "libbpf/libbpf-rs",
        "b279c47cb5752e05e97bae433b4ceb0cba6ed59d",
        "8f6a1e9b3b2c2c9c668674d5ec6523cbb98179e1",
    ),
    lib(
        "redbpf",
        "foniod/redbpf",
        "85e6ed35d4a0fd04b4dacde544c7f9e7c5bc93b8",
        "845fffa242d2b31a75fc61d251b43805ddf87c6f",
    ),
];

const fn lib(name: &'static str, github: &'static str, from: &'static str, to: &'static str) -> PresetLibrary {
    PresetLibrary { name, github, from, to }
}

impl Preset {
    pub fn libraries(self) -> &'static [PresetLibrary] {
        match self {
            Preset::Thesis => &THESIS,
        }
    }

    /// The scripts' `datetime(2022, 12, 1, tzinfo=timezone.utc)`.
    pub fn since(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(2022, 12, 1).unwrap()
    }

    /// The scripts' `datetime(2023, 6, 5, tzinfo=timezone.utc)`.
    pub fn until(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(2023, 6, 5).unwrap()
    }
}
