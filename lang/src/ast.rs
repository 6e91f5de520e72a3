//! The syntax tree of a `.ppl` file, exactly as written (names unresolved, types unchecked).
//!
//! Parsing never fails: where the parser recovered from an error the tree holds an
//! `Error` node and the diagnostics say what was wrong.

use crate::span::{Ident, Span, Spanned};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct File {
    /// `//!` lines at the top of the file, without the marker.
    pub doc: Vec<String>,
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// `budget 0.5%;`
    Budget {
        percent: Spanned<f64>,
        span: Span,
    },
    /// `const NAME = expr;`
    Const {
        name: Ident,
        value: Expr,
        span: Span,
    },
    Map(MapDecl),
    Probe(ProbeDecl),
    /// `use stdlib::syscalls::latency;`
    Use(UseDecl),
    /// An item the parser could not make sense of (already reported).
    Error(Span),
}

/// `use A::B::C;`: the module whose items (consts, maps, probes) join the program. Resolved
/// before checking by `modules::resolve` through a `modules::ModuleLoader`.
#[derive(Clone, Debug, PartialEq)]
pub struct UseDecl {
    /// The `::`-separated segments, never empty.
    pub path: Vec<Ident>,
    pub span: Span,
}

impl UseDecl {
    /// The path as written, e.g. `stdlib::syscalls::latency`.
    pub fn path_text(&self) -> String {
        self.path.iter().map(|segment| segment.node.as_str()).collect::<Vec<_>>().join("::")
    }
}

