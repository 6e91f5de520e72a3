//! Signed bundles: one `NAME.ppb` file that carries a compiled object, its certificate and its
//! manifest from the build host to production hosts, signed with ed25519.
//!
//! Boundary: pure byte handling, no BPF syscalls and no compiler types; `ppisc` writes bundles,
//! `ppisd` reads them. The format is specified in `docs/bundle.md`.
//! Invariant: [`read_bundle`] returns a [`Bundle`] only if the framing respects every limit,
//! every entry name is safe, every entry hash matches, and a key in the trust list signed all
//! bytes before the signature block.

pub mod acc;
mod error;
mod format;
mod inspect;
mod keys;
mod names;
pub mod pcc;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use ppis_manifest::Manifest;
use sha2::{Digest, Sha256};

pub use error::{BundleError, KeyError};
pub use format::{EntryRecord, Header};
pub use inspect::{EntryInspection, Inspection, SignatureStatus};
pub use keys::{keygen, KeyId, PublicKey, SigningKey, TrustList, PUBLIC_KEY_KIND, SECRET_KEY_KIND};
pub use names::{validate_entry_list, validate_entry_name};

use format::{parse_frame, SignatureBlock};

/// First bytes of every bundle.
pub const MAGIC: [u8; 8] = *b"PPISBNDL";
/// The format version this build writes: 2 may carry `invariants.json` (abstraction-carrying
/// code, [`acc`]), which the load-time check reads.
pub const FORMAT_VERSION: u16 = 2;
/// The oldest format version this build reads (version 1: no invariants; the load-time check
/// ignores an `invariants.json` entry in it).
pub const MIN_FORMAT_VERSION: u16 = 1;
/// Magic, version and header length.
pub const PREFIX_BYTES: usize = 14;
/// First bytes of the signature block.
pub const SIGNATURE_MAGIC: [u8; 8] = *b"PPISSIG1";
/// Tag, 32-byte public key, 64-byte signature.
pub const SIGNATURE_BLOCK_BYTES: usize = 8 + 32 + 64;

/// Largest bundle file, signature included.
pub const MAX_BUNDLE_BYTES: u64 = 64 * 1024 * 1024;
/// Largest header JSON.
pub const MAX_HEADER_BYTES: u32 = 1024 * 1024;
/// Most entries in one bundle, required ones included.
pub const MAX_ENTRIES: usize = 256;
/// Longest entry name.
pub const MAX_ENTRY_NAME_BYTES: usize = 200;
/// Longest metadata string (compiler version, hashes).
pub const MAX_METADATA_BYTES: usize = 256;

/// Entry holding the manifest as JSON (`Manifest::to_json`).
pub const MANIFEST_ENTRY: &str = "manifest.json";
/// Entry holding the ELF object.
pub const OBJECT_ENTRY: &str = "object.o";
/// Entry holding the certificate JSON.
pub const CERTIFICATE_ENTRY: &str = "certificate.json";
/// Entries every bundle has; extra entries may not use these names.
pub const REQUIRED_ENTRIES: [&str; 3] = [CERTIFICATE_ENTRY, MANIFEST_ENTRY, OBJECT_ENTRY];

/// Everything that goes into a bundle.
#[derive(Clone, Debug, PartialEq)]
pub struct BundleContents {
    /// `NAME` of `NAME.ppb`.
    pub name: String,
    pub compiler_version: String,
    pub cost_profile_hash: String,
    pub source_hash: String,
    pub manifest: Manifest,
    pub object: Vec<u8>,
    /// Certificate JSON, opaque to this crate; its hash is recorded like every entry's.
    pub certificate: Vec<u8>,
    /// Further files, e.g. `proofs/NAME.v`, by entry name.
    pub extra: BTreeMap<String, Vec<u8>>,
}

/// A bundle that passed every check of [`read_bundle`].
#[derive(Clone, Debug, PartialEq)]
pub struct Bundle {
    pub format_version: u16,
    /// Name, metadata and the size and hash of every entry, as signed.
    pub header: Header,
    pub manifest: Manifest,
    pub object: Vec<u8>,
    pub certificate: Vec<u8>,
    pub extra: BTreeMap<String, Vec<u8>>,
    /// The trusted key that signed the bundle.
    pub signer: PublicKey,
}

