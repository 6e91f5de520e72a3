//! Each instruction's text as `ppisc ir` prints it, for cost explanations.
//!
//! The IR crate prints whole functions only, so this walks the printed function: after the
//! header and declarations, a `bbN:` line opens block N and each following line is its next
//! instruction, the last one its terminator.

use ppis_ir::{Function, Map};
use std::collections::HashMap;

/// `(block index, instruction index)` to text; the terminator has index `insts.len()`.
pub fn instruction_texts(func: &Function, maps: &[Map]) -> HashMap<(usize, usize), String> {
    let printed = ppis_ir::print_function(func, maps);
    let mut texts = HashMap::new();
    let mut current: Option<(usize, usize)> = None;
    for line in printed.lines() {
        if let Some(label) = line.strip_prefix("bb") {
            let number = label.split(':').next().and_then(|n| n.parse::<usize>().ok());
            current = number.map(|b| (b, 0));
            continue;
        }
        let Some((block, index)) = current.as_mut() else { continue };
        if line == "}" {
            break;
        }
        texts.insert((*block, *index), line.trim().to_string());
        *index += 1;
    }
    texts
}
