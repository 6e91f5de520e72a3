//! Text form of eBPF code, close to llvm-objdump/bpftool syntax: for `ppisc disasm`, snapshot
//! tests, and reading what the code generator emitted.

use crate::codegen::insn::*;
use crate::elf::{MANIFEST_SECTION, MAP_DEF_SIZE};
use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget, SectionKind, SymbolKind};
use std::collections::HashMap;
use std::fmt::Write;

/// One line per instruction (`ld_imm64` takes two slots, shown once), each prefixed by its
/// index. `relocs` names the map an `ld_imm64` at a given index refers to.
pub fn disassemble(insns: &[Insn], relocs: &[(usize, String)]) -> String {
    let names: HashMap<usize, &str> = relocs.iter().map(|(i, n)| (*i, n.as_str())).collect();
    let mut out = String::new();
    let mut i = 0;
    while i < insns.len() {
        let insn = insns[i];
        let text = if insn.is_ld_imm64() {
            match insns.get(i + 1) {
                Some(hi) => {
                    let value = (insn.imm as u32 as u64) | ((hi.imm as u32 as u64) << 32);
                    match names.get(&i) {
                        Some(name) => format!("r{} = map[{name}] ll", insn.dst),
                        None if insn.src == 1 => format!("r{} = map_fd({}) ll", insn.dst, insn.imm),
                        None => format!("r{} = {} ll", insn.dst, hex(value as i64)),
                    }
                }
                None => format!("<truncated ld_imm64 r{}>", insn.dst),
            }
        } else {
            instruction(&insn, i)
        };
        writeln!(out, "{i:>4}: {text}").unwrap();
        i += if insn.is_ld_imm64() { 2 } else { 1 };
    }
    out
}

fn hex(value: i64) -> String {
    if value < 0 {
        format!("-{:#x}", value.unsigned_abs())
    } else {
        format!("{value:#x}")
    }
}

fn size_name(code: u8) -> &'static str {
    match code & 0x18 {
        SIZE_B => "u8",
        SIZE_H => "u16",
        SIZE_W => "u32",
        _ => "u64",
    }
}

fn address(reg: u8, off: i16) -> String {
    if off < 0 {
        format!("r{reg} - {}", (off as i32).unsigned_abs())
    } else {
        format!("r{reg} + {off}")
    }
}

fn unknown(insn: &Insn) -> String {
    format!("<unknown code {:#04x} dst r{} src r{} off {} imm {}>", insn.code, insn.dst, insn.src, insn.off, insn.imm)
}

fn instruction(insn: &Insn, index: usize) -> String {
    let class = insn.code & 0x07;
    let op = insn.code & 0xf0;
    let from_reg = insn.code & SRC_X != 0;
    match class {
        CLASS_ALU64 | CLASS_ALU => {
            let r = if class == CLASS_ALU64 { 'r' } else { 'w' };
            let operand = if from_reg { format!("{r}{}", insn.src) } else { insn.imm.to_string() };
            if insn.off != 0 {
                return unknown(insn);
            }
            let symbol = match op {
                ALU_MOV => return format!("{r}{} = {operand}", insn.dst),
                ALU_NEG => return format!("{r}{0} = -{r}{0}", insn.dst),
                ALU_ADD => "+=",
                ALU_SUB => "-=",
                ALU_MUL => "*=",
                ALU_DIV => "/=",
                ALU_OR => "|=",
                ALU_AND => "&=",
                ALU_LSH => "<<=",
                ALU_RSH => ">>=",
                ALU_MOD => "%=",
                ALU_XOR => "^=",
                ALU_ARSH => "s>>=",
                _ => return unknown(insn),
            };
            format!("{r}{} {symbol} {operand}", insn.dst)
        }
        CLASS_LDX if insn.code & 0xe0 == MODE_MEM => {
            format!("r{} = *({} *)({})", insn.dst, size_name(insn.code), address(insn.src, insn.off))
        }
        CLASS_STX if insn.code & 0xe0 == MODE_MEM => {
            format!("*({} *)({}) = r{}", size_name(insn.code), address(insn.dst, insn.off), insn.src)
        }
        CLASS_ST if insn.code & 0xe0 == MODE_MEM => {
            format!("*({} *)({}) = {}", size_name(insn.code), address(insn.dst, insn.off), insn.imm)
        }
        CLASS_JMP | CLASS_JMP32 => {
            let target = index as i64 + 1 + insn.off as i64;
            let goto = format!("goto {:+} <{target}>", insn.off);
            let r = if class == CLASS_JMP { 'r' } else { 'w' };
            let symbol = match op {
                JMP_JA if class == CLASS_JMP => return goto,
                JMP_CALL if class == CLASS_JMP => {
                    return match (insn.src, helper_id::name(insn.imm)) {
                        (0, Some(name)) => format!("call {name}#{}", insn.imm),
                        (0, None) => format!("call #{}", insn.imm),
                        _ => format!("call pc{:+}", insn.imm),
                    };
                }
                JMP_EXIT if class == CLASS_JMP => return "exit".to_string(),
                JMP_JEQ => "==",
                JMP_JNE => "!=",
                JMP_JGT => ">",
                JMP_JGE => ">=",
                JMP_JLT => "<",
                JMP_JLE => "<=",
                JMP_JSGT => "s>",
                JMP_JSGE => "s>=",
                JMP_JSLT => "s<",
                JMP_JSLE => "s<=",
                JMP_JSET => "&",
                _ => return unknown(insn),
            };
            let operand = if from_reg { format!("{r}{}", insn.src) } else { hex(insn.imm as i64) };
            format!("if {r}{} {symbol} {operand} {goto}", insn.dst)
        }
        _ => unknown(insn),
    }
}

