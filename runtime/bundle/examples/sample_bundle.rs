//! Writes a small valid bundle signed by a fixed, publicly known test key: a seed for the fuzzer
//! and a fixture for trying `ppisd`/`ppisc inspect` by hand. Never trust this key in production.
//!
//! Usage: `cargo run -p ppis-bundle --example sample_bundle -- OUT.ppb [OUT.pub]`

use std::collections::BTreeMap;
use std::process::ExitCode;

use ppis_bundle::{sha256_hex, write_bundle, BundleContents, SigningKey};
use ppis_manifest::{Attach, Manifest, ProbeInfo, MANIFEST_VERSION};

/// Same seed as the fuzz target's trusted key.
const TEST_KEY_SEED: [u8; 32] = [0x11; 32];

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(bundle_path) = args.next() else {
        eprintln!("usage: sample_bundle OUT.ppb [OUT.pub]");
        return ExitCode::FAILURE;
    };
    let key = SigningKey::from_seed(TEST_KEY_SEED);
    let contents = BundleContents {
        name: "sample".into(),
        compiler_version: "ppisc 0.1.0".into(),
        cost_profile_hash: sha256_hex(b"sample cost profile"),
        source_hash: sha256_hex(b"tracepoint:sched:sched_switch { switches = count() }"),
        manifest: Manifest {
            version: MANIFEST_VERSION,
            budget_percent: 1.0,
            probes: vec![ProbeInfo {
                program: "probe0".into(),
                attach: Attach::Tracepoint { category: "sched".into(), name: "sched_switch".into() },
                rate_per_sec: Some(10_000),
                line: 1,
                activation: None,
            }],
            maps: vec![],
            events: None,
        },
        object: b"\x7fELF placeholder object".to_vec(),
        certificate: br#"{"version":1}"#.to_vec(),
        extra: BTreeMap::from([("proofs/sample.v".to_string(), b"(* proof *)\n".to_vec())]),
    };
    let result = write_bundle(&contents, &key).map_err(|e| e.to_string()).and_then(|bytes| {
        std::fs::write(&bundle_path, bytes).map_err(|e| format!("{bundle_path}: {e}"))?;
        if let Some(public_path) = args.next() {
            std::fs::write(&public_path, key.public_key().to_key_file()).map_err(|e| format!("{public_path}: {e}"))?;
        }
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("sample_bundle: {message}");
            ExitCode::FAILURE
        }
    }
}
