//! The byte layout: framing, the canonical JSON header and the signature block, parsed with
//! every length checked against the limits before it is used.
//!
//! ```text
//! 0        8         10              14             14+H                E          E+104
//! PPISBNDL | version | header length | header JSON | entry bytes ... | signature block
//!          u16 LE    u32 LE = H                      sizes from header  PPISSIG1 key sig
//! ```

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::error::BundleError;
use crate::names::validate_entry_list;
use crate::{
    FORMAT_VERSION, MAGIC, MAX_BUNDLE_BYTES, MAX_ENTRIES, MAX_HEADER_BYTES, MAX_METADATA_BYTES, PREFIX_BYTES,
    SIGNATURE_BLOCK_BYTES, SIGNATURE_MAGIC,
};

/// The bundle header, stored as compact JSON with the fields in this order (the canonical form:
/// a reader re-encodes it and refuses any header whose bytes differ).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// The bundle's name, `NAME` of `NAME.ppb`.
    pub name: String,
    /// Version string of the `ppisc` that built the bundle.
    pub compiler_version: String,
    /// Hash of the host cost profile the certificate's bounds were computed with.
    pub cost_profile_hash: String,
    /// Hash of the `.ppl` source the bundle was built from.
    pub source_hash: String,
    /// Every entry, sorted by name; their bytes follow the header in this order.
    pub entries: Vec<EntryRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryRecord {
    pub name: String,
    pub size: u64,
    /// Lowercase hex SHA-256 of the entry's bytes.
    pub sha256: String,
}

impl Header {
    /// The canonical header bytes.
    pub fn to_canonical_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a struct of strings and integers always serialises")
    }

    /// Checks everything about a header that does not need the entry bytes.
    pub fn validate(&self) -> Result<(), BundleError> {
        validate_bundle_name(&self.name)?;
        for (field, value) in [
            ("compiler_version", &self.compiler_version),
            ("cost_profile_hash", &self.cost_profile_hash),
            ("source_hash", &self.source_hash),
        ] {
            validate_metadata(field, value)?;
        }
        if self.entries.len() > MAX_ENTRIES {
            return Err(BundleError::TooManyEntries { count: self.entries.len(), limit: MAX_ENTRIES });
        }
        validate_entry_list(self.entries.iter().map(|entry| entry.name.as_str()))?;
        for entry in &self.entries {
            if entry.sha256.len() != 64 || !entry.sha256.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return Err(BundleError::BadHeader(format!(
                    "entry {:?} has a sha256 that is not 64 lowercase hex digits",
                    entry.name
                )));
            }
            if entry.size > MAX_BUNDLE_BYTES {
                return Err(BundleError::BadHeader(format!(
                    "entry {:?} claims {} bytes, more than a whole bundle may hold",
                    entry.name, entry.size
                )));
            }
        }
        Ok(())
    }
}

/// `NAME` of `NAME.ppb`: a plain file name, so it can be shown and used to name files safely.
fn validate_bundle_name(name: &str) -> Result<(), BundleError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(BundleError::BadHeader(format!(
            "bundle name {:?} is not 1-64 characters of A-Z a-z 0-9 . _ - (not starting with .)",
            truncate_for_message(name)
        )))
    }
}

/// Metadata is printed by `ppisc inspect` and `ppisd`, so it must not carry terminal escapes.
fn validate_metadata(field: &str, value: &str) -> Result<(), BundleError> {
    if value.len() > MAX_METADATA_BYTES {
        return Err(BundleError::BadHeader(format!("{field} is longer than {MAX_METADATA_BYTES} bytes")));
    }
    if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(BundleError::BadHeader(format!("{field} contains characters other than printable ASCII")));
    }
    Ok(())
}

fn truncate_for_message(text: &str) -> String {
    text.chars().take(80).collect()
}

/// What follows the entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SignatureBlock {
    /// The file ends right after the entries.
    Missing,
    /// A block whose key and signature are all zero bytes: a placeholder, not a signature.
    Zeroed,
    /// A block of the right size that does not start with [`SIGNATURE_MAGIC`].
    Malformed,
    Present {
        public_key: [u8; 32],
        signature: [u8; 64],
    },
}

