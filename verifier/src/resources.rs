//! Resource limits: instruction count and stack use against the kernel's limits.

use crate::FunctionFacts;
use ppis_ir::Function;
use ppis_lang::Diagnostic;

/// The classic per-program limit; the kernel allows more to privileged loaders, but staying
/// under it keeps verification fast and probes cheap.
pub const MAX_INSTRUCTIONS: usize = 4096;
/// The eBPF stack is 512 bytes.
pub const MAX_STACK_BYTES: u32 = 512;

pub fn instruction_count(func: &Function) -> usize {
    func.cfg.node_weights().map(|b| b.insts.len() + 1).sum()
}

pub fn stack_bytes(func: &Function) -> u32 {
    func.slots.iter().sum()
}

/// Instructions (plus terminators) on the longest entry-to-exit path of an acyclic CFG.
pub fn longest_path(func: &Function) -> usize {
    let order = func.reverse_postorder();
    let mut longest = vec![0usize; func.cfg.node_count()];
    for b in order.iter().rev() {
        let own = func.cfg[*b].insts.len() + 1;
        let tail = func.cfg[*b].term.successors().iter().map(|s| longest[s.index()]).max().unwrap_or(0);
        longest[b.index()] = own + tail;
    }
    longest[func.entry.index()]
}

pub fn check(func: &Function, facts: &FunctionFacts) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    if facts.instructions > MAX_INSTRUCTIONS {
        diags.push(
            Diagnostic::error(
                "E0402",
                format!("probe has {} instructions, more than the limit of {MAX_INSTRUCTIONS}", facts.instructions),
                func.span,
            )
            .label("this probe")
            .with_help("split the work over several probes or shorten string compares and keys"),
        );
    }
    if facts.stack_bytes > MAX_STACK_BYTES {
        diags.push(
            Diagnostic::error(
                "E0403",
                format!(
                    "probe needs {} bytes of stack, more than the {MAX_STACK_BYTES} eBPF allows",
                    facts.stack_bytes
                ),
                func.span,
            )
            .label("this probe")
            .with_help("use shorter strings (str[N]) and fewer string locals or keys"),
        );
    }
    diags
}