impl Bundle {
    /// The recorded SHA-256 (lowercase hex) of an entry.
    pub fn entry_sha256(&self, name: &str) -> Option<&str> {
        self.header.entries.iter().find(|entry| entry.name == name).map(|entry| entry.sha256.as_str())
    }
}

/// Lowercase hex SHA-256 of `bytes`, the form every hash in a bundle takes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    keys::to_hex(&Sha256::digest(bytes))
}

/// Builds a signed bundle. Deterministic: the same contents and key give the same bytes (no
/// timestamps, entries sorted by name, canonical JSON, deterministic ed25519). Refuses what a
/// reader would refuse: bad or reserved entry names, bad metadata, a manifest that does not
/// read back, a result over the limits (checked before the output is allocated).
pub fn write_bundle(contents: &BundleContents, key: &SigningKey) -> Result<Vec<u8>, BundleError> {
    let manifest_json = contents.manifest.to_json();
    Manifest::from_json(&manifest_json).map_err(BundleError::BadManifest)?;

    let mut entries: BTreeMap<&str, &[u8]> = BTreeMap::new();
    for (name, bytes) in &contents.extra {
        validate_entry_name(name)?;
        if REQUIRED_ENTRIES.contains(&name.as_str()) {
            return Err(BundleError::BadEntryName { name: name.clone(), reason: "reserved for a required entry" });
        }
        entries.insert(name, bytes);
    }
    entries.insert(MANIFEST_ENTRY, manifest_json.as_bytes());
    entries.insert(OBJECT_ENTRY, &contents.object);
    entries.insert(CERTIFICATE_ENTRY, &contents.certificate);

    let header = Header {
        name: contents.name.clone(),
        compiler_version: contents.compiler_version.clone(),
        cost_profile_hash: contents.cost_profile_hash.clone(),
        source_hash: contents.source_hash.clone(),
        entries: entries
            .iter()
            .map(|(name, bytes)| EntryRecord {
                name: name.to_string(),
                size: bytes.len() as u64,
                sha256: sha256_hex(bytes),
            })
            .collect(),
    };
    header.validate()?;
    let header_json = header.to_canonical_json();
    if header_json.len() as u64 > u64::from(MAX_HEADER_BYTES) {
        return Err(BundleError::HeaderOversized { size: header_json.len() as u64, limit: MAX_HEADER_BYTES.into() });
    }
    let total = (PREFIX_BYTES + header_json.len() + SIGNATURE_BLOCK_BYTES) as u64
        + entries.values().map(|bytes| bytes.len() as u64).sum::<u64>();
    if total > MAX_BUNDLE_BYTES {
        return Err(BundleError::Oversized { size: total, limit: MAX_BUNDLE_BYTES });
    }

    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(header_json.len() as u32).to_le_bytes());
    out.extend_from_slice(&header_json);
    for bytes in entries.values() {
        out.extend_from_slice(bytes);
    }
    Ok(append_signature(out, key))
}

/// Signs `unsigned` (everything up to the end of the last entry) and appends the signature
/// block. [`write_bundle`] uses it; it is public for tools and tests that assemble bundle bytes
/// by hand. It does not check `unsigned`: readers do.
pub fn append_signature(mut unsigned: Vec<u8>, key: &SigningKey) -> Vec<u8> {
    let signature = key.sign(&unsigned);
    unsigned.extend_from_slice(&SIGNATURE_MAGIC);
    unsigned.extend_from_slice(&key.public_key().to_bytes());
    unsigned.extend_from_slice(&signature);
    unsigned
}