/// `map NAME: KIND[KEY, ..] -> VALUE max N;`
#[derive(Clone, Debug, PartialEq)]
pub struct MapDecl {
    pub name: Ident,
    pub kind: Spanned<MapKindAst>,
    /// Key types between `[` and `]`; empty for an unkeyed map.
    pub key: Vec<TypeExpr>,
    /// `-> TYPE`, for plain key/value maps.
    pub value: Option<TypeExpr>,
    pub max: Option<Spanned<u64>>,
    pub span: Span,
    /// Words after `max N` (only `lru` is one); the checker rejects the others.
    pub flags: Vec<Ident>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum MapKindAst {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    /// Power-of-two histogram.
    Hist,
    /// Linear histogram `lhist(lo, hi, step)`.
    Lhist {
        lo: i64,
        hi: i64,
        step: i64,
    },
    /// Plain key/value map.
    Hash,
    /// `stats`: count, total and average of the recorded values (bpftrace's `stats()`).
    Stats,
    /// `lru_hash`: a key/value map that evicts its least recently used entry when full.
    LruHash,
    /// `percpu_hash`: a key/value map in which every CPU holds its own value for each key
    /// (integers, summed over the CPUs when read).
    PerCpuHash,
    /// `lru_percpu_hash`: a `percpu_hash` that evicts its least recently used entry when full.
    LruPerCpuHash,
    /// `array[N]` / `percpu_array[N]`: `N` slots indexed `0..N`, all present from the start.
    /// `len` is `None` when the declaration gave no `[N]` (reported by the checker).
    Array {
        len: Option<u64>,
        per_cpu: bool,
    },
    /// A kind name the parser does not know (reported by the checker with suggestions).
    Unknown(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct TypeExpr {
    pub kind: TypeExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TypeExprKind {
    /// `u8 .. u64`, `i8 .. i64`, `bool`, or an unknown name (reported by the checker).
    Named(String),
    /// `str[N]`
    Str(u64),
    /// `ustack[N]` / `kstack[N]` (a plain `ustack` is `Named`): a stack key of depth `N`.
    Stack { user: bool, depth: u64 },
    /// `buf[N]`: N raw bytes.
    Buf(u64),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProbeDecl {
    /// `probe a, b { .. }`: one or more attach points sharing the rest of the declaration;
    /// the checker makes one probe of each. Never empty.
    pub attach: Vec<AttachPoint>,
    /// `rate <= N/s`, in events per second.
    pub rate: Option<Spanned<u64>>,
    /// `activate when anomaly(SIGNAL) > P for Ns`: the probe is dormant until the activator
    /// attaches it.
    pub activation: Option<Activation>,
    /// `when EXPR`
    pub predicate: Option<Expr>,
    pub body: Block,
    pub span: Span,
}

/// `activate when anomaly(SENTINEL) > THRESHOLD for DURATION`, as written. The checker
/// validates the sentinel, the threshold's range and the duration.
#[derive(Clone, Debug, PartialEq)]
pub struct Activation {
    /// `bundle::map` names a sentinel in another loaded bundle (checked by ppisd at load time).
    pub bundle: Option<Ident>,
    /// The sentinel aggregation's name.
    pub sentinel: Ident,
    /// P(anomaly) that attaches the probe, written as a decimal number.
    pub threshold: Spanned<f64>,
    /// How long the posterior must stay above the threshold: the number as written...
    pub duration: Spanned<u64>,
    /// ...and its unit (`s`, `m` or `h`; the checker reports others).
    pub unit: Ident,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AttachPoint {
    pub kind: AttachKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum AttachKind {
    /// `tracepoint:CATEGORY:NAME`
    Tracepoint { category: String, name: String },
    /// `uprobe:PATH:SYMBOL` (PATH may be a quoted string).
    Uprobe { path: String, symbol: String },
    /// `uretprobe:PATH:SYMBOL`
    Uretprobe { path: String, symbol: String },
    /// `usdt:PATH:PROVIDER:NAME`; `site` is set when the checker expands it into one attach
    /// point per probe site (the site's address).
    Usdt { path: String, provider: String, name: String, site: Option<u64> },
    /// A probe type the language does not know; `parts` are the `:`-separated rest.
    Unknown { kind: String, parts: Vec<String> },
    /// `rawtracepoint:NAME` (NAME may hold `*` wildcards).
    RawTracepoint { name: String },
    /// `profile:hz:N`: sampling at N Hz on every CPU.
    Profile { hz: u64 },
    /// `interval:ms:N` / `interval:s:N`: a timer on one CPU.
    Interval { unit: IntervalUnit, count: u64 },
    /// `begin`: runs once, before the other probes see events.
    Begin,
    /// `end`: runs once, after the other probes are detached and before the maps are read.
    End,
}

/// The unit of an `interval:UNIT:N` period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntervalUnit {
    Millis,
    Seconds,
}

impl IntervalUnit {
    /// The unit as written in source.
    pub fn as_str(self) -> &'static str {
        match self {
            IntervalUnit::Millis => "ms",
            IntervalUnit::Seconds => "s",
        }
    }

    /// Milliseconds in one unit.
    pub fn millis(self) -> u64 {
        match self {
            IntervalUnit::Millis => 1,
            IntervalUnit::Seconds => 1000,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

/// `m[k1, k2]` or an unkeyed `m`.
#[derive(Clone, Debug, PartialEq)]
pub struct MapRef {
    pub map: Ident,
    pub keys: Vec<Expr>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// `let x = e;`
    Let { name: Ident, value: Expr },
    /// `x = e;`
    Assign { name: Ident, value: Expr },
    /// `m[k] = e;`
    MapAssign { target: MapRef, value: Expr },
    /// `m[k].inc();`, `m.add(e);`, `m[k].record(e);`
    MapCall { target: MapRef, method: Ident, args: Vec<Expr> },
    /// `delete m[k];`
    Delete { target: MapRef },
    /// `if c { .. } else { .. }`; `else if` nests an `If` inside `otherwise`.
    If { cond: Expr, then: Block, otherwise: Option<Block> },
    /// `if let x = m[k] { .. } else { .. }`
    IfLet { name: Ident, source: MapRef, then: Block, otherwise: Option<Block> },
    /// `return;`
    Return,
    /// `for VAR in START..END { .. }`: `VAR` counts up from `START` while below `END`.
    For { var: Ident, start: Expr, end: Expr, body: Block },
    /// `emit NAME { field: expr, .. };`: sends a structured event to user space.
    Emit { name: Ident, fields: Vec<EmitField> },
    /// `print("fmt", args..);`: a printf-style line for humans. `args[0]` is the format
    /// (the checker requires a string literal); an empty `args` is reported by the checker.
    Print { args: Vec<Expr> },
    /// `clear m;`: empties map `m` (asynchronously, in user space).
    Clear { map: Ident },
    /// A statement the parser could not make sense of (already reported).
    Error,
}

/// `field: expr` in an `emit`.
#[derive(Clone, Debug, PartialEq)]
pub struct EmitField {
    pub name: Ident,
    pub value: Expr,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// Integer literal (underscores removed). Negative numbers are `Unary(Neg, ..)`.
    Int(u64),
    Str(String),
    Bool(bool),
    /// A local, a const, a builtin (`pid`, `comm`, `nsecs`, ..), `arg0`..`arg5` or `retval`:
    /// the checker resolves which.
    Name(String),
    /// `args.FIELD`
    Field(Ident),
    /// `e[i]` where `e` is not a map: indexes a tracepoint array field, e.g. `args.args[0]`.
    Index {
        base: Box<Expr>,
        index: Box<Expr>,
    },
    /// `m[k]` read (only valid under `??` or `if let`; the checker says so).
    MapGet(MapRef),
    /// `m[k] ?? default`
    Coalesce {
        source: MapRef,
        default: Box<Expr>,
    },
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    /// `cond ? then : otherwise`
    Conditional {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `e as TYPE`
    Cast {
        expr: Box<Expr>,
        ty: TypeExpr,
    },
    /// `NAME(args)`: a built-in function such as `str(ptr, N)` (the checker resolves it).
    Call {
        name: Ident,
        args: Vec<Expr>,
    },
    /// An expression the parser could not make sense of (already reported).
    Error,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    /// `-e`
    Neg,
    /// `!e` (logical not on bool)
    Not,
    /// `~e` (bitwise not)
    BitNot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    BitAnd,
    BitOr,
    BitXor,
    Shl,
    Shr,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

impl BinaryOp {
    /// The operator as written in source.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
            BinaryOp::BitAnd => "&",
            BinaryOp::BitOr => "|",
            BinaryOp::BitXor => "^",
            BinaryOp::Shl => "<<",
            BinaryOp::Shr => ">>",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::And => "&&",
            BinaryOp::Or => "||",
        }
    }
}
