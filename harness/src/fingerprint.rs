//! A content fingerprint (64-bit FNV-1a) of the inputs a cached result depends on: equal
//! fingerprints mean the result can be reused (build metrics, kernel matrix cells). Not
//! cryptographic; it guards against change, not against an adversary.

use std::path::Path;

pub struct Fingerprint(u64);

impl Default for Fingerprint {
    fn default() -> Self {
        Fingerprint(0xcbf29ce484222325)
    }
}

impl Fingerprint {
    pub fn feed(&mut self, bytes: &[u8]) -> &mut Self {
        for b in bytes {
            self.0 = (self.0 ^ *b as u64).wrapping_mul(0x100000001b3);
        }
        self
    }

    /// The path and the file's bytes; a missing file counts as empty (a vanished file is a
    /// change, as an emptied one).
    pub fn file(&mut self, path: &Path) -> &mut Self {
        self.feed(path.as_os_str().as_encoded_bytes());
        self.feed(&std::fs::read(path).unwrap_or_default())
    }

    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}
