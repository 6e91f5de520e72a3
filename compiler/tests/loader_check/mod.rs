//! The bundle loader's checks (`ppis_bundle::pcc`, with the abstraction-carrying invariants)
//! run on a compiled program, as `ppisd` would run them on its bundle: shared by the tests
//! that show the loader accepts what the compiler emits for a language feature.

use ppis_bundle::pcc::{self, HostPolicy};
use ppis_compiler::driver::{self, Compiled};
use ppis_manifest::profile::CostProfile;

/// Panics, with the loader's reason, unless it accepts `compiled` (built from `source` with
/// `profile`) and can annotate every program with invariants.
pub fn assert_loader_accepts(compiled: &Compiled, source: &str, profile: &CostProfile) {
    let object = driver::object(compiled);
    let certificate = driver::certificate_json(compiled, source.as_bytes(), &object, profile).into_bytes();
    let invariants = driver::invariants_json(&object);
    let header = ppis_bundle::Header {
        name: "t".into(),
        compiler_version: "test".into(),
        cost_profile_hash: profile.hash(),
        source_hash: ppis_bundle::sha256_hex(source.as_bytes()),
        entries: vec![],
    };
    let (_, skipped) = pcc::produce_invariants(&object).unwrap();
    assert!(skipped.is_empty(), "programs without invariants: {skipped:?}");
    let policy = HostPolicy { profile, cpus: 2, require_profile_match: true };
    let report = pcc::check_with_invariants(
        &header,
        &compiled.lowered.manifest,
        &object,
        &certificate,
        Some(&invariants),
        &policy,
    );
    if let Err(error) = report {
        panic!("the loader refuses the object: {error}");
    }
}
