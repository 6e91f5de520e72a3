//! A compact, stable text form of a checked program, for snapshots and `--dump-hir` style
//! debugging: one line per map and statement, expressions as typed S-expressions
//! (`(+ nsecs:u64 (cast local0:u32):u64):u64`), so every inserted conversion is visible.

use crate::ast::UnaryOp;
use crate::hir::{Attach, Builtin, Expr, ExprKind, MapKind, Probe, Program, Stmt, StmtKind};
use std::fmt::Write;

/// The whole program.
pub fn program(program: &Program) -> String {
    let mut out = String::new();
    for line in &program.doc {
        let _ = writeln!(out, "//! {line}");
    }
    let _ = writeln!(out, "budget {}%", program.budget_percent);
    for (id, map) in program.maps.iter().enumerate() {
        let keys: Vec<String> = map.key.iter().map(ToString::to_string).collect();
        let key = if keys.is_empty() { String::new() } else { format!("[{}]", keys.join(", ")) };
        let mut max = map.max_entries.map(|max| format!(" max {max}")).unwrap_or_default();
        if map.lru {
            max.push_str(" lru");
        }
        let kind = match map.kind {
            // A per-CPU plain map (`lru_percpu_hash` shows as `percpu_hash .. lru`, as
            // `lru_hash` shows as `hash .. lru`).
            MapKind::Hash if map.per_cpu => "percpu_hash".to_string(),
            kind => map_kind(kind),
        };
        let _ = writeln!(out, "map #{id} {}: {kind}{key} -> {}{max}", map.name, map.value);
    }
    for probe in &program.probes {
        write_probe(&mut out, probe, program);
    }
    out
}

fn map_kind(kind: MapKind) -> String {
    match kind {
        MapKind::Count => "count".into(),
        MapKind::Sum => "sum".into(),
        MapKind::Min => "min".into(),
        MapKind::Max => "max".into(),
        MapKind::Avg => "avg".into(),
        MapKind::Stats => "stats".into(),
        MapKind::Hist => "hist".into(),
        MapKind::Lhist { lo, hi, step } => format!("lhist({lo}, {hi}, {step})"),
        MapKind::Hash => "hash".into(),
        MapKind::Array { len, per_cpu: false } => format!("array[{len}]"),
        MapKind::Array { len, per_cpu: true } => format!("percpu_array[{len}]"),
    }
}

fn write_probe(out: &mut String, probe: &Probe, program: &Program) {
    let attach = match &probe.attach {
        Attach::Tracepoint { category, name, .. } => format!("tracepoint:{category}:{name}"),
        Attach::Uprobe { path, symbol, .. } => format!("uprobe:{path:?}:{symbol}"),
        Attach::Uretprobe { path, symbol, .. } => format!("uretprobe:{path:?}:{symbol}"),
        Attach::Usdt { path, provider, name, address, .. } => format!("usdt:{path:?}:{provider}:{name}@{address:#x}"),
        Attach::RawTracepoint { .. } | Attach::Profile { .. } | Attach::Interval { .. } => probe.attach.full_name(),
        Attach::Begin { .. } | Attach::End { .. } => probe.attach.full_name(),
    };
    let rate = probe.rate.map(|rate| format!(" rate <= {rate}/s")).unwrap_or_default();
    let activation = probe
        .activation
        .as_ref()
        .map(|rule| format!(" activate when anomaly({}) > {} for {}s", rule.signal, rule.threshold, rule.for_seconds))
        .unwrap_or_default();
    let _ = writeln!(out, "\nprobe {attach}{rate}{activation}");
    for (id, local) in probe.locals.iter().enumerate() {
        let _ = writeln!(out, "  local{id} {}: {}", local.name, local.ty);
    }
    if let Some(predicate) = &probe.predicate {
        let _ = writeln!(out, "  when {}", expr(predicate, program));
    }
    write_block(out, &probe.body, 1, program);
}

fn write_block(out: &mut String, stmts: &[Stmt], depth: usize, program: &Program) {
    for stmt in stmts {
        write_stmt(out, stmt, depth, program);
    }
}

fn map_ref(map: usize, keys: &[Expr], program: &Program) -> String {
    let name = program.maps.get(map).map_or("?", |m| m.name.as_str());
    if keys.is_empty() {
        return format!("{name}#{map}");
    }
    let keys: Vec<String> = keys.iter().map(|key| expr(key, program)).collect();
    format!("{name}#{map}[{}]", keys.join(", "))
}