/// Reads and fully verifies a bundle: limits and framing, header, entry names, the signature
/// by a key in `trust`, then every entry hash, then the manifest. The signature is checked
/// before any entry content is looked at.
pub fn read_bundle(bytes: &[u8], trust: &TrustList) -> Result<Bundle, BundleError> {
    let frame = parse_frame(bytes)?;
    let signer = match frame.signature {
        SignatureBlock::Missing | SignatureBlock::Zeroed => return Err(BundleError::Unsigned),
        SignatureBlock::Malformed => return Err(BundleError::BadSignature),
        SignatureBlock::Present { public_key, signature } => {
            let Some(signer) = trust.keys().iter().find(|key| key.to_bytes() == public_key) else {
                return Err(BundleError::UntrustedSigner(keys::key_id_of(&public_key)));
            };
            if !signer.verify(frame.signed, &signature) {
                return Err(BundleError::BadSignature);
            }
            *signer
        }
    };
    // A trusted signer can still have signed a header that does not match its entries (a
    // compromised or buggy build host): the hashes are checked regardless.
    for (entry, range) in frame.header.entries.iter().zip(&frame.entry_ranges) {
        if sha256_hex(&bytes[range.clone()]) != entry.sha256 {
            return Err(BundleError::HashMismatch(entry.name.clone()));
        }
    }
    let mut object = Vec::new();
    let mut certificate = Vec::new();
    let mut manifest = None;
    let mut extra = BTreeMap::new();
    for (entry, range) in frame.header.entries.iter().zip(frame.entry_ranges) {
        let content = &bytes[range];
        match entry.name.as_str() {
            OBJECT_ENTRY => object = content.to_vec(),
            CERTIFICATE_ENTRY => certificate = content.to_vec(),
            MANIFEST_ENTRY => manifest = Some(parse_manifest(content)?),
            _ => {
                extra.insert(entry.name.clone(), content.to_vec());
            }
        }
    }
    // The header validation guarantees the manifest entry exists.
    let manifest = manifest.ok_or(BundleError::MissingEntry(MANIFEST_ENTRY))?;
    Ok(Bundle {
        format_version: frame.format_version,
        header: frame.header,
        manifest,
        object,
        certificate,
        extra,
        signer,
    })
}

fn parse_manifest(content: &[u8]) -> Result<Manifest, BundleError> {
    let text = std::str::from_utf8(content).map_err(|_| BundleError::BadManifest("not UTF-8".into()))?;
    Manifest::from_json(text).map_err(BundleError::BadManifest)
}

/// Parses a bundle without deciding trust, for `ppisc inspect`: fails only when the framing or
/// header is unusable; hash and signature results are reported, not enforced.
pub fn inspect(bytes: &[u8]) -> Result<Inspection, BundleError> {
    let frame = parse_frame(bytes)?;
    let signature = match frame.signature {
        SignatureBlock::Missing | SignatureBlock::Zeroed => SignatureStatus::Unsigned,
        SignatureBlock::Malformed => SignatureStatus::Malformed,
        SignatureBlock::Present { public_key, signature } => match PublicKey::from_bytes(public_key) {
            Ok(key) if key.verify(frame.signed, &signature) => SignatureStatus::Valid(key),
            _ => SignatureStatus::Invalid(keys::key_id_of(&public_key)),
        },
    };
    let mut entries = Vec::with_capacity(frame.header.entries.len());
    let mut manifest = Err(BundleError::MissingEntry(MANIFEST_ENTRY).to_string());
    for (entry, range) in frame.header.entries.iter().zip(frame.entry_ranges) {
        let content = &bytes[range];
        if entry.name == MANIFEST_ENTRY {
            manifest = parse_manifest(content).map_err(|e| e.to_string());
        }
        entries.push(EntryInspection {
            name: entry.name.clone(),
            size: entry.size,
            sha256: entry.sha256.clone(),
            hash_matches: sha256_hex(content) == entry.sha256,
        });
    }
    Ok(Inspection {
        format_version: frame.format_version,
        total_bytes: bytes.len() as u64,
        header: frame.header,
        entries,
        manifest,
        signature,
    })
}

/// Reads a bundle file, refusing one over [`MAX_BUNDLE_BYTES`] before reading it into memory.
pub fn load_bundle_file(path: &Path) -> Result<Vec<u8>, BundleError> {
    let io_error = |e: std::io::Error| BundleError::Io(format!("{}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(io_error)?;
    let size = file.metadata().map_err(io_error)?.len();
    if size > MAX_BUNDLE_BYTES {
        return Err(BundleError::Oversized { size, limit: MAX_BUNDLE_BYTES });
    }
    read_limited(file).map_err(|e| match e {
        BundleError::Io(message) => BundleError::Io(format!("{}: {message}", path.display())),
        other => other,
    })
}

/// Reads at most [`MAX_BUNDLE_BYTES`] from `source` (a pipe, a socket), refusing a longer
/// stream after one byte too many rather than buffering it.
pub fn read_limited(source: impl Read) -> Result<Vec<u8>, BundleError> {
    let mut bytes = Vec::new();
    source.take(MAX_BUNDLE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| BundleError::Io(e.to_string()))?;
    if bytes.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(BundleError::OversizedStream { limit: MAX_BUNDLE_BYTES });
    }
    Ok(bytes)
}
