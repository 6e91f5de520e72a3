//! What `ppisc inspect` shows: a bundle parsed without a trust decision, and its text form.

use std::fmt;

use ppis_manifest::Manifest;

use crate::format::Header;
use crate::keys::{KeyId, PublicKey};

/// A parsed bundle with its hash and signature results reported rather than enforced.
#[derive(Clone, Debug, PartialEq)]
pub struct Inspection {
    pub format_version: u16,
    pub total_bytes: u64,
    pub header: Header,
    pub entries: Vec<EntryInspection>,
    /// The manifest, or why it cannot be read.
    pub manifest: Result<Manifest, String>,
    pub signature: SignatureStatus,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryInspection {
    pub name: String,
    pub size: u64,
    /// Recorded hash, lowercase hex.
    pub sha256: String,
    /// Whether the bytes in the file hash to the recorded value.
    pub hash_matches: bool,
}

/// The signature as found, before any trust decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureStatus {
    /// No signature block, or one of zero bytes.
    Unsigned,
    /// A signature block that does not start with the signature magic.
    Malformed,
    /// Signed by this key, and the signature checks.
    Valid(PublicKey),
    /// The signature does not check against the key in the block (or the key is not a point).
    Invalid(KeyId),
}

impl Inspection {
    /// True when the signature is valid and every entry hash matches: what `read_bundle`
    /// would accept given a trust list holding the signer.
    pub fn is_intact(&self) -> bool {
        matches!(self.signature, SignatureStatus::Valid(_))
            && self.entries.iter().all(|entry| entry.hash_matches)
            && self.manifest.is_ok()
    }
}

impl fmt::Display for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = &self.header;
        writeln!(f, "bundle {} (format {}, {} bytes)", header.name, self.format_version, self.total_bytes)?;
        writeln!(f, "  compiler version:  {}", header.compiler_version)?;
        writeln!(f, "  cost profile hash: {}", header.cost_profile_hash)?;
        writeln!(f, "  source hash:       {}", header.source_hash)?;
        match self.signature {
            SignatureStatus::Unsigned => writeln!(f, "  signature: NONE (unsigned)")?,
            SignatureStatus::Malformed => writeln!(f, "  signature: MALFORMED signature block")?,
            SignatureStatus::Valid(key) => writeln!(f, "  signature: valid, signer {}", key.id())?,
            SignatureStatus::Invalid(id) => writeln!(f, "  signature: INVALID, claimed signer {id}")?,
        }
        writeln!(f, "entries:")?;
        let name_width = self.entries.iter().map(|entry| entry.name.len()).max().unwrap_or(0);
        for entry in &self.entries {
            let status = if entry.hash_matches { "ok" } else { "HASH MISMATCH" };
            writeln!(f, "  {:name_width$}  {:>10} bytes  sha256 {}  {status}", entry.name, entry.size, entry.sha256)?;
        }
        match &self.manifest {
            Err(reason) => writeln!(f, "manifest: unreadable: {reason}")?,
            Ok(manifest) => {
                writeln!(f, "manifest: budget {}% per probe", manifest.budget_percent)?;
                for probe in &manifest.probes {
                    let rate = probe.rate_per_sec.map_or("undeclared rate".to_string(), |rate| format!("{rate}/s"));
                    writeln!(f, "  probe {} at {} ({rate}, line {})", probe.program, probe.attach, probe.line)?;
                }
                for map in &manifest.maps {
                    let per_cpu = if map.per_cpu { ", per-CPU" } else { "" };
                    writeln!(
                        f,
                        "  map {} ({:?}{per_cpu}, key {} bytes, value {} bytes)",
                        map.name, map.kind, map.key_size, map.value_size
                    )?;
                }
            }
        }
        Ok(())
    }
}