fn map_type_name(id: u32) -> String {
    match id {
        1 => "hash".to_string(),
        2 => "array".to_string(),
        5 => "percpu_hash".to_string(),
        6 => "percpu_array".to_string(),
        other => format!("type {other}"),
    }
}

fn u32_at(data: &[u8], offset: usize) -> u32 {
    data.get(offset..offset + 4).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Disassembles an eBPF object written by [`crate::elf::write_object`] (or any similar
/// relocatable eBPF ELF): license, each program with map names at its relocations, the maps,
/// and the embedded manifest.
pub fn disassemble_object(bytes: &[u8]) -> Result<String, String> {
    let file = object::File::parse(bytes).map_err(|e| format!("not an ELF object: {e}"))?;
    if file.architecture() != object::Architecture::Bpf {
        return Err(format!("not an eBPF object (architecture {:?})", file.architecture()));
    }
    let mut out = String::new();
    if let Some(license) = file.section_by_name("license") {
        let data = license.data().map_err(|e| format!("unreadable license section: {e}"))?;
        let text = String::from_utf8_lossy(data.split(|b| *b == 0).next().unwrap_or_default()).into_owned();
        writeln!(out, "license: {text}").unwrap();
    }

    for section in file.sections() {
        if section.kind() != SectionKind::Text || section.size() == 0 {
            continue;
        }
        let name = section.name().map_err(|e| format!("unreadable section name: {e}"))?;
        let data = section.data().map_err(|e| format!("unreadable section {name}: {e}"))?;
        // Relocations by section offset, named after their target symbol.
        let mut relocation_names = HashMap::new();
        for (offset, reloc) in section.relocations() {
            if let RelocationTarget::Symbol(index) = reloc.target() {
                let target = file.symbol_by_index(index).and_then(|s| s.name().map(str::to_string));
                relocation_names.insert(offset, target.unwrap_or_else(|_| format!("symbol#{}", index.0)));
            }
        }
        let mut functions: Vec<(u64, u64, String)> = file
            .symbols()
            .filter(|s| s.section_index() == Some(section.index()) && s.kind() == SymbolKind::Text)
            .map(|s| (s.address(), s.size(), s.name().unwrap_or("?").to_string()))
            .collect();
        functions.sort();
        if functions.is_empty() {
            functions.push((0, data.len() as u64, name.to_string()));
        }
        for (start, size, function) in functions {
            let code = usize::try_from(start)
                .ok()
                .and_then(|s| data.get(s..s.checked_add(usize::try_from(size).ok()?)?))
                .ok_or_else(|| format!("symbol {function} lies outside section {name}"))?;
            let insns: Vec<Insn> = code
                .chunks_exact(8)
                .map(|c| Insn::from_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect();
            let relocs: Vec<(usize, String)> = relocation_names
                .iter()
                .filter(|(offset, _)| **offset >= start && **offset < start + size)
                .map(|(offset, target)| (((offset - start) / 8) as usize, target.clone()))
                .collect();
            writeln!(out, "\n{name}: {function} ({} insns)", insns.len()).unwrap();
            out.push_str(&disassemble(&insns, &relocs));
        }
    }

    if let Some(maps) = file.section_by_name("maps") {
        let data = maps.data().map_err(|e| format!("unreadable maps section: {e}"))?;
        let mut defs: Vec<(u64, String)> = file
            .symbols()
            .filter(|s| s.section_index() == Some(maps.index()))
            .map(|s| (s.address(), s.name().unwrap_or("?").to_string()))
            .collect();
        defs.sort();
        writeln!(out, "\nmaps:").unwrap();
        for (offset, name) in defs {
            let Some(def) = usize::try_from(offset).ok().and_then(|o| data.get(o..o + MAP_DEF_SIZE)) else {
                writeln!(out, "  {name}: <truncated definition>").unwrap();
                continue;
            };
            writeln!(
                out,
                "  {name}: {} key {} value {} max {} flags {:#x}",
                map_type_name(u32_at(def, 0)),
                u32_at(def, 4),
                u32_at(def, 8),
                u32_at(def, 12),
                u32_at(def, 16)
            )
            .unwrap();
        }
    }

    if let Some(manifest) = file.section_by_name(MANIFEST_SECTION) {
        let data = manifest.data().map_err(|e| format!("unreadable manifest: {e}"))?;
        writeln!(out, "\nmanifest ({} bytes):\n{}", data.len(), String::from_utf8_lossy(data)).unwrap();
    }
    Ok(out)
}
