//! Fuzz target: `read_bundle` and `inspect` on arbitrary bytes must never panic, and must agree.
//!
//! Seed with `fuzz/seeds/bundle_reader/` (a valid bundle signed by the trusted test key below) so
//! that mutations start from real framing: `cargo +nightly fuzz run bundle_reader
//! fuzz/corpus/bundle_reader fuzz/seeds/bundle_reader`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ppis_bundle::{inspect, read_bundle, SigningKey, TrustList};

/// The key of the seed bundle (`cargo run -p ppis-bundle --example sample_bundle` writes it).
const TRUSTED_SEED: [u8; 32] = [0x11; 32];

fuzz_target!(|data: &[u8]| {
    let trust: TrustList = [SigningKey::from_seed(TRUSTED_SEED).public_key()].into_iter().collect();
    let read = read_bundle(data, &trust);
    let inspected = inspect(data);
    // A bundle the strict reader accepts must look intact to the trust-free parser too: the two
    // share the framing code, so a disagreement is a bug in one of them.
    if read.is_ok() {
        match inspected {
            Ok(inspection) => assert!(inspection.is_intact(), "read_bundle accepted what inspect calls damaged"),
            Err(error) => panic!("read_bundle accepted what inspect refuses: {error}"),
        }
    }
});
