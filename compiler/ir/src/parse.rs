//! Parses the IR's text form (what `print` writes) back into a [`Module`], so that verifier
//! and code generator tests can be written as text files. Each instruction's span is the
//! byte range of its line, so diagnostics can point into the IR file itself.

use crate::*;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

pub fn parse_module(text: &str) -> Result<Module, ParseError> {
    let mut module = Module::default();
    let mut lines = Lines::new(text);
    while let Some(line) = lines.next() {
        let t = line.text;
        if t.is_empty() {
            continue;
        }
        if let Some(rest) = t.strip_prefix("map ") {
            module.maps.push(parse_map(rest).map_err(|m| line.error(m))?);
        } else if t.starts_with("fn ") {
            let f = parse_function(line, &mut lines, &module.maps)?;
            module.functions.push(f);
        } else {
            return Err(line.error(format!("expected `map` or `fn`, found `{t}`")));
        }
    }
    Ok(module)
}

#[derive(Clone, Copy)]
struct Line<'a> {
    number: usize,
    /// Trimmed text without a trailing `; comment`.
    text: &'a str,
    span: Span,
}

impl Line<'_> {
    fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError { line: self.number, message: message.into() }
    }
}

struct Lines<'a> {
    text: &'a str,
    offset: usize,
    number: usize,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Lines { text, offset: 0, number: 0 }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;
    fn next(&mut self) -> Option<Line<'a>> {
        if self.offset >= self.text.len() {
            return None;
        }
        let rest = &self.text[self.offset..];
        let len = rest.find('\n').map_or(rest.len(), |i| i + 1);
        let raw = &rest[..len];
        let start = self.offset;
        self.offset += len;
        self.number += 1;
        let content = raw.split(';').next().unwrap_or("").trim();
        let lead = raw.len() - raw.trim_start().len();
        let span = Span::new(start + lead, start + lead + content.len());
        Some(Line { number: self.number, text: content, span })
    }
}

fn parse_map(rest: &str) -> Result<Map, String> {
    // `mN NAME: KIND key K value V max N`
    let words: Vec<&str> = rest.split_whitespace().collect();
    let [_, name, kind, "key", key, "value", value, "max", max] = words[..] else {
        return Err(format!("malformed map line `map {rest}`"));
    };
    let name = name.strip_suffix(':').ok_or("expected `:` after the map name")?;
    let kind = match kind {
        "hash" => MapType::Hash,
        "array" => MapType::Array,
        "percpu_hash" => MapType::PerCpuHash,
        "percpu_array" => MapType::PerCpuArray,
        "ringbuf" => MapType::RingBuf,
        "stack_trace" => MapType::StackTrace,
        "lru_hash" => MapType::LruHash,
        "lru_percpu_hash" => MapType::LruPerCpuHash,
        other => return Err(format!("unknown map type `{other}`")),
    };
    Ok(Map { name: name.to_string(), kind, key_size: num(key)?, value_size: num(value)?, max_entries: num(max)? })
}

fn num<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("expected a number, found `{s}`"))
}

