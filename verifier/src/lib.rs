//! The ppis verifier: facts proven about IR functions, reported as diagnostics on the source.
//!
//! This first pass proves structural facts: the CFG is acyclic (so every probe terminates),
//! every map value pointer is null-checked before use, and instruction count and stack use
//! are within the kernel's limits.
//! Boundary: reads the IR, never changes it; knows nothing of eBPF encodings.

mod nullness;
mod resources;
mod termination;

use ppis_ir::{Function, Module};
use ppis_lang::Diagnostic;

pub use resources::{MAX_INSTRUCTIONS, MAX_STACK_BYTES};

/// What the verifier established about one function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionFacts {
    pub name: String,
    /// IR instructions plus terminators.
    pub instructions: usize,
    /// Bytes of stack slots.
    pub stack_bytes: u32,
    /// Instructions on the longest path from entry to exit (meaningful when acyclic).
    pub longest_path: usize,
    pub acyclic: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Verdict {
    pub functions: Vec<FunctionFacts>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Verdict {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.is_error())
    }
}

pub fn verify(module: &Module) -> Verdict {
    let mut verdict = Verdict::default();
    for func in &module.functions {
        verdict.functions.push(verify_function(func, &mut verdict.diagnostics));
    }
    verdict
}

fn verify_function(func: &Function, diags: &mut Vec<Diagnostic>) -> FunctionFacts {
    let back_edges = termination::back_edges(func);
    for (from, _) in &back_edges {
        diags.push(termination::cycle_diagnostic(func, *from));
    }
    let acyclic = back_edges.is_empty();
    diags.extend(nullness::check(func));
    let facts = FunctionFacts {
        name: func.name.clone(),
        instructions: resources::instruction_count(func),
        stack_bytes: resources::stack_bytes(func),
        longest_path: if acyclic { resources::longest_path(func) } else { 0 },
        acyclic,
    };
    diags.extend(resources::check(func, &facts));
    facts
}
