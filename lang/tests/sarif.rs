//! `--format sarif`: the log validates against the SARIF 2.1.0 JSON schema (vendored from
//! Microsoft's sarif-sdk, `sarif-2.1.0.json`), and carries the rules, levels and regions
//! code-scanning services need.

mod common;

use common::FakeTargets;
use ppis_lang::diag::CODES;
use ppis_lang::sarif::{render, SarifFile};
use ppis_lang::{check_source, CheckOptions};
use serde_json::Value;

fn schema_validator() -> jsonschema::Validator {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sarif-2.1.0.schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("vendored schema")).expect("schema is JSON");
    jsonschema::options().should_validate_formats(true).build(&schema).expect("the schema compiles")
}

fn assert_valid(log: &str) -> Value {
    let instance: Value = serde_json::from_str(log).expect("SARIF output is JSON");
    let validator = schema_validator();
    let errors: Vec<String> =
        validator.iter_errors(&instance).map(|error| format!("{} at {}", error, error.instance_path())).collect();
    assert!(errors.is_empty(), "schema violations:\n{}\n{log}", errors.join("\n"));
    instance
}

const BROKEN: &str = "map calls: count[u32] max 8;\nprobe tracepoint:raw_syscalls:sys_enter {\n    let unused = pid;\n    cals[pid].inc();\n    calls[comm].inc();\n}\n";
const NON_ASCII: &str = "// é\nprobe tracepoint:raw_syscalls:sys_enter { x = 1; }\n";

fn diagnostics(source: &str) -> Vec<ppis_lang::Diagnostic> {
    check_source(source, &FakeTargets, &CheckOptions::default()).1
}

#[test]
fn log_validates_against_the_schema() {
    let broken = diagnostics(BROKEN);
    let non_ascii = diagnostics(NON_ASCII);
    assert!(broken.len() >= 3, "{broken:?}");
    let log = render(&[
        SarifFile { name: "probes/broken one.ppl", source: BROKEN, diagnostics: &broken },
        SarifFile { name: "/abs/non_ascii.ppl", source: NON_ASCII, diagnostics: &non_ascii },
        SarifFile { name: "clean.ppl", source: "", diagnostics: &[] },
    ]);
    assert_valid(&log);
}

#[test]
fn an_invalid_log_is_caught() {
    // The validator must be able to fail: a level SARIF does not know.
    let mut log: Value = serde_json::from_str(&render(&[SarifFile {
        name: "a.ppl",
        source: BROKEN,
        diagnostics: &diagnostics(BROKEN),
    }]))
    .unwrap();
    log["runs"][0]["results"][0]["level"] = Value::from("fatal");
    assert!(!schema_validator().is_valid(&log));
}

#[test]
fn rules_results_and_regions() {
    let broken = diagnostics(BROKEN);
    let log =
        assert_valid(&render(&[SarifFile { name: "probes/broken one.ppl", source: BROKEN, diagnostics: &broken }]));
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "ppisc");
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), CODES.len(), "one rule per code");
    for (rule, info) in rules.iter().zip(CODES) {
        assert_eq!(rule["id"], info.code);
        assert_eq!(rule["shortDescription"]["text"], info.title);
        assert!(rule["help"]["text"].as_str().is_some_and(|help| help.contains("ppisc explain")), "{rule}");
    }
    let results = run["results"].as_array().expect("results");
    assert_eq!(results.len(), broken.len());
    let undeclared = results.iter().find(|r| r["ruleId"] == "E0102").expect("E0102 result");
    assert_eq!(undeclared["level"], "error");
    assert_eq!(rules[undeclared["ruleIndex"].as_u64().unwrap() as usize]["id"], "E0102");
    let location = &undeclared["locations"][0]["physicalLocation"];
    assert_eq!(location["artifactLocation"]["uri"], "probes/broken%20one.ppl");
    // `cals` on line 4, columns 5 to 9 (end exclusive).
    assert_eq!(location["region"], serde_json::json!({"startLine": 4, "startColumn": 5, "endLine": 4, "endColumn": 9}));
    let unused = results.iter().find(|r| r["ruleId"] == "W0001").expect("W0001 result");
    assert_eq!(unused["level"], "warning");
}

#[test]
fn snapshot_of_one_result() {
    let broken = diagnostics(BROKEN);
    let mut log: Value =
        serde_json::from_str(&render(&[SarifFile { name: "broken.ppl", source: BROKEN, diagnostics: &broken }]))
            .unwrap();
    // Rule indices move whenever a code is added; `rules_results_and_regions` checks them.
    for result in log["runs"][0]["results"].as_array_mut().expect("results") {
        result.as_object_mut().expect("result object").remove("ruleIndex");
    }
    insta::assert_snapshot!(serde_json::to_string_pretty(&log["runs"][0]["results"]).unwrap());
}
