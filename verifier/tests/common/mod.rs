//! Shared by the verifier's integration tests: the fixed test cost profile and options.

use ppis_manifest::profile::CostProfile;
use std::path::PathBuf;

pub fn filetests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/filetests/verify")
}

/// Round numbers, so expected costs can be checked by hand.
pub fn test_profile() -> CostProfile {
    let text = std::fs::read_to_string(filetests_dir().join("test-profile.json")).expect("test profile exists");
    CostProfile::from_json(&text).expect("test profile is valid")
}
