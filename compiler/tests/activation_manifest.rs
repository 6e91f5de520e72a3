//! A dormant probe's `activate when anomaly(..)` rule reaches the manifest the runtime reads
//! (`ProbeInfo.activation`), and always-on probes' manifests do not mention it at all.

use ppis_compiler::driver::{compile, CompileOptions};
use ppis_compiler::lower::LowerOptions;
use ppis_lang::targets::{TargetError, Targets, TracepointField};
use ppis_manifest::Activation;

/// Any uprobe target exists; no tracepoints.
struct AnyUprobe;

impl Targets for AnyUprobe {
    fn tracepoint_fields(&self, category: &str, name: &str) -> Result<Vec<TracepointField>, TargetError> {
        Err(TargetError {
            message: format!("no tracepoint {category}:{name} in this test"),
            suggestions: Vec::new(),
            unavailable: false,
        })
    }
    fn check_uprobe(&self, _path: &str, _symbol: &str) -> Result<(), TargetError> {
        Ok(())
    }
}

const SOURCE: &str = "map latency: hist;\nmap deep: count[u64] max 64;\n\n\
    probe uretprobe:/usr/bin/app:handle rate <= 1k/s {\n    latency.record(retval);\n}\n\n\
    probe uprobe:/usr/bin/app:handle rate <= 1k/s activate when anomaly(latency) > 0.85 for 2m {\n    deep[arg0].inc();\n}\n\n\
    probe uprobe:/usr/bin/app:other rate <= 1k/s activate when anomaly(front::requests) > 0.5 for 10s {\n    deep[arg1].inc();\n}\n";

#[test]
fn the_activation_rule_is_in_the_manifest() {
    let options = CompileOptions::for_this_host(LowerOptions::default());
    let (compiled, diagnostics) = compile(SOURCE, &AnyUprobe, &options);
    let compiled = compiled.unwrap_or_else(|| panic!("{diagnostics:?}"));
    let probes = &compiled.lowered.manifest.probes;
    assert_eq!(probes[0].activation, None);
    assert_eq!(
        probes[1].activation,
        Some(Activation { signal: "latency".into(), threshold: 0.85, for_seconds: 120.0 })
    );
    assert_eq!(
        probes[2].activation,
        Some(Activation { signal: "front::requests".into(), threshold: 0.5, for_seconds: 10.0 })
    );
    let json = serde_json::to_value(&compiled.lowered.manifest).unwrap();
    assert!(json["probes"][0].get("activation").is_none(), "always-on probes carry no activation key: {json}");
    assert_eq!(json["probes"][1]["activation"]["for_seconds"], 120.0);
}
