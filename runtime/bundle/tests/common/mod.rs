//! Fixtures shared by the bundle tests: a sample bundle, keys, and a hand assembler for
//! crafting bundles the writer would refuse.

#![allow(dead_code)]

use std::collections::BTreeMap;

use ppis_bundle::{
    append_signature, sha256_hex, BundleContents, EntryRecord, Header, SigningKey, TrustList, FORMAT_VERSION, MAGIC,
};
use ppis_manifest::{Attach, Field, Manifest, MapInfo, MapKind, ProbeInfo, ScalarType, ValueLayout, MANIFEST_VERSION};

pub fn trusted_key() -> SigningKey {
    SigningKey::from_seed([0x11; 32])
}

pub fn untrusted_key() -> SigningKey {
    SigningKey::from_seed([0x22; 32])
}

pub fn trust() -> TrustList {
    [trusted_key().public_key()].into_iter().collect()
}

pub fn sample_manifest() -> Manifest {
    Manifest {
        version: MANIFEST_VERSION,
        budget_percent: 0.5,
        probes: vec![ProbeInfo {
            program: "probe0".into(),
            attach: Attach::Uprobe { path: "/usr/bin/workload".into(), symbol: "handle_request".into() },
            rate_per_sec: Some(500),
            line: 3,
            activation: None,
        }],
        maps: vec![MapInfo {
            name: "latency".into(),
            object_name: "latency".into(),
            kind: MapKind::Hist,
            per_cpu: true,
            key: vec![Field { offset: 0, ty: ScalarType::Int { bytes: 8, signed: false } }],
            key_size: 16,
            bucket_offset: Some(8),
            value_size: 8,
            value: ValueLayout::Scalar { ty: ScalarType::Int { bytes: 8, signed: false } },
        }],
        events: None,
    }
}

pub fn sample_contents() -> BundleContents {
    // Stand-in object bytes: the reader treats the object as opaque, so only size and content
    // variety matter (every byte value appears, so flips land on all kinds of bytes).
    let mut object = b"\x7fELF\x02\x01\x01\0".to_vec();
    object.extend((0..=255u8).cycle().take(600));
    BundleContents {
        name: "latency".into(),
        compiler_version: "ppisc 0.1.0".into(),
        cost_profile_hash: sha256_hex(b"cost profile of the test host"),
        source_hash: sha256_hex(b"uprobe:/usr/bin/workload:handle_request { latency = hist(arg0) }"),
        manifest: sample_manifest(),
        object,
        certificate: br#"{"version":1,"probes":[{"program":"probe0","max_instructions":42}]}"#.to_vec(),
        extra: BTreeMap::from([("proofs/latency.v".to_string(), b"Theorem probe0_terminates : True.\n".to_vec())]),
    }
}

/// Header with the metadata of [`sample_contents`] and the given entries, hashed honestly.
pub fn honest_header(entries: &[(&str, &[u8])]) -> Header {
    let contents = sample_contents();
    Header {
        name: contents.name,
        compiler_version: contents.compiler_version,
        cost_profile_hash: contents.cost_profile_hash,
        source_hash: contents.source_hash,
        entries: entries
            .iter()
            .map(|(name, bytes)| EntryRecord {
                name: name.to_string(),
                size: bytes.len() as u64,
                sha256: sha256_hex(bytes),
            })
            .collect(),
    }
}

/// The required entries of the sample bundle, with their bytes, in canonical order.
pub fn sample_required_entries() -> Vec<(&'static str, Vec<u8>)> {
    let contents = sample_contents();
    vec![
        ("certificate.json", contents.certificate),
        ("manifest.json", contents.manifest.to_json().into_bytes()),
        ("object.o", contents.object),
    ]
}

/// Assembles unsigned bundle bytes from a header (encoded canonically) and entry contents,
/// bypassing every check of the writer.
pub fn assemble_unsigned(header: &Header, entry_bytes: &[&[u8]]) -> Vec<u8> {
    assemble_unsigned_raw(&header.to_canonical_json(), entry_bytes)
}

/// Like [`assemble_unsigned`] with the header bytes given verbatim.
pub fn assemble_unsigned_raw(header_json: &[u8], entry_bytes: &[&[u8]]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(header_json.len() as u32).to_le_bytes());
    out.extend_from_slice(header_json);
    for bytes in entry_bytes {
        out.extend_from_slice(bytes);
    }
    out
}

/// A bundle with the given entries and header, signed by the trusted key.
pub fn signed_by_trusted(header: &Header, entry_bytes: &[&[u8]]) -> Vec<u8> {
    append_signature(assemble_unsigned(header, entry_bytes), &trusted_key())
}
