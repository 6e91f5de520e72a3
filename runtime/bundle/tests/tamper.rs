//! Every way of damaging or forging a bundle that we can think of is refused, with the error
//! that names the damage.

mod common;

use common::*;
use ppis_bundle::{
    append_signature, inspect, read_bundle, sha256_hex, write_bundle, BundleError, TrustList, MAX_BUNDLE_BYTES,
    MAX_ENTRIES, MAX_HEADER_BYTES, PREFIX_BYTES, SIGNATURE_BLOCK_BYTES,
};

/// Byte offsets of the sections of the sample bundle.
struct Layout {
    header_end: usize,
    entry_ends: Vec<usize>,
    signature_start: usize,
    total: usize,
}

fn sample() -> (Vec<u8>, Layout) {
    let bytes = write_bundle(&sample_contents(), &trusted_key()).unwrap();
    let header_length = u32::from_le_bytes(bytes[10..14].try_into().unwrap()) as usize;
    let header_end = PREFIX_BYTES + header_length;
    let header: ppis_bundle::Header = serde_json::from_slice(&bytes[PREFIX_BYTES..header_end]).unwrap();
    let mut entry_ends = Vec::new();
    let mut offset = header_end;
    for entry in &header.entries {
        offset += entry.size as usize;
        entry_ends.push(offset);
    }
    let total = bytes.len();
    assert_eq!(offset + SIGNATURE_BLOCK_BYTES, total);
    (bytes, Layout { header_end, entry_ends, signature_start: offset, total })
}

fn kind(error: &BundleError) -> &'static str {
    match error {
        BundleError::BadMagic => "BadMagic",
        BundleError::UnknownFormatVersion(_) => "UnknownFormatVersion",
        BundleError::Truncated(_) => "Truncated",
        BundleError::Oversized { .. } | BundleError::OversizedStream { .. } => "Oversized",
        BundleError::HeaderOversized { .. } => "HeaderOversized",
        BundleError::TooManyEntries { .. } => "TooManyEntries",
        BundleError::BadHeader(_) => "BadHeader",
        BundleError::BadEntryName { .. } => "BadEntryName",
        BundleError::MissingEntry(_) => "MissingEntry",
        BundleError::TrailingBytes(_) => "TrailingBytes",
        BundleError::Unsigned => "Unsigned",
        BundleError::UntrustedSigner(_) => "UntrustedSigner",
        BundleError::BadSignature => "BadSignature",
        BundleError::HashMismatch(_) => "HashMismatch",
        BundleError::BadManifest(_) => "BadManifest",
        BundleError::Io(_) => "Io",
    }
}

