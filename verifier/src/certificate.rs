//! Certificates: a JSON record of what was proven about each probe of one compiled object,
//! by which method, with which bounds, against which cost profile, tied by hashes to the
//! source, the IR and the bytecode. Schema: `docs/certificate.md`. Also the human-readable
//! cost explanation behind `ppisc check --explain-cost`.

use crate::cost::HelperCost;
use crate::{fmt, FunctionFacts, ObligationResult, Verdict};
use ppis_ir::{Module, Span};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt::Write;

/// Bumped whenever a field changes meaning.
pub const CERTIFICATE_VERSION: u32 = 1;

/// What the caller knows and the verifier does not: the bytes it compiled and produced.
#[derive(Clone, Copy, Debug)]
pub struct CertificateInputs<'a> {
    /// The `.ppl` source text.
    pub source: &'a [u8],
    /// The eBPF object (or program bytes) the certificate vouches for.
    pub bytecode: &'a [u8],
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Certificate {
    pub version: u32,
    /// `ppis-verifier X.Y.Z`.
    pub tool: String,
    /// True when every probe's every obligation holds (warnings allowed).
    pub accepted: bool,
    pub hashes: Hashes,
    pub cost_profile: ProfileRef,
    pub budget_percent: f64,
    pub cpus: u32,
    pub probes: Vec<ProbeCertificate>,
}

