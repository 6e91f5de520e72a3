//! Property tests: the reader never panics on arbitrary bytes and never accepts a bundle that
//! differs from a signed one.

mod common;

use common::*;
use ppis_bundle::{inspect, read_bundle, write_bundle};
use proptest::prelude::*;

fn valid_bundle() -> Vec<u8> {
    write_bundle(&sample_contents(), &trusted_key()).unwrap()
}

/// One edit of a byte string: flip bits, overwrite, insert, delete, cut or extend.
#[derive(Clone, Debug)]
enum Edit {
    Xor { at: usize, mask: u8 },
    Set { at: usize, value: u8 },
    Insert { at: usize, bytes: Vec<u8> },
    Delete { at: usize, len: usize },
    Truncate { at: usize },
    Append { bytes: Vec<u8> },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, mask)| Edit::Xor { at, mask }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Edit::Set { at, value }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(at, bytes)| Edit::Insert { at, bytes }),
        (any::<usize>(), 1..32usize).prop_map(|(at, len)| Edit::Delete { at, len }),
        any::<usize>().prop_map(|at| Edit::Truncate { at }),
        prop::collection::vec(any::<u8>(), 1..16).prop_map(|bytes| Edit::Append { bytes }),
    ]
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    let position = |at: usize, len: usize| if len == 0 { 0 } else { at % len };
    match edit {
        Edit::Xor { at, mask } if !bytes.is_empty() => {
            let at = position(*at, bytes.len());
            bytes[at] ^= mask;
        }
        Edit::Set { at, value } if !bytes.is_empty() => {
            let at = position(*at, bytes.len());
            bytes[at] = *value;
        }
        Edit::Insert { at, bytes: inserted } => {
            let at = position(*at, bytes.len() + 1);
            bytes.splice(at..at, inserted.iter().copied());
        }
        Edit::Delete { at, len } if !bytes.is_empty() => {
            let at = position(*at, bytes.len());
            let end = (at + len).min(bytes.len());
            bytes.drain(at..end);
        }
        Edit::Truncate { at } => {
            let at = position(*at, bytes.len());
            bytes.truncate(at);
        }
        Edit::Append { bytes: appended } => bytes.extend_from_slice(appended),
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_and_are_never_accepted(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        prop_assert!(read_bundle(&bytes, &trust()).is_err());
        let _ = inspect(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_prefix_never_panic(cut in 0usize..4096, tail in prop::collection::vec(any::<u8>(), 0..512)) {
        // Random bytes alone rarely pass the magic; a real prefix drives them deeper.
        let mut bytes = valid_bundle();
        bytes.truncate(cut);
        bytes.extend_from_slice(&tail);
        prop_assert!(read_bundle(&bytes, &trust()).is_err() || bytes == valid_bundle());
        let _ = inspect(&bytes);
    }

    #[test]
    fn mutated_bundles_are_never_accepted(edits in prop::collection::vec(edit(), 1..4)) {
        let original = valid_bundle();
        let mut bytes = original.clone();
        for edit in &edits {
            apply(&mut bytes, edit);
        }
        prop_assume!(bytes != original);
        let result = read_bundle(&bytes, &trust());
        prop_assert!(result.is_err(), "accepted after {:?}", edits);
        if let Ok(inspection) = inspect(&bytes) {
            prop_assert!(!inspection.is_intact(), "inspect calls it intact after {:?}", edits);
        }
    }
}