fn write_stmt(out: &mut String, stmt: &Stmt, depth: usize, program: &Program) {
    let indent = "  ".repeat(depth);
    match &stmt.kind {
        StmtKind::Assign { local, value } => {
            let _ = writeln!(out, "{indent}local{local} = {}", expr(value, program));
        }
        StmtKind::MapUpdate { map, keys, value } => {
            let _ = writeln!(out, "{indent}{} = {}", map_ref(*map, keys, program), expr(value, program));
        }
        StmtKind::Aggregate { map, keys, value } => {
            let value = value.as_ref().map(|v| expr(v, program)).unwrap_or_default();
            let _ = writeln!(out, "{indent}{}.aggregate({value})", map_ref(*map, keys, program));
        }
        StmtKind::Delete { map, keys } => {
            let _ = writeln!(out, "{indent}delete {}", map_ref(*map, keys, program));
        }
        StmtKind::If { cond, then, otherwise } => {
            let _ = writeln!(out, "{indent}if {} {{", expr(cond, program));
            write_block(out, then, depth + 1, program);
            write_else(out, otherwise, depth, program);
        }
        StmtKind::IfLet { local, map, keys, then, otherwise } => {
            let _ = writeln!(out, "{indent}if let local{local} = {} {{", map_ref(*map, keys, program));
            write_block(out, then, depth + 1, program);
            write_else(out, otherwise, depth, program);
        }
        StmtKind::Return => {
            let _ = writeln!(out, "{indent}return");
        }
        StmtKind::For { local, start, end, body } => {
            let _ = writeln!(out, "{indent}for local{local} in {}..{} {{", expr(start, program), expr(end, program));
            write_block(out, body, depth + 1, program);
            let _ = writeln!(out, "{indent}}}");
        }
        StmtKind::Emit { event, values } => {
            let values: Vec<String> = values.iter().map(|v| expr(v, program)).collect();
            let name = program.events.get(*event).map_or("?", |e| e.name.as_str());
            let _ = writeln!(out, "{indent}emit {name}#{event}({})", values.join(", "));
        }
    }
}

fn write_else(out: &mut String, otherwise: &[Stmt], depth: usize, program: &Program) {
    let indent = "  ".repeat(depth);
    if otherwise.is_empty() {
        let _ = writeln!(out, "{indent}}}");
    } else {
        let _ = writeln!(out, "{indent}}} else {{");
        write_block(out, otherwise, depth + 1, program);
        let _ = writeln!(out, "{indent}}}");
    }
}

fn builtin(builtin: Builtin) -> &'static str {
    match builtin {
        Builtin::Pid => "pid",
        Builtin::Tid => "tid",
        Builtin::Uid => "uid",
        Builtin::Gid => "gid",
        Builtin::Comm => "comm",
        Builtin::Cpu => "cpu",
        Builtin::Nsecs => "nsecs",
        Builtin::Cgroup => "cgroup",
        Builtin::Cpid => "cpid",
    }
}

/// One expression as `form:type`.
pub fn expr(e: &Expr, program: &Program) -> String {
    let form = match &e.kind {
        ExprKind::Int(pattern) if e.ty.is_signed() => format!("{}", *pattern as i64),
        ExprKind::Int(pattern) => format!("{pattern}"),
        ExprKind::Bool(value) => format!("{value}"),
        ExprKind::Str(bytes) => {
            let text = bytes.split(|&b| b == 0).next().unwrap_or_default();
            format!("{:?}", String::from_utf8_lossy(text))
        }
        ExprKind::Local(id) => format!("local{id}"),
        ExprKind::Builtin(b) => builtin(*b).to_string(),
        ExprKind::Arg(index) => format!("arg{index}"),
        ExprKind::Retval => "retval".to_string(),
        ExprKind::CtxField { offset, size, signed } => {
            format!("ctx[{offset}, {size}{}]", if *signed { ", signed" } else { "" })
        }
        ExprKind::CtxStr { offset, len } => format!("ctx_str[{offset}, {len}]"),
        ExprKind::StackId { user, depth } => format!("{}stack({depth})", if *user { 'u' } else { 'k' }),
        ExprKind::ReadStr { ptr, len, space } => {
            let space = match space {
                crate::hir::AddressSpace::User => "user",
                crate::hir::AddressSpace::Kernel => "kernel",
            };
            format!("(read_str.{space} {} {len})", expr(ptr, program))
        }
        ExprKind::ReadInt { address, size, signed } => {
            format!("(read_int.{}{} {})", if *signed { 'i' } else { 'u' }, *size as u32 * 8, expr(address, program))
        }
        ExprKind::ReadBuf { ptr, len, space } => {
            let space = match space {
                crate::hir::AddressSpace::User => "user",
                crate::hir::AddressSpace::Kernel => "kernel",
            };
            format!("(read_buf.{space} {} {len})", expr(ptr, program))
        }
        ExprKind::Coalesce { map, keys, default } => {
            format!("(?? {} {})", map_ref(*map, keys, program), expr(default, program))
        }
        ExprKind::Conditional { cond, then, otherwise } => {
            format!("(? {} {} {})", expr(cond, program), expr(then, program), expr(otherwise, program))
        }
        ExprKind::Unary { op, operand } => {
            let op = match op {
                UnaryOp::Neg => "-",
                UnaryOp::Not => "!",
                UnaryOp::BitNot => "~",
            };
            format!("({op} {})", expr(operand, program))
        }
        ExprKind::Binary { op, lhs, rhs } => {
            format!("({} {} {})", op.symbol(), expr(lhs, program), expr(rhs, program))
        }
        ExprKind::Cast(inner) => format!("(cast {})", expr(inner, program)),
    };
    format!("{form}:{}", e.ty)
}
