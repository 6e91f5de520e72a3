//! Host cost calibration (being written).
use ppis_manifest::profile::CostProfile;

pub struct CalibrateOptions {
    pub events: u64,
    pub trials: u32,
}

pub fn calibrate(_opts: &CalibrateOptions) -> anyhow::Result<CostProfile> {
    anyhow::bail!("calibration is not implemented yet")
}