/// `sha256:HEX` of each artefact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hashes {
    pub source: String,
    /// Of `ppis_ir::print_module` of the verified module.
    pub ir: String,
    pub bytecode: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileRef {
    pub hash: String,
    pub host: String,
    pub measured_at: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeCertificate {
    pub program: String,
    pub trigger: String,
    pub rate_per_sec: Option<u64>,
    pub accepted: bool,
    /// Worst-case cost per event; absent when no bound was proven.
    pub cost: Option<CostCertificate>,
    pub overhead_percent: Option<f64>,
    pub obligations: Vec<ObligationResult>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostCertificate {
    pub bound_ns: f64,
    pub trigger_ns: f64,
    pub instructions_ns: f64,
    /// Per helper on the worst path: calls and their total cost.
    pub helpers: Vec<HelperCost>,
    /// Block numbers of the worst path, entry first.
    pub worst_path: Vec<usize>,
    /// How the bound was confirmed, e.g. `z3: cost > bound unsat, cost = bound sat`.
    pub confirmation: String,
}

fn sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    format!("sha256:{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

pub fn certificate(module: &Module, verdict: &Verdict, inputs: &CertificateInputs) -> Certificate {
    let probes: Vec<ProbeCertificate> = verdict.functions.iter().map(probe_certificate).collect();
    Certificate {
        version: CERTIFICATE_VERSION,
        tool: format!("ppis-verifier {}", env!("CARGO_PKG_VERSION")),
        accepted: !verdict.has_errors() && probes.iter().all(|p| p.accepted),
        hashes: Hashes {
            source: sha256(inputs.source),
            ir: sha256(ppis_ir::print_module(module).as_bytes()),
            bytecode: sha256(inputs.bytecode),
        },
        cost_profile: ProfileRef {
            hash: verdict.profile_hash.clone(),
            host: verdict.profile_host.clone(),
            measured_at: verdict.profile_measured_at.clone(),
        },
        budget_percent: verdict.budget_percent,
        cpus: verdict.cpus,
        probes,
    }
}

fn probe_certificate(facts: &FunctionFacts) -> ProbeCertificate {
    use crate::Status;
    ProbeCertificate {
        program: facts.name.clone(),
        trigger: facts.trigger.to_string(),
        rate_per_sec: facts.rate_per_sec,
        accepted: facts.obligations.iter().all(|o| matches!(o.status, Status::Proven | Status::Warning)),
        cost: facts.cost.as_ref().map(|c| CostCertificate {
            bound_ns: c.bound_ns,
            trigger_ns: c.breakdown.trigger_ns,
            instructions_ns: c.breakdown.instructions_ns,
            helpers: c.breakdown.helpers.clone(),
            worst_path: c.worst_blocks.clone(),
            confirmation: match &c.smt {
                crate::smt::SmtOutcome::Confirmed => "z3: cost > bound unsat, cost = bound sat".into(),
                other => format!("z3: not confirmed ({other:?})"),
            },
        }),
        // Rounded so that the JSON text reads back to the same number.
        overhead_percent: facts.overhead_percent.map(|p| (p * 1e9).round() / 1e9),
        obligations: facts.obligations.clone(),
    }
}

impl Certificate {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a certificate serialises")
    }
    pub fn from_json(text: &str) -> Result<Certificate, String> {
        let c: Certificate = serde_json::from_str(text).map_err(|e| format!("bad certificate: {e}"))?;
        if c.version != CERTIFICATE_VERSION {
            return Err(format!("certificate version {} is not supported (expected {CERTIFICATE_VERSION})", c.version));
        }
        Ok(c)
    }
}

/// The worst path of one probe, instruction by instruction with its cost, then the
/// breakdown. `locate` names a span for people (the driver maps it to a source line).
pub fn explain_cost(facts: &FunctionFacts, cpus: u32, locate: &dyn Fn(Span) -> String) -> String {
    let mut out = String::new();
    let Some(cost) = &facts.cost else {
        let _ = writeln!(out, "{}: no cost bound (the probe may not terminate or is malformed)", facts.name);
        return out;
    };
    let _ = writeln!(out, "{}: worst case {} per event", facts.name, fmt::ns(cost.bound_ns));
    let width = cost.worst_path.iter().map(|s| s.ir.len()).max().unwrap_or(0).max(20);
    let trigger = format!("{} trigger", facts.trigger);
    let _ = writeln!(out, "  {:<5} {trigger:<width$}  {:>10}", "", fmt::ns(cost.breakdown.trigger_ns));
    for step in &cost.worst_path {
        let block = format!("bb{}", step.block);
        // Inside a loop a step runs `times` times: its cost is shown per run.
        let cost_text =
            if step.times == 1 { fmt::ns(step.cost_ns) } else { format!("{} ×{}", fmt::ns(step.cost_ns), step.times) };
        let _ = writeln!(out, "  {block:<5} {:<width$}  {cost_text:>10}  {}", step.ir, locate(step.span));
    }
    for l in &cost.loops {
        let _ = writeln!(
            out,
            "  loop at bb{}: {} iterations × {} + final test {} = {}",
            l.header,
            l.trips,
            fmt::ns(crate::cost::nanos(l.iteration_ps)),
            fmt::ns(crate::cost::nanos(l.header_ps)),
            fmt::ns(crate::cost::nanos(l.total_ps))
        );
    }
    // A fold from +0.0: `sum` of no f64s is -0.0, which would print as "-0.0 ns".
    let helpers_ns: f64 = cost.breakdown.helpers.iter().fold(0.0, |total, h| total + h.total_ns);
    let _ = writeln!(
        out,
        "  = trigger {} + instructions {} + helpers {}",
        fmt::ns(cost.breakdown.trigger_ns),
        fmt::ns(cost.breakdown.instructions_ns),
        fmt::ns(helpers_ns)
    );
    if !cost.breakdown.helpers.is_empty() {
        let list: Vec<String> = cost
            .breakdown
            .helpers
            .iter()
            .map(|h| format!("{} ×{} {}", h.helper, h.calls, fmt::ns(h.total_ns)))
            .collect();
        let _ = writeln!(out, "  helpers: {}", list.join(", "));
    }
    match (facts.rate_per_sec, facts.overhead_percent) {
        (Some(rate), Some(p)) => {
            let _ = writeln!(
                out,
                "  overhead: {} × {}/s on {cpus} CPUs = {}",
                fmt::ns(cost.bound_ns),
                fmt::rate(rate),
                fmt::percent(p)
            );
        }
        _ => {
            let _ = writeln!(out, "  overhead: unknown, no declared rate");
        }
    }
    out
}