fn parse_function(header: Line, lines: &mut Lines, maps: &[Map]) -> Result<Function, ParseError> {
    let t = header.text;
    let inner = t
        .strip_prefix("fn ")
        .and_then(|r| r.strip_suffix('{'))
        .ok_or_else(|| header.error("expected `fn NAME(ctx: KIND) {`"))?;
    let (name, rest) = inner.trim().split_once("(ctx: ").ok_or_else(|| header.error("expected `(ctx: KIND)`"))?;
    let (ctx, meta) = rest.split_once(')').ok_or_else(|| header.error("expected `)` after the context"))?;
    let probe = parse_probe_meta(meta, header.span).map_err(|m| header.error(m))?;
    let ctx = match ctx.trim() {
        "tracepoint" => CtxKind::Tracepoint,
        "pt_regs" => CtxKind::PtRegs,
        "raw_tracepoint" => CtxKind::RawTracepoint,
        "perf_event" => CtxKind::PerfEvent,
        other => return Err(header.error(format!("unknown context `{other}`"))),
    };
    let mut p = FnParser { maps, vregs: Vec::new(), slots: Vec::new(), blocks: Vec::new(), cfg: DiGraph::new() };
    let mut current: Option<(Block, Vec<Inst>)> = None;
    let mut entry = None;
    for line in lines.by_ref() {
        let t = line.text;
        if t.is_empty() {
            continue;
        }
        if t == "}" {
            if current.is_some() {
                return Err(line.error("the last block has no terminator"));
            }
            let entry = entry.ok_or_else(|| header.error("function has no blocks"))?;
            let mut f = p.finish(name.trim(), ctx, entry, header.span)?;
            f.probe = probe;
            return Ok(f);
        }
        if let Some(rest) = t.strip_prefix("slot ") {
            let (id, size) = rest.split_once(':').ok_or_else(|| line.error("expected `slot sN: SIZE`"))?;
            let id = p.slot_id(id.trim()).map_err(|m| line.error(m))?;
            if id.0 as usize != p.slots.len() {
                return Err(line.error("slots must be declared in order s0, s1, ..."));
            }
            p.slots.push(num(size.trim()).map_err(|m| line.error(m))?);
            continue;
        }
        if let Some(label) = t.strip_suffix(':').filter(|l| l.starts_with("bb")) {
            if current.is_some() {
                return Err(line.error("previous block has no terminator"));
            }
            let b = p.block(label).map_err(|m| line.error(m))?;
            entry.get_or_insert(b);
            current = Some((b, Vec::new()));
            continue;
        }
        if let Some((v, ty)) = t.split_once(": *") {
            let map_name = ty.strip_suffix('?').ok_or_else(|| line.error("expected `vN: *MAP?`"))?;
            let v = p.vreg(v).map_err(|m| line.error(m))?;
            let m = p.map(map_name).map_err(|m| line.error(m))?;
            p.vregs[v.0 as usize] = VregType::MapValue(m);
            continue;
        }
        let Some((block, insts)) = current.as_mut() else {
            return Err(line.error("instruction outside a block"));
        };
        if let Some(term) = p.terminator(t).map_err(|m| line.error(m))? {
            let bb = &mut p.cfg[*block];
            bb.insts = std::mem::take(insts);
            bb.term = term;
            bb.term_span = line.span;
            current = None;
        } else {
            let op = p.op(t).map_err(|m| line.error(m))?;
            insts.push(Inst { op, span: line.span });
        }
    }
    Err(header.error("function is not closed with `}`"))
}

/// `trigger KIND [rate N]` after the signature; the rate's span is the header's.
fn parse_probe_meta(text: &str, span: Span) -> Result<ProbeMeta, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let (trigger, rest) = match words[..] {
        ["trigger", t, ref rest @ ..] => (t, rest),
        [] => return Ok(ProbeMeta::default()),
        _ => return Err(format!("expected `trigger KIND [rate N]`, found `{}`", text.trim())),
    };
    let trigger = match trigger {
        "tracepoint" => Trigger::Tracepoint,
        "uprobe" => Trigger::Uprobe,
        "uretprobe" => Trigger::Uretprobe,
        "raw_tracepoint" => Trigger::RawTracepoint,
        "perf_event" => Trigger::PerfEvent,
        "once" => Trigger::Once,
        other => return Err(format!("unknown trigger `{other}`")),
    };
    let rate = match rest {
        [] => None,
        ["rate", n] => Some((num(n)?, span)),
        _ => return Err(format!("expected `rate N`, found `{}`", rest.join(" "))),
    };
    Ok(ProbeMeta { trigger, rate })
}

struct FnParser<'a> {
    maps: &'a [Map],
    vregs: Vec<VregType>,
    slots: Vec<u32>,
    blocks: Vec<Block>,
    cfg: DiGraph<BasicBlock, ()>,
}