#[test]
fn every_single_byte_flip_is_refused_with_the_error_of_its_section() {
    let (original, layout) = sample();
    let key_start = layout.signature_start + 8;
    let signature_start = key_start + 32;
    // Every position, with a low-bit flip (keeps JSON text mostly well-formed, so it reaches
    // the signature check) and a high-bit flip (breaks UTF-8 and lengths).
    let mut checked = 0;
    for position in 0..layout.total {
        for mask in [0x01u8, 0x80] {
            let mut bytes = original.clone();
            bytes[position] ^= mask;
            let error = match read_bundle(&bytes, &trust()) {
                Ok(_) => panic!("flip {mask:#04x} at {position} was accepted"),
                Err(error) => error,
            };
            let allowed: &[&str] = if position < 8 {
                &["BadMagic"]
            } else if position < 10 {
                &["UnknownFormatVersion"]
            } else if position < PREFIX_BYTES {
                &["HeaderOversized", "Truncated", "BadHeader"]
            } else if position < layout.header_end {
                // A flip in the header may break the JSON, the names, the sizes (the entries
                // then end elsewhere) or keep a well-formed header that no longer matches the
                // signature.
                &["BadHeader", "BadEntryName", "MissingEntry", "Truncated", "TrailingBytes", "BadSignature"]
            } else if position < key_start {
                // Entry bytes (signed content) and the signature block's tag.
                &["BadSignature"]
            } else if position < signature_start {
                &["UntrustedSigner"]
            } else {
                &["BadSignature"]
            };
            assert!(
                allowed.contains(&kind(&error)),
                "flip {mask:#04x} at {position}: got {} ({error}), expected one of {allowed:?}",
                kind(&error)
            );
            // The trust-free parser must never call a damaged bundle intact.
            if let Ok(inspection) = inspect(&bytes) {
                assert!(!inspection.is_intact(), "inspect calls flip at {position} intact");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * layout.total);
}

#[test]
fn a_flipped_entry_byte_is_caught_by_the_signature_and_the_hash() {
    // With a trusted signer that re-signs after the flip, the hash still catches it.
    let (original, layout) = sample();
    for (index, &end) in layout.entry_ends.iter().enumerate() {
        let start = if index == 0 { layout.header_end } else { layout.entry_ends[index - 1] };
        if start == end {
            continue;
        }
        let mut unsigned = original[..layout.signature_start].to_vec();
        unsigned[(start + end) / 2] ^= 0x04;
        let resigned = append_signature(unsigned, &trusted_key());
        let error = read_bundle(&resigned, &trust()).unwrap_err();
        assert!(matches!(error, BundleError::HashMismatch(_)), "entry {index}: {error}");
    }
}

#[test]
fn truncation_at_every_section_boundary_and_random_points_is_refused() {
    let (original, layout) = sample();
    let mut cuts =
        vec![0, 1, 7, 8, 9, 10, 13, PREFIX_BYTES, PREFIX_BYTES + 1, layout.header_end - 1, layout.header_end];
    cuts.extend(layout.entry_ends.iter().flat_map(|&end| [end - 1, end, end + 1]));
    cuts.extend([layout.signature_start + 8, layout.signature_start + 40, layout.total - 1]);
    // Deterministic pseudo-random points (a fixed LCG keeps failures reproducible).
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..64 {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        cuts.push((state >> 33) as usize % layout.total);
    }
    for cut in cuts {
        let error = read_bundle(&original[..cut], &trust()).unwrap_err();
        if cut == layout.signature_start {
            // Cut exactly before the signature block: the bundle is simply unsigned.
            assert_eq!(error, BundleError::Unsigned, "cut at {cut}");
        } else {
            assert!(matches!(error, BundleError::Truncated(_)), "cut at {cut}: {error}");
        }
    }
}

#[test]
fn truncation_messages_name_the_section() {
    let (original, layout) = sample();
    let message = |cut: usize| read_bundle(&original[..cut], &trust()).unwrap_err().to_string();
    insta::assert_snapshot!([
        message(0),
        message(9),
        message(12),
        message(layout.header_end - 1),
        message(layout.entry_ends[1] - 1),
        message(layout.total - 1),
    ]
    .join("\n"));
}

#[test]
fn oversized_files_and_headers_are_refused_before_parsing() {
    let (original, _) = sample();
    let mut huge = original.clone();
    huge.resize(MAX_BUNDLE_BYTES as usize + 1, 0);
    assert_eq!(
        read_bundle(&huge, &trust()),
        Err(BundleError::Oversized { size: MAX_BUNDLE_BYTES + 1, limit: MAX_BUNDLE_BYTES })
    );
    assert!(matches!(inspect(&huge), Err(BundleError::Oversized { .. })));

    let mut big_header = original.clone();
    big_header[10..14].copy_from_slice(&(MAX_HEADER_BYTES + 1).to_le_bytes());
    assert_eq!(
        read_bundle(&big_header, &trust()),
        Err(BundleError::HeaderOversized { size: u64::from(MAX_HEADER_BYTES) + 1, limit: MAX_HEADER_BYTES.into() })
    );
    big_header[10..14].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(read_bundle(&big_header, &trust()), Err(BundleError::HeaderOversized { .. })));

    // The writer refuses to produce what the reader would refuse, before allocating it.
    let mut contents = sample_contents();
    contents.object = vec![0; MAX_BUNDLE_BYTES as usize];
    assert!(matches!(write_bundle(&contents, &trusted_key()), Err(BundleError::Oversized { .. })));
}

#[test]
fn too_many_entries_are_refused_by_writer_and_reader() {
    let mut contents = sample_contents();
    for index in 0..MAX_ENTRIES {
        contents.extra.insert(format!("extra/{index:04}"), vec![]);
    }
    assert_eq!(
        write_bundle(&contents, &trusted_key()),
        Err(BundleError::TooManyEntries { count: MAX_ENTRIES + 4, limit: MAX_ENTRIES })
    );
    let mut entries: Vec<(String, Vec<u8>)> =
        sample_required_entries().into_iter().map(|(name, bytes)| (name.to_string(), bytes)).collect();
    entries.extend((0..MAX_ENTRIES).map(|index| (format!("x/{index:04}"), vec![])));
    let pairs: Vec<(&str, &[u8])> = entries.iter().map(|(name, bytes)| (name.as_str(), bytes.as_slice())).collect();
    let header = honest_header(&pairs);
    let bodies: Vec<&[u8]> = pairs.iter().map(|(_, bytes)| *bytes).collect();
    assert!(matches!(
        read_bundle(&signed_by_trusted(&header, &bodies), &trust()),
        Err(BundleError::TooManyEntries { .. })
    ));
}

#[test]
fn appended_garbage_is_refused() {
    let (original, _) = sample();
    for garbage in [&b"\0"[..], b"more", &[0xff; 200]] {
        let mut bytes = original.clone();
        bytes.extend_from_slice(garbage);
        assert_eq!(read_bundle(&bytes, &trust()), Err(BundleError::TrailingBytes(garbage.len() as u64)));
    }
    // A second signature block appended by someone else is garbage too.
    let mut doubly_signed = original.clone();
    doubly_signed.extend_from_slice(&original[original.len() - SIGNATURE_BLOCK_BYTES..]);
    assert!(matches!(read_bundle(&doubly_signed, &trust()), Err(BundleError::TrailingBytes(104))));
}

#[test]
fn unknown_format_versions_are_refused() {
    let (original, _) = sample();
    for version in [0u16, ppis_bundle::FORMAT_VERSION + 1, 0x0100, u16::MAX] {
        let mut bytes = original.clone();
        bytes[8..10].copy_from_slice(&version.to_le_bytes());
        assert_eq!(read_bundle(&bytes, &trust()), Err(BundleError::UnknownFormatVersion(version)));
        assert_eq!(inspect(&bytes).unwrap_err(), BundleError::UnknownFormatVersion(version));
    }
}

#[test]
fn a_signature_by_an_untrusted_key_is_refused_naming_the_key() {
    let bytes = write_bundle(&sample_contents(), &untrusted_key()).unwrap();
    let expected = BundleError::UntrustedSigner(untrusted_key().public_key().id());
    assert_eq!(read_bundle(&bytes, &trust()), Err(expected.clone()));
    assert_eq!(read_bundle(&bytes, &TrustList::new()), Err(expected));
    // Still a well-formed, validly signed bundle: only trust is missing.
    assert!(inspect(&bytes).unwrap().is_intact());
    // Swapping in the trusted key's id without its signature does not help.
    let mut swapped = bytes.clone();
    let key_start = swapped.len() - SIGNATURE_BLOCK_BYTES + 8;
    swapped[key_start..key_start + 32].copy_from_slice(&trusted_key().public_key().to_bytes());
    assert_eq!(read_bundle(&swapped, &trust()), Err(BundleError::BadSignature));
}

#[test]
fn unsigned_bundles_are_refused() {
    let (original, layout) = sample();
    let missing = &original[..layout.signature_start];
    assert_eq!(read_bundle(missing, &trust()), Err(BundleError::Unsigned));

    let mut zeroed = original.clone();
    zeroed[layout.signature_start..].fill(0);
    assert_eq!(read_bundle(&zeroed, &trust()), Err(BundleError::Unsigned));

    let mut zeroed_after_tag = original.clone();
    zeroed_after_tag[layout.signature_start + 8..].fill(0);
    assert_eq!(read_bundle(&zeroed_after_tag, &trust()), Err(BundleError::Unsigned));

    let mut zeroed_signature = original.clone();
    zeroed_signature[layout.signature_start + 40..].fill(0);
    assert_eq!(read_bundle(&zeroed_signature, &trust()), Err(BundleError::BadSignature));

    let mut wrong_tag = original.clone();
    wrong_tag[layout.signature_start..layout.signature_start + 8].copy_from_slice(b"NOTASIG!");
    assert_eq!(read_bundle(&wrong_tag, &trust()), Err(BundleError::BadSignature));
    for bytes in [missing, &zeroed[..]] {
        assert_eq!(inspect(bytes).unwrap().signature, ppis_bundle::SignatureStatus::Unsigned);
    }
}

const PATH_TRICKS: [&str; 9] = ["../x", "/etc/passwd", "a/../../b", "a\\b", "", "a\0b", "a//b", "./x", "x/"];

#[test]
fn the_writer_refuses_path_trick_entry_names() {
    for name in PATH_TRICKS {
        let mut contents = sample_contents();
        contents.extra.insert(name.to_string(), b"payload".to_vec());
        let error = write_bundle(&contents, &trusted_key()).unwrap_err();
        assert!(matches!(&error, BundleError::BadEntryName { name: found, .. } if found == name), "{name:?}: {error}");
    }
    let mut reserved = sample_contents();
    reserved.extra.insert("object.o".into(), b"evil".to_vec());
    assert!(matches!(write_bundle(&reserved, &trusted_key()), Err(BundleError::BadEntryName { .. })));
}

#[test]
fn the_reader_refuses_path_trick_entry_names_even_when_validly_signed() {
    let required = sample_required_entries();
    for name in PATH_TRICKS {
        let payload = b"payload".to_vec();
        let mut entries: Vec<(&str, &[u8])> = required.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        entries.push((name, &payload));
        // Keep the list sorted so that only the name itself is wrong.
        entries.sort_by(|a, b| a.0.cmp(b.0));
        let header = honest_header(&entries);
        let bodies: Vec<&[u8]> = entries.iter().map(|(_, bytes)| *bytes).collect();
        let bytes = signed_by_trusted(&header, &bodies);
        let error = read_bundle(&bytes, &trust()).unwrap_err();
        assert!(matches!(&error, BundleError::BadEntryName { name: found, .. } if found == name), "{name:?}: {error}");
        assert_eq!(inspect(&bytes).unwrap_err(), error);
        assert!(!error.to_string().contains('\n'), "one line: {error}");
    }
}

#[test]
fn the_reader_refuses_duplicate_unsorted_missing_and_nested_entries() {
    let required = sample_required_entries();
    let [(cert_name, cert), (manifest_name, manifest), (object_name, object)] =
        [&required[0], &required[1], &required[2]].map(|(n, b)| (*n, b.as_slice()));
    type Entries<'a> = Vec<(&'a str, &'a [u8])>;
    let cases: Vec<(Entries, &str)> = vec![
        (
            vec![(cert_name, cert), (manifest_name, manifest), (object_name, object), (object_name, object)],
            "BadEntryName",
        ),
        (vec![(manifest_name, manifest), (cert_name, cert), (object_name, object)], "BadHeader"),
        (vec![(cert_name, cert), (object_name, object)], "MissingEntry"),
        (
            vec![(cert_name, cert), (manifest_name, manifest), (object_name, object), ("object.o/x", b"x")],
            "BadEntryName",
        ),
    ];
    for (entries, expected) in cases {
        let header = honest_header(&entries);
        let bodies: Vec<&[u8]> = entries.iter().map(|(_, bytes)| *bytes).collect();
        let error = read_bundle(&signed_by_trusted(&header, &bodies), &trust()).unwrap_err();
        assert_eq!(kind(&error), expected, "{error}");
    }
}

#[test]
fn the_reader_refuses_non_canonical_or_unknown_headers_even_when_validly_signed() {
    let required = sample_required_entries();
    let entries: Vec<(&str, &[u8])> = required.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let bodies: Vec<&[u8]> = entries.iter().map(|(_, bytes)| *bytes).collect();
    let header = honest_header(&entries);
    let canonical = String::from_utf8(header.to_canonical_json()).unwrap();
    let pretty = serde_json::to_string_pretty(&header).unwrap();
    let with_unknown_field = canonical.replacen('{', r#"{"signed_by":"ops","#, 1);
    let escaped = canonical.replacen("latency", "l\\u0061tency", 1);
    let uppercase_hash = canonical.replacen(&header.entries[0].sha256, &header.entries[0].sha256.to_uppercase(), 1);
    let escape_in_metadata = canonical.replacen("ppisc 0.1.0", "ppisc \\u001b[31m", 1);
    for header_json in [pretty, with_unknown_field, escaped, uppercase_hash, escape_in_metadata] {
        let bytes = append_signature(assemble_unsigned_raw(header_json.as_bytes(), &bodies), &trusted_key());
        let error = read_bundle(&bytes, &trust()).unwrap_err();
        assert!(matches!(error, BundleError::BadHeader(_)), "{header_json}: {error}");
    }
}

#[test]
fn a_header_whose_hash_does_not_match_is_refused_even_when_signed_by_a_trusted_key() {
    let required = sample_required_entries();
    let mut entries: Vec<(&str, &[u8])> = required.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let mut header = honest_header(&entries);
    // The header promises one object, the bundle carries another of the same size.
    let mut other_object = required[2].1.clone();
    other_object[20] ^= 0xff;
    entries[2].1 = &other_object;
    header.entries[2].sha256 = sha256_hex(&required[2].1);
    let bodies: Vec<&[u8]> = entries.iter().map(|(_, bytes)| *bytes).collect();
    let bytes = signed_by_trusted(&header, &bodies);
    assert_eq!(read_bundle(&bytes, &trust()), Err(BundleError::HashMismatch("object.o".into())));
    let inspection = inspect(&bytes).unwrap();
    assert!(!inspection.is_intact());
    assert!(!inspection.entries[2].hash_matches);
}

#[test]
fn a_signed_bundle_with_a_bad_manifest_is_refused() {
    let required = sample_required_entries();
    let stale_manifest = sample_manifest().to_json().replace("\"version\": 1", "\"version\": 7");
    for manifest in [&b"not json"[..], &[0xff, 0xfe], stale_manifest.as_bytes()] {
        let entries: Vec<(&str, &[u8])> =
            vec![(required[0].0, &required[0].1), ("manifest.json", manifest), (required[2].0, &required[2].1)];
        let bodies: Vec<&[u8]> = entries.iter().map(|(_, bytes)| *bytes).collect();
        let bytes = signed_by_trusted(&honest_header(&entries), &bodies);
        assert!(matches!(read_bundle(&bytes, &trust()), Err(BundleError::BadManifest(_))));
        assert!(inspect(&bytes).unwrap().manifest.is_err());
    }
}

#[test]
fn every_error_displays_as_one_clear_line() {
    let (original, layout) = sample();
    let mut errors = vec![
        read_bundle(b"ELF\x7f", &trust()).unwrap_err(),
        read_bundle(&original[..layout.signature_start], &trust()).unwrap_err(),
        read_bundle(&write_bundle(&sample_contents(), &untrusted_key()).unwrap(), &trust()).unwrap_err(),
    ];
    let mut bad_signature = original.clone();
    bad_signature[layout.total - 1] ^= 1;
    errors.push(read_bundle(&bad_signature, &trust()).unwrap_err());
    let mut version = original.clone();
    version[8] = 9;
    errors.push(read_bundle(&version, &trust()).unwrap_err());
    let mut garbage = original.clone();
    garbage.push(0);
    errors.push(read_bundle(&garbage, &trust()).unwrap_err());
    let mut contents = sample_contents();
    contents.extra.insert("../x".into(), vec![]);
    errors.push(write_bundle(&contents, &trusted_key()).unwrap_err());
    errors.extend([
        BundleError::HashMismatch("object.o".into()),
        BundleError::Oversized { size: MAX_BUNDLE_BYTES + 1, limit: MAX_BUNDLE_BYTES },
        BundleError::MissingEntry("manifest.json"),
    ]);
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    for line in &lines {
        assert!(!line.contains('\n') && !line.is_empty(), "{line:?}");
    }
    insta::assert_snapshot!(lines.join("\n"));
}