/// A bundle whose framing and header are valid; hashes and the signature are not checked yet.
pub(crate) struct Frame<'a> {
    pub format_version: u16,
    pub header: Header,
    /// Everything the signature covers: from the magic to the end of the last entry.
    pub signed: &'a [u8],
    /// Byte range of each entry, in header order.
    pub entry_ranges: Vec<Range<usize>>,
    pub signature: SignatureBlock,
}

/// Parses the framing and header of `bytes`, checking every limit before using a length.
pub(crate) fn parse_frame(bytes: &[u8]) -> Result<Frame<'_>, BundleError> {
    let total = bytes.len() as u64;
    if total > MAX_BUNDLE_BYTES {
        return Err(BundleError::Oversized { size: total, limit: MAX_BUNDLE_BYTES });
    }
    let magic_seen = &bytes[..bytes.len().min(MAGIC.len())];
    if magic_seen != &MAGIC[..magic_seen.len()] {
        return Err(BundleError::BadMagic);
    }
    if bytes.len() < MAGIC.len() {
        return Err(BundleError::Truncated("the magic bytes".into()));
    }
    let Some(version_bytes) = bytes.get(8..10) else {
        return Err(BundleError::Truncated("the format version".into()));
    };
    let format_version = u16::from_le_bytes([version_bytes[0], version_bytes[1]]);
    if !(crate::MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&format_version) {
        return Err(BundleError::UnknownFormatVersion(format_version));
    }
    let Some(length_bytes) = bytes.get(10..PREFIX_BYTES) else {
        return Err(BundleError::Truncated("the header length".into()));
    };
    let header_length = u32::from_le_bytes([length_bytes[0], length_bytes[1], length_bytes[2], length_bytes[3]]);
    if header_length > MAX_HEADER_BYTES {
        return Err(BundleError::HeaderOversized { size: header_length.into(), limit: MAX_HEADER_BYTES.into() });
    }
    let header_end = PREFIX_BYTES + header_length as usize;
    let Some(header_bytes) = bytes.get(PREFIX_BYTES..header_end) else {
        return Err(BundleError::Truncated("the header".into()));
    };
    let header: Header =
        serde_json::from_slice(header_bytes).map_err(|e| BundleError::BadHeader(format!("not valid JSON: {e}")))?;
    if header.to_canonical_json() != header_bytes {
        return Err(BundleError::BadHeader("not in canonical form".into()));
    }
    header.validate()?;

    let mut entry_ranges = Vec::with_capacity(header.entries.len());
    let mut offset = header_end as u64;
    for entry in &header.entries {
        // Sizes are each at most MAX_BUNDLE_BYTES and there are at most MAX_ENTRIES, so the
        // sum cannot overflow a u64; the file length bounds it before it becomes a usize.
        let end = offset + entry.size;
        if end > total {
            return Err(BundleError::Truncated(format!("entry {:?}", entry.name)));
        }
        entry_ranges.push(offset as usize..end as usize);
        offset = end;
    }
    let entries_end = offset as usize;
    let signature = match &bytes[entries_end..] {
        [] => SignatureBlock::Missing,
        rest if rest.len() < SIGNATURE_BLOCK_BYTES => {
            return Err(BundleError::Truncated("the signature block".into()));
        }
        rest if rest.len() > SIGNATURE_BLOCK_BYTES => {
            return Err(BundleError::TrailingBytes((rest.len() - SIGNATURE_BLOCK_BYTES) as u64));
        }
        block => decode_signature_block(block),
    };
    Ok(Frame { format_version, header, signed: &bytes[..entries_end], entry_ranges, signature })
}

fn decode_signature_block(block: &[u8]) -> SignatureBlock {
    let (tag, rest) = block.split_at(SIGNATURE_MAGIC.len());
    let (key, signature) = rest.split_at(32);
    if rest.iter().all(|&b| b == 0) && (tag == SIGNATURE_MAGIC || tag.iter().all(|&b| b == 0)) {
        return SignatureBlock::Zeroed;
    }
    if tag != SIGNATURE_MAGIC {
        return SignatureBlock::Malformed;
    }
    let mut public_key = [0u8; 32];
    public_key.copy_from_slice(key);
    let mut signature_bytes = [0u8; 64];
    signature_bytes.copy_from_slice(signature);
    SignatureBlock::Present { public_key, signature: signature_bytes }
}