impl FnParser<'_> {
    fn finish(mut self, name: &str, ctx: CtxKind, entry: Block, span: Span) -> Result<Function, ParseError> {
        let edges: Vec<(Block, Block)> = self
            .cfg
            .node_indices()
            .flat_map(|b| self.cfg[b].term.successors().into_iter().map(move |s| (b, s)))
            .collect();
        for (a, b) in edges {
            self.cfg.add_edge(a, b, ());
        }
        Ok(Function {
            name: name.to_string(),
            ctx,
            vregs: self.vregs,
            slots: self.slots,
            cfg: self.cfg,
            entry,
            span,
            probe: ProbeMeta::default(),
        })
    }

    fn index(s: &str, prefix: &str) -> Result<u32, String> {
        s.strip_prefix(prefix).and_then(|n| n.parse().ok()).ok_or_else(|| format!("expected `{prefix}N`, found `{s}`"))
    }

    fn vreg(&mut self, s: &str) -> Result<Vreg, String> {
        let n = Self::index(s.trim(), "v")?;
        if self.vregs.len() <= n as usize {
            self.vregs.resize(n as usize + 1, VregType::Scalar);
        }
        Ok(Vreg(n))
    }

    fn slot_id(&self, s: &str) -> Result<Slot, String> {
        Ok(Slot(Self::index(s.trim(), "s")?))
    }

    fn slot(&self, s: &str) -> Result<Slot, String> {
        let slot = self.slot_id(s)?;
        if slot.0 as usize >= self.slots.len() {
            return Err(format!("slot `{}` is not declared", s.trim()));
        }
        Ok(slot)
    }

    fn block(&mut self, s: &str) -> Result<Block, String> {
        let n = Self::index(s.trim(), "bb")? as usize;
        while self.blocks.len() <= n {
            let b = self.cfg.add_node(BasicBlock {
                insts: Vec::new(),
                term: Terminator::Return,
                term_span: Span::default(),
            });
            self.blocks.push(b);
        }
        Ok(self.blocks[n])
    }

    fn map(&self, name: &str) -> Result<MapId, String> {
        let name = name.trim();
        self.maps.iter().position(|m| m.name == name).ok_or_else(|| format!("unknown map `{name}`"))
    }

    fn operand(&mut self, s: &str) -> Result<Operand, String> {
        let s = s.trim();
        if s.starts_with('v') {
            Ok(Operand::Reg(self.vreg(s)?))
        } else {
            Ok(Operand::Imm(num(s)?))
        }
    }

    fn width(s: &str) -> Result<Width, String> {
        match s.trim() {
            "u8" => Ok(1),
            "u16" => Ok(2),
            "u32" => Ok(4),
            "u64" => Ok(8),
            other => Err(format!("expected a width u8/u16/u32/u64, found `{other}`")),
        }
    }

    fn cond(s: &str) -> Result<Cond, String> {
        Ok(match s {
            "eq" => Cond::Eq,
            "ne" => Cond::Ne,
            "ult" => Cond::Ult,
            "ule" => Cond::Ule,
            "ugt" => Cond::Ugt,
            "uge" => Cond::Uge,
            "slt" => Cond::Slt,
            "sle" => Cond::Sle,
            "sgt" => Cond::Sgt,
            "sge" => Cond::Sge,
            other => return Err(format!("unknown condition `{other}`")),
        })
    }

    /// `sN+OFF uW` or `vN+OFF uW`.
    fn address(&mut self, s: &str) -> Result<(String, u32, Width), String> {
        let (base_off, width) =
            s.trim().split_once(' ').ok_or_else(|| format!("expected `BASE+OFF uW`, found `{s}`"))?;
        let (base, off) = base_off.split_once('+').ok_or_else(|| format!("expected `BASE+OFF`, found `{base_off}`"))?;
        Ok((base.to_string(), num(off)?, Self::width(width)?))
    }

    fn terminator(&mut self, t: &str) -> Result<Option<Terminator>, String> {
        if t == "ret" {
            return Ok(Some(Terminator::Return));
        }
        if let Some(target) = t.strip_prefix("jump ") {
            return Ok(Some(Terminator::Jump(self.block(target)?)));
        }
        if let Some(rest) = t.strip_prefix("br.null ") {
            let parts: Vec<&str> = rest.split(',').collect();
            let [ptr, is_null, not_null] = parts[..] else { return Err("expected `br.null vP, bbA, bbB`".into()) };
            let ptr = self.vreg(ptr)?;
            return Ok(Some(Terminator::BranchNull {
                ptr,
                is_null: self.block(is_null)?,
                not_null: self.block(not_null)?,
            }));
        }
        if let Some(rest) = t.strip_prefix("br.") {
            let (cond, args) = rest.split_once(' ').ok_or("expected `br.CC vA, X, bbT, bbF`")?;
            let parts: Vec<&str> = args.split(',').collect();
            let [lhs, rhs, then, otherwise] = parts[..] else { return Err("expected `br.CC vA, X, bbT, bbF`".into()) };
            let cond = Self::cond(cond)?;
            let lhs = self.vreg(lhs)?;
            let rhs = self.operand(rhs)?;
            return Ok(Some(Terminator::Branch {
                cond,
                lhs,
                rhs,
                then: self.block(then)?,
                otherwise: self.block(otherwise)?,
            }));
        }
        Ok(None)
    }

    fn op(&mut self, t: &str) -> Result<Op, String> {
        if let Some(rest) = t.strip_prefix("store ") {
            let (addr, src) = rest.rsplit_once(',').ok_or("expected `store ADDR, X`")?;
            let (base, offset, width) = self.address(addr)?;
            let src = self.operand(src)?;
            return Ok(if base.starts_with('s') {
                Op::StoreSlot { slot: self.slot(&base)?, offset, width, src }
            } else {
                Op::StorePtr { ptr: self.vreg(&base)?, offset, width, src }
            });
        }
        if let Some(slot) = t.strip_prefix("zero ") {
            return Ok(Op::ZeroSlot { slot: self.slot(slot)? });
        }
        if let Some(rest) = t.strip_prefix("map.update ") {
            let parts: Vec<&str> = rest.split(',').collect();
            let [map, key, value, flags] = parts[..] else {
                return Err("expected `map.update M, sK, sV, FLAGS`".into());
            };
            return Ok(Op::MapUpdate {
                map: self.map(map)?,
                key: self.slot(key)?,
                value: self.slot(value)?,
                flags: num(flags.trim())?,
            });
        }
        if let Some(rest) = t.strip_prefix("map.delete ") {
            let (map, key) = rest.split_once(',').ok_or("expected `map.delete M, sK`")?;
            return Ok(Op::MapDelete { map: self.map(map)?, key: self.slot(key)? });
        }
        if let Some(call) = t.strip_prefix("call ") {
            return Ok(Op::Call { dst: None, helper: self.helper(call)? });
        }
        let (dst, rhs) = t.split_once(" = ").ok_or_else(|| format!("unknown instruction `{t}`"))?;
        let dst = self.vreg(dst)?;
        let (word, args) = rhs.split_once(' ').unwrap_or((rhs, ""));
        let alu = |w: &str| -> Option<AluOp> {
            Some(match w {
                "add" => AluOp::Add,
                "sub" => AluOp::Sub,
                "mul" => AluOp::Mul,
                "udiv" => AluOp::UDiv,
                "umod" => AluOp::UMod,
                "and" => AluOp::And,
                "or" => AluOp::Or,
                "xor" => AluOp::Xor,
                "shl" => AluOp::Shl,
                "lshr" => AluOp::LShr,
                "ashr" => AluOp::AShr,
                _ => return None,
            })
        };
        if let Some(op) = alu(word) {
            let (lhs, rhs) = args.split_once(',').ok_or("expected `OP vA, X`")?;
            return Ok(Op::Alu { op, dst, lhs: self.vreg(lhs)?, rhs: self.operand(rhs)? });
        }
        match word {
            "neg" => return Ok(Op::Neg { dst, src: self.vreg(args)? }),
            "call" => return Ok(Op::Call { dst: Some(dst), helper: self.helper(args)? }),
            "map.lookup" => {
                let (map, key) = args.split_once(',').ok_or("expected `map.lookup M, sK`")?;
                return Ok(Op::MapLookup { dst, map: self.map(map)?, key: self.slot(key)? });
            }
            "load" => {
                let (base, offset, width) = self.address(args)?;
                return Ok(if base.starts_with('s') {
                    Op::LoadSlot { dst, slot: self.slot(&base)?, offset, width }
                } else {
                    Op::LoadPtr { dst, ptr: self.vreg(&base)?, offset, width }
                });
            }
            "load.ctx" | "load.ctx.s" => {
                let (offset, width) = args.split_once(' ').ok_or("expected `load.ctx OFF uW`")?;
                return Ok(Op::LoadCtx {
                    dst,
                    offset: num(offset)?,
                    width: Self::width(width)?,
                    signed: word == "load.ctx.s",
                });
            }
            _ => {}
        }
        if let Some(cond) = word.strip_prefix("set.") {
            let (lhs, rhs) = args.split_once(',').ok_or("expected `set.CC vA, X`")?;
            return Ok(Op::SetCond { cond: Self::cond(cond)?, dst, lhs: self.vreg(lhs)?, rhs: self.operand(rhs)? });
        }
        for (prefix, signed) in [("zext", false), ("sext", true)] {
            if let Some(bits) = word.strip_prefix(prefix) {
                let bits: u32 = num(bits)?;
                if !matches!(bits, 8 | 16 | 32 | 64) {
                    return Err(format!("cannot extend from {bits} bits"));
                }
                return Ok(Op::Extend { dst, src: self.vreg(args)?, width: (bits / 8) as Width, signed });
            }
        }
        if args.is_empty() {
            return Ok(Op::Mov { dst, src: self.operand(word)? });
        }
        Err(format!("unknown instruction `{t}`"))
    }

    fn helper(&mut self, call: &str) -> Result<Helper, String> {
        let call = call.trim();
        let (name, args) = call
            .strip_suffix(')')
            .and_then(|c| c.split_once('('))
            .ok_or_else(|| format!("expected `NAME(..)`, found `{call}`"))?;
        Ok(match name {
            "get_current_pid_tgid" => Helper::GetCurrentPidTgid,
            "get_current_uid_gid" => Helper::GetCurrentUidGid,
            "ktime_get_ns" => Helper::KtimeGetNs,
            "get_smp_processor_id" => Helper::GetSmpProcessorId,
            "get_current_cgroup_id" => Helper::GetCurrentCgroupId,
            "get_current_comm" => {
                let slot = args.split(',').next().unwrap_or("");
                Helper::GetCurrentComm { slot: self.slot(slot)? }
            }
            "probe_read_user_str" | "probe_read_kernel_str" => {
                let space = if name == "probe_read_user_str" { AddressSpace::User } else { AddressSpace::Kernel };
                let parts: Vec<&str> = args.split(',').map(str::trim).collect();
                let [slot, len, ptr] = parts[..] else {
                    return Err(format!("expected `{name}(sN, LEN, vP)`, found `{call}`"));
                };
                let len = len.parse::<u32>().map_err(|_| format!("invalid length `{len}` in `{call}`"))?;
                Helper::ProbeReadStr { slot: self.slot(slot)?, len, ptr: self.vreg(ptr)?, space }
            }
            "probe_read_user" | "probe_read_kernel" => {
                let space = if name == "probe_read_user" { AddressSpace::User } else { AddressSpace::Kernel };
                let parts: Vec<&str> = args.split(',').map(str::trim).collect();
                let [slot, len, ptr] = parts[..] else {
                    return Err(format!("expected `{name}(sN, LEN, vP)`, found `{call}`"));
                };
                let len = len.parse::<u32>().map_err(|_| format!("invalid length `{len}` in `{call}`"))?;
                Helper::ProbeRead { slot: self.slot(slot)?, len, ptr: self.vreg(ptr)?, space }
            }
            "ringbuf_output" => {
                let parts: Vec<&str> = args.split(',').map(str::trim).collect();
                let [map, slot, len] = parts[..] else {
                    return Err(format!("expected `ringbuf_output(MAP, sN, LEN)`, found `{call}`"));
                };
                let map = self.map(map)?;
                let len = len.parse::<u32>().map_err(|_| format!("invalid length `{len}` in `{call}`"))?;
                Helper::RingbufOutput { map, slot: self.slot(slot)?, len }
            }
            "get_stackid" => {
                let parts: Vec<&str> = args.split(',').map(str::trim).collect();
                let ["ctx", map, space] = parts[..] else {
                    return Err(format!("expected `get_stackid(ctx, MAP, user|kernel)`, found `{call}`"));
                };
                let user = match space {
                    "user" => true,
                    "kernel" => false,
                    other => return Err(format!("expected `user` or `kernel`, found `{other}` in `{call}`")),
                };
                Helper::GetStackId { map: self.map(map)?, user }
            }
            other => return Err(format!("unknown helper `{other}`")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Printing a parsed module reproduces the text: parser and printer agree.
    #[test]
    fn print_parse_round_trip() {
        let text = "map m0 calls: percpu_hash key 16 value 8 max 1024\n\nfn probe0(ctx: pt_regs) trigger uretprobe rate 500 {\n  slot s0: 16\n  slot s1: 8\n  v1: *calls?\nbb0: ; entry\n  call get_current_comm(s0, 16)\n  v0 = load.ctx.s 112 u32\n  v2 = sext32 v0\n  v3 = set.sge v2, -5\n  v4 = ashr v3, v2\n  v5 = neg v4\n  v6 = call ktime_get_ns()\n  v7 = 4294967296\n  store s1+0 u64, v7\n  v1 = map.lookup calls, s0\n  br.null v1, bb1, bb2\nbb1:\n  map.update calls, s0, s1, 1\n  map.delete calls, s0\n  jump bb3\nbb2:\n  v8 = load v1+8 u64\n  store v1+0 u8, v8\n  br.ugt v8, v6, bb3, bb1\nbb3:\n  ret\n}\n";
        let module = parse_module(text).expect("parses");
        assert_eq!(print_module(&module), text);
    }

    /// String reads and a loop (a back edge) round-trip too, and keep their operands.
    #[test]
    fn string_reads_and_loops_round_trip() {
        let text = "map m0 slots: array key 4 value 8 max 4\n\nfn probe0(ctx: pt_regs) trigger uprobe {\n  slot s0: 64\n  slot s1: 8\nbb0: ; entry\n  v0 = load.ctx 112 u64\n  call probe_read_user_str(s0, 64, v0)\n  call probe_read_kernel_str(s0, 16, v0)\n  v1 = 0\n  jump bb1\nbb1:\n  br.ult v1, 4, bb2, bb3\nbb2:\n  store s1+0 u32, v1\n  v1 = add v1, 1\n  jump bb1\nbb3:\n  ret\n}\n";
        let module = parse_module(text).expect("parses");
        assert_eq!(print_module(&module), text);
        let first = &module.functions[0].cfg[module.functions[0].entry].insts[1].op;
        let expected = Helper::ProbeReadStr { slot: Slot(0), len: 64, ptr: Vreg(0), space: AddressSpace::User };
        assert_eq!(first, &Op::Call { dst: None, helper: expected });
        assert_eq!(first.uses(), vec![Vreg(0)]);
        let err =
            parse_module("fn f(ctx: pt_regs) {\n  slot s0: 8\nbb0:\n  call probe_read_user_str(s0, 8)\n  ret\n}\n");
        assert!(err.unwrap_err().message.contains("probe_read_user_str(sN, LEN, vP)"));
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse_module("fn f(ctx: tracepoint) {\nbb0:\n  v0 = frobnicate v1\n  ret\n}\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("frobnicate"), "{err}");
        let err = parse_module("fn f(ctx: tracepoint) {\nbb0:\n  zero s3\n  ret\n}\n").unwrap_err();
        assert_eq!((err.line, err.message.as_str()), (3, "slot `s3` is not declared"));
    }
}
