//! USDT argument specs (`<sys/sdt.h>`'s assembler operands, as `.note.stapsdt` stores them):
//! `SIZE@OPERAND`, where SIZE is the byte width, negative for signed values, and OPERAND an
//! x86-64 register (`%rdi`, `%eax`, `%r8d`, `%al`, `%ah`), a register plus displacement in
//! memory (`-8(%rbp)`, `8(%rsi)`) or a constant (`$5`). Registers are read from the probe's
//! `struct pt_regs`; anything else (indexed or RIP-relative operands, segment registers) is
//! refused with the spec in the message.

/// Where one argument's value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsdtOperand {
    /// `$N`: the value itself.
    Constant(i64),
    /// A register: its bytes at `offset` in `struct pt_regs`.
    Register { offset: u32 },
    /// `DISP(%reg)`: user memory at the register's value plus `displacement`.
    Memory { base_offset: u32, displacement: i64 },
}

/// One parsed argument spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsdtArg {
    /// 1, 2, 4 or 8 bytes.
    pub size: u8,
    pub signed: bool,
    pub operand: UsdtOperand,
}

/// Offsets of the 64-bit registers in x86-64's `struct pt_regs` (the uprobe context).
const PT_REGS: &[(&str, u32)] = &[
    ("r15", 0),
    ("r14", 8),
    ("r13", 16),
    ("r12", 24),
    ("rbp", 32),
    ("rbx", 40),
    ("r11", 48),
    ("r10", 56),
    ("r9", 64),
    ("r8", 72),
    ("rax", 80),
    ("rcx", 88),
    ("rdx", 96),
    ("rsi", 104),
    ("rdi", 112),
    ("rip", 128),
    ("rsp", 152),
];

/// The `pt_regs` byte offset of register `name` (without `%`), any width: the 32-, 16- and
/// 8-bit names are the low bytes of their 64-bit register (little-endian), `%ah`..`%dh` the
/// second byte.
pub fn register_offset(name: &str) -> Option<u32> {
    let full = |base: &str| PT_REGS.iter().find(|(reg, _)| *reg == base).map(|(_, offset)| *offset);
    // r8..r15 and their r8d / r8w / r8b forms.
    if let Some(number) = name.strip_prefix('r').filter(|rest| rest.starts_with(|c: char| c.is_ascii_digit())) {
        let digits = number.trim_end_matches(['d', 'w', 'b']);
        return full(&format!("r{digits}"));
    }
    let legacy = [("ax", "rax"), ("bx", "rbx"), ("cx", "rcx"), ("dx", "rdx")];
    for (short, base) in legacy {
        let letter = &short[..1];
        if name == format!("r{short}") || name == format!("e{short}") || name == short || name == format!("{letter}l") {
            return full(base);
        }
        if name == format!("{letter}h") {
            return full(base).map(|offset| offset + 1);
        }
    }
    for (short, base) in [("si", "rsi"), ("di", "rdi"), ("bp", "rbp"), ("sp", "rsp"), ("ip", "rip")] {
        if name == format!("r{short}") || name == format!("e{short}") || name == short || name == format!("{short}l") {
            return full(base);
        }
    }
    None
}

/// Parses one spec such as `-4@%eax`.
pub fn parse_arg(spec: &str) -> Result<UsdtArg, String> {
    let (size, operand) = spec.split_once('@').ok_or_else(|| format!("`{spec}` has no `SIZE@`"))?;
    let size: i8 = size.parse().map_err(|_| format!("`{spec}`: bad size `{size}`"))?;
    let signed = size < 0;
    let size = size.unsigned_abs();
    if !matches!(size, 1 | 2 | 4 | 8) {
        return Err(format!("`{spec}`: a {size}-byte argument"));
    }
    let register = |text: &str| {
        text.strip_prefix('%')
            .and_then(register_offset)
            .ok_or_else(|| format!("`{spec}`: unsupported register `{text}`"))
    };
    let operand = if let Some(constant) = operand.strip_prefix('$') {
        UsdtOperand::Constant(parse_int(constant).ok_or_else(|| format!("`{spec}`: bad constant `{constant}`"))?)
    } else if operand.starts_with('%') {
        UsdtOperand::Register { offset: register(operand)? }
    } else if let Some((displacement, rest)) = operand.split_once('(') {
        let base = rest.strip_suffix(')').ok_or_else(|| format!("`{spec}`: unclosed memory operand"))?;
        if base.contains(',') {
            return Err(format!("`{spec}`: indexed memory operands are not supported"));
        }
        if base == "%rip" {
            return Err(format!("`{spec}`: RIP-relative operands are not supported"));
        }
        let displacement = if displacement.is_empty() {
            0
        } else {
            parse_int(displacement).ok_or_else(|| format!("`{spec}`: unsupported displacement `{displacement}`"))?
        };
        UsdtOperand::Memory { base_offset: register(base)?, displacement }
    } else {
        return Err(format!("`{spec}`: unsupported operand `{operand}`"));
    };
    Ok(UsdtArg { size, signed, operand })
}

/// Every spec of a note's argument string, each parsed or refused on its own (an argument the
/// probe never reads may be one ppis cannot read).
pub fn parse_args(specs: &str) -> Vec<Result<UsdtArg, String>> {
    specs.split_whitespace().map(parse_arg).collect()
}

fn parse_int(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let value = match digits.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).ok()?,
        None => digits.parse().ok()?,
    };
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_constants_and_memory_operands_parse() {
        let arg = |size, signed, operand| Ok(UsdtArg { size, signed, operand });
        assert_eq!(parse_arg("-4@%eax"), arg(4, true, UsdtOperand::Register { offset: 80 }));
        assert_eq!(parse_arg("8@%rdi"), arg(8, false, UsdtOperand::Register { offset: 112 }));
        assert_eq!(parse_arg("4@%r9d"), arg(4, false, UsdtOperand::Register { offset: 64 }));
        assert_eq!(parse_arg("1@%ah"), arg(1, false, UsdtOperand::Register { offset: 81 }));
        assert_eq!(parse_arg("2@%si"), arg(2, false, UsdtOperand::Register { offset: 104 }));
        assert_eq!(parse_arg("4@$5"), arg(4, false, UsdtOperand::Constant(5)));
        assert_eq!(parse_arg("-4@$-3"), arg(4, true, UsdtOperand::Constant(-3)));
        assert_eq!(parse_arg("8@-8(%rbp)"), arg(8, false, UsdtOperand::Memory { base_offset: 32, displacement: -8 }));
        assert_eq!(parse_arg("8@(%rsi)"), arg(8, false, UsdtOperand::Memory { base_offset: 104, displacement: 0 }));
        assert_eq!(parse_args("8@%rdi -4@$-3").len(), 2);
    }

    #[test]
    fn what_cannot_be_read_is_refused_with_the_spec() {
        for spec in ["8@8(%rax,%rbx,2)", "8@foo(%rip)", "8@%xmm0", "3@%eax", "8", "8@%fs:0", "x@%eax"] {
            let error = parse_arg(spec).unwrap_err();
            assert!(error.contains(spec), "{error}");
        }
    }
}
