//! Writing then reading a bundle gives back the contents, byte-identically on every build.

mod common;

use common::*;
use ppis_bundle::{
    inspect, load_bundle_file, read_bundle, read_limited, write_bundle, BundleError, SignatureStatus, MAGIC,
    MAX_BUNDLE_BYTES, SIGNATURE_BLOCK_BYTES, SIGNATURE_MAGIC,
};

#[test]
fn a_written_bundle_reads_back_to_the_same_contents() {
    let contents = sample_contents();
    let bytes = write_bundle(&contents, &trusted_key()).unwrap();
    assert_eq!(&bytes[..8], &MAGIC);
    assert_eq!(&bytes[bytes.len() - SIGNATURE_BLOCK_BYTES..][..8], &SIGNATURE_MAGIC);

    let bundle = read_bundle(&bytes, &trust()).unwrap();
    assert_eq!(bundle.format_version, ppis_bundle::FORMAT_VERSION);
    assert_eq!(bundle.header.name, contents.name);
    assert_eq!(bundle.header.compiler_version, contents.compiler_version);
    assert_eq!(bundle.header.cost_profile_hash, contents.cost_profile_hash);
    assert_eq!(bundle.header.source_hash, contents.source_hash);
    assert_eq!(bundle.manifest, contents.manifest);
    assert_eq!(bundle.object, contents.object);
    assert_eq!(bundle.certificate, contents.certificate);
    assert_eq!(bundle.extra, contents.extra);
    assert_eq!(bundle.signer, trusted_key().public_key());
    assert_eq!(bundle.entry_sha256("certificate.json"), Some(ppis_bundle::sha256_hex(&contents.certificate).as_str()));
    let names: Vec<&str> = bundle.header.entries.iter().map(|entry| entry.name.as_str()).collect();
    assert_eq!(names, ["certificate.json", "manifest.json", "object.o", "proofs/latency.v"]);
}

#[test]
fn empty_entries_and_no_extras_round_trip() {
    let mut contents = sample_contents();
    contents.extra.clear();
    contents.certificate.clear();
    let bundle = read_bundle(&write_bundle(&contents, &trusted_key()).unwrap(), &trust()).unwrap();
    assert!(bundle.certificate.is_empty() && bundle.extra.is_empty());
    assert_eq!(bundle.object, contents.object);
}

#[test]
fn two_builds_of_the_same_inputs_are_byte_identical() {
    let first = write_bundle(&sample_contents(), &trusted_key()).unwrap();
    let second = write_bundle(&sample_contents(), &trusted_key()).unwrap();
    assert_eq!(first, second);
    // The order extras were inserted in cannot matter (they are kept sorted)...
    let mut reordered = sample_contents();
    reordered.extra.insert("proofs/a.v".into(), b"a".to_vec());
    let mut other_order = sample_contents();
    let proof = other_order.extra.remove("proofs/latency.v").unwrap();
    other_order.extra.insert("proofs/a.v".into(), b"a".to_vec());
    other_order.extra.insert("proofs/latency.v".into(), proof);
    assert_eq!(write_bundle(&reordered, &trusted_key()).unwrap(), write_bundle(&other_order, &trusted_key()).unwrap());
    // ...while any change of input changes the bytes.
    let mut changed = sample_contents();
    changed.source_hash = ppis_bundle::sha256_hex(b"another source");
    assert_ne!(write_bundle(&changed, &trusted_key()).unwrap(), first);
}

#[test]
fn the_layout_is_stable() {
    // Pins the framing and header encoding: a change here is a format change and needs a new
    // format version (and an update of docs/bundle.md).
    let bytes = write_bundle(&sample_contents(), &trusted_key()).unwrap();
    let header_length = u32::from_le_bytes(bytes[10..14].try_into().unwrap()) as usize;
    let header = String::from_utf8(bytes[14..14 + header_length].to_vec()).unwrap();
    let prefix: Vec<String> = bytes[..14].iter().map(|b| format!("{b:02x}")).collect();
    insta::assert_snapshot!(format!(
        "prefix: {}\nheader: {header}\ntotal bytes: {}\nsignature block: {}",
        prefix.join(" "),
        bytes.len(),
        bytes[bytes.len() - SIGNATURE_BLOCK_BYTES..].iter().map(|b| format!("{b:02x}")).collect::<String>()
    ));
}

#[test]
fn inspect_reports_a_valid_bundle() {
    let bytes = write_bundle(&sample_contents(), &trusted_key()).unwrap();
    let inspection = inspect(&bytes).unwrap();
    assert_eq!(inspection.signature, SignatureStatus::Valid(trusted_key().public_key()));
    assert!(inspection.is_intact());
    assert_eq!(inspection.manifest, Ok(sample_manifest()));
    insta::assert_snapshot!(inspection.to_string());
}

#[test]
fn inspect_reports_a_bad_signature_and_the_entry_that_changed() {
    let mut bytes = write_bundle(&sample_contents(), &trusted_key()).unwrap();
    let object_offset = bytes.windows(4).position(|w| w == b"\x7fELF").unwrap();
    bytes[object_offset + 100] ^= 0x40;
    let inspection = inspect(&bytes).unwrap();
    assert_eq!(inspection.signature, SignatureStatus::Invalid(trusted_key().public_key().id()));
    let changed: Vec<&str> =
        inspection.entries.iter().filter(|entry| !entry.hash_matches).map(|entry| entry.name.as_str()).collect();
    assert_eq!(changed, ["object.o"]);
    assert!(!inspection.is_intact());
    insta::assert_snapshot!(inspection.to_string());
}

#[test]
fn files_and_streams_are_read_within_the_limit() {
    let bytes = write_bundle(&sample_contents(), &trusted_key()).unwrap();
    let directory = std::env::temp_dir().join(format!("ppis-bundle-test-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join("latency.ppb");
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(load_bundle_file(&path).unwrap(), bytes);

    // A sparse file over the limit is refused from its size alone, before it is read.
    let big = directory.join("big.ppb");
    let file = std::fs::File::create(&big).unwrap();
    file.set_len(MAX_BUNDLE_BYTES + 1).unwrap();
    assert_eq!(
        load_bundle_file(&big),
        Err(BundleError::Oversized { size: MAX_BUNDLE_BYTES + 1, limit: MAX_BUNDLE_BYTES })
    );
    let missing = load_bundle_file(&directory.join("missing.ppb")).unwrap_err();
    assert!(matches!(&missing, BundleError::Io(message) if message.contains("missing.ppb")), "{missing}");
    std::fs::remove_dir_all(&directory).unwrap();

    assert_eq!(read_limited(&bytes[..]).unwrap(), bytes);
    let endless = std::io::repeat(0).take(MAX_BUNDLE_BYTES + 10);
    assert_eq!(read_limited(endless), Err(BundleError::OversizedStream { limit: MAX_BUNDLE_BYTES }));
}

use std::io::Read as _;

#[test]
fn the_fuzz_seed_is_a_valid_bundle_of_the_current_format() {
    // The fuzzer starts from this file; if the format changes it must be regenerated with
    // `cargo run -p ppis-bundle --example sample_bundle -- fuzz/seeds/bundle_reader/sample.ppb`.
    let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/bundle_reader/sample.ppb");
    let bytes = load_bundle_file(&seed).unwrap();
    let trust: ppis_bundle::TrustList =
        [ppis_bundle::SigningKey::from_seed([0x11; 32]).public_key()].into_iter().collect();
    assert_eq!(read_bundle(&bytes, &trust).unwrap().header.name, "sample");
}
