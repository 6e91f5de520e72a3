//! `ppisc explain CODE`: one page per diagnostic code, with a wrong and a right example.
//!
//! Every code of [`crate::diag::CODES`] has exactly one entry in [`PAGES`] (a test enforces
//! it, and checks that each front-end page's wrong example really reports its code and its
//! right example checks clean). Examples are `.ppl` source, except for the verifier codes
//! that only malformed or hand-written IR can trigger: those show IR text (`docs/ir.md`).

/// The language an example is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExampleLanguage {
    Ppl,
    /// The IR text form `ppisc ir` prints and verifier tests are written in.
    Ir,
}

/// An example program.
#[derive(Clone, Copy, Debug)]
pub enum Example {
    Text(&'static str),
    /// Too long to print whole: the page shows `shown`, tests check `build()`.
    Built {
        shown: &'static str,
        build: fn() -> String,
    },
}

impl Example {
    /// The full program.
    pub fn source(&self) -> String {
        match self {
            Example::Text(text) => text.to_string(),
            Example::Built { build, .. } => build(),
        }
    }
    /// What the page prints.
    pub fn shown(&self) -> &'static str {
        match self {
            Example::Text(text) | Example::Built { shown: text, .. } => text,
        }
    }
}

/// One explain page.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub code: &'static str,
    /// One sentence: what is wrong.
    pub summary: &'static str,
    /// Why it is an error and how to fix it.
    pub details: &'static str,
    pub language: ExampleLanguage,
    pub wrong: Example,
    pub right: Example,
}

/// The `example::` modules the module pages' examples use (`ppisc explain` prints them in
/// the details; the explain test checks the examples against exactly these).
pub const EXAMPLE_MODULES: &[(&str, &str)] = &[
    ("example::calls", "map calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls.inc();\n}\n"),
    ("example::ring_a", "use example::ring_b;\n"),
    ("example::ring_b", "use example::ring_a;\n"),
    ("example::budgeted", "budget 0.1%;\n\nmap calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls.inc();\n}\n"),
];

use Example::Text;
use ExampleLanguage::{Ir, Ppl};

/// The page for `code` (case-insensitive), as text: title, summary, details, examples.
pub fn page(code: &str) -> Option<String> {
    let page = page_entry(code)?;
    let title = crate::diag::code_info(page.code).map_or("", |info| info.title);
    let language = match page.language {
        Ppl => "",
        Ir => " (IR text, as `ppisc ir` prints it)",
    };
    Some(format!(
        "{code}: {title}\n\n{summary}\n\n{details}\n\nWrong{language}:\n\n{wrong}\nRight{language}:\n\n{right}",
        code = page.code,
        summary = page.summary,
        details = page.details,
        wrong = indent(page.wrong.shown()),
        right = indent(page.right.shown()),
    ))
}

/// The table entry for `code` (case-insensitive).
pub fn page_entry(code: &str) -> Option<&'static Page> {
    PAGES.iter().find(|page| page.code.eq_ignore_ascii_case(code.trim()))
}

fn indent(text: &str) -> String {
    text.lines().map(|line| if line.is_empty() { "\n".to_string() } else { format!("    {line}\n") }).collect()
}

/// 300 nested parentheses: over the limit of 256 operators and brackets per expression.
fn deep_expression() -> String {
    format!("const DEEP = {}1{};\n", "(".repeat(300), ")".repeat(300))
}

/// 70 nested `if`s: over the limit of 64 nested blocks.
fn deep_blocks() -> String {
    let depth = 70;
    format!(
        "map calls: count[u32] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {{\n{}calls[pid].inc();{}\n}}\n",
        "if pid > 1 { ".repeat(depth),
        " }".repeat(depth)
    )
}

/// Every page. Keep in the order of `CODES`.
pub const PAGES: &[Page] = &[
    // ------------------------------------------------------------------------ syntax
    Page {
        code: "E0001",
        summary: "The parser met a token it did not expect.",
        details: "The message says what was expected instead. The most common cause is a missing `;` \
at the end of a statement or item: the error then points at the end of the line before. The parser \
recovers at the next `;`, `}` or item keyword, so one run reports every independent syntax error.",
        language: Ppl,
        wrong: Text("map calls: count[u32] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls[pid].inc()\n}\n"),
        right: Text("map calls: count[u32] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls[pid].inc();\n}\n"),
    },
    Page {
        code: "E0002",
        summary: "A character that starts no token, or a file that is not UTF-8.",
        details: "Outside strings and comments only letters, digits, `_` and the language's operators \
may appear. Comments start with `//` (not `#`); strings go between double quotes. `ppisc` also reports \
the first byte of a file that is not valid UTF-8 with this code.",
        language: Ppl,
        wrong: Text("map calls: count[u32] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls[pid].inc(); # per process\n}\n"),
        right: Text("map calls: count[u32] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls[pid].inc(); // per process\n}\n"),
    },
    Page {
        code: "E0003",
        summary: "A string literal without its closing quote, or with an unknown escape.",
        details: "A string ends on its own line. The escapes are `\\n`, `\\t`, `\\r`, `\\0`, `\\\\` and \
`\\\"`; write a backslash as `\\\\`.",
        language: Ppl,
        wrong: Text("map names: count[str[16]] max 64;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    names[\"C:\\dir\"].inc();\n}\n"),
        right: Text("map names: count[str[16]] max 64;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    names[\"C:\\\\dir\"].inc();\n}\n"),
    },
    Page {
        code: "E0004",
        summary: "An integer literal that does not fit in 64 bits, or `0x` without digits.",
        details: "Integer literals are unsigned 64-bit values (negative numbers are a `-` in front of \
one). Underscores may separate digits: `10_000_000`.",
        language: Ppl,
        wrong: Text("const LIMIT = 99_999_999_999_999_999_999;\n"),
        right: Text("const LIMIT = 9_999_999_999_999_999_999;\n"),
    },
    Page {
        code: "E0005",
        summary: "An expression with more than 256 operators and brackets.",
        details: "Expressions are bounded so that no stage of the compiler can run out of stack on \
deeply nested input. The whole item is skipped. Split the expression with `let`.",
        language: Ppl,
        wrong: Example::Built { shown: "const DEEP = ((((((((((((( ... 300 levels ... 1 ))))))))))))));\n", build: deep_expression },
        right: Text("const DEEP = 1;\n"),
    },
    Page {
        code: "E0006",
        summary: "More than 64 nested blocks in one probe.",
        details: "Each `{` and each `else if` counts as one level. Flatten the conditions: combine them \
with `&&`, or return early.",
        language: Ppl,
        wrong: Example::Built {
            shown: "probe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    if pid > 1 { if pid > 1 { ... 70 levels ... } }\n}\n",
            build: deep_blocks,
        },
        right: Text("map calls: count[u32] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    if pid > 1 {\n        calls[pid].inc();\n    }\n}\n"),
    },
    Page {
        code: "E0007",
        summary: "An attach point without all its parts.",
        details: "Tracepoints are `tracepoint:CATEGORY:NAME`; user-space probes are `uprobe:PATH:SYMBOL` \
and `uretprobe:PATH:SYMBOL`. Quote a path with spaces: `uprobe:\"/opt/my app/server\":main`.",
        language: Ppl,
        wrong: Text("map switches: count;\n\nprobe tracepoint:sched_switch rate <= 10k/s {\n    switches.inc();\n}\n"),
        right: Text("map switches: count;\n\nprobe tracepoint:sched:sched_switch rate <= 10k/s {\n    switches.inc();\n}\n"),
    },
    Page {
        code: "E0008",
        summary: "A map kind with missing or unexpected parameters.",
        details: "Only `lhist(lo, hi, step)` takes parameters, exactly three, each fitting a signed \
64-bit integer. Every other kind is written bare: `count`, `sum`, `min`, `max`, `avg`, `hist`, `hash`.",
        language: Ppl,
        wrong: Text("map sizes: lhist[u32] max 64;\n"),
        right: Text("map sizes: lhist(0, 4096, 256)[u32] max 64;\n"),
    },
    Page {
        code: "E0009",
        summary: "A rate with a unit other than `/s`.",
        details: "`rate <= N/s` declares how many events per second the probe's trigger fires, system \
wide. `N` may use the suffixes `k` (thousand) and `M` (million); the unit is always seconds.",
        language: Ppl,
        wrong: Text("map calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 5/ms {\n    calls.inc();\n}\n"),
        right: Text("map calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 5k/s {\n    calls.inc();\n}\n"),
    },
    Page {
        code: "E0010",
        summary: "The left side of `??` is not a map lookup.",
        details: "`m[k] ?? default` reads a map entry, or `default` when the key is missing. `??` binds \
tighter than comparisons but looser than arithmetic, so `m[k] + 1 ?? 0` puts the addition on the left: \
parenthesise the lookup.",
        language: Ppl,
        wrong: Text("map start: hash[u32] -> u64 max 1024;\nmap next: hash[u32] -> u64 max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    next[tid] = start[tid] + 1 ?? 0;\n}\n"),
        right: Text("map start: hash[u32] -> u64 max 1024;\nmap next: hash[u32] -> u64 max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    next[tid] = (start[tid] ?? 0) + 1;\n}\n"),
    },
    Page {
        code: "E0011",
        summary: "A field access on something other than `args`.",
        details: "Only `args` has fields: the tracepoint's record, `args.FIELD`. Process facts are \
builtins (`pid`, `tid`, `uid`, `comm`, `cpu`, `nsecs`); map methods are statements (`m[k].inc();`).",
        language: Ppl,
        wrong: Text("map last: hash[u32] -> u32 max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    last[cpu] = task.pid;\n}\n"),
        right: Text("map last: hash[u32] -> u32 max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    last[cpu] = pid;\n}\n"),
    },
    Page {
        code: "E0012",
        summary: "A length on a type other than `str`.",
        details: "`str[N]` is a string of up to N bytes (NUL included). Integer types have no length; \
for several integers, use several keys: `count[u32, u32]`.",
        language: Ppl,
        wrong: Text("map pairs: count[u32[2]] max 1024;\n"),
        right: Text("map pairs: count[u32, u32] max 1024;\n"),
    },
    Page {
        code: "E0013",
        summary: "A `use` names a module that does not exist.",
        details: "`use stdlib::syscalls::latency;` loads `syscalls/latency.ppl` from the standard library: \
the directory given with `ppisc --stdlib DIR`, else `$PPIS_STDLIB`, else the `stdlib/` of the source tree \
ppisc was built from, else the copy compiled into ppisc. Module paths start with `stdlib::`. The examples \
of these pages use a small `example::` library: `example::calls` counts syscalls in a map `calls`.",
        language: Ppl,
        wrong: Text("use example::cals;\n"),
        right: Text("use example::calls;\n"),
    },
    Page {
        code: "E0014",
        summary: "Modules that use each other in a circle.",
        details: "A module's items join the program once, after the modules it uses, so a module cannot \
(directly or through others) use itself. Here `example::ring_a` uses `example::ring_b`, which uses \
`example::ring_a`. Move what both need into a third module that neither uses back.",
        language: Ppl,
        wrong: Text("use example::ring_a;\n"),
        right: Text("use example::calls;\n"),
    },
    Page {
        code: "E0015",
        summary: "A map or const of the same name in a module and in the main file (or in two modules).",
        details: "Maps and consts of every file share one namespace (the runtime prints maps by name, and \
`-D NAME=VALUE` sets consts by name), so a name may be defined in one file only. The message names both \
files. `example::calls` declares the map `calls`: rename the main file's map.",
        language: Ppl,
        wrong: Text("use example::calls;\n\nmap calls: count;\n\nprobe tracepoint:raw_syscalls:sys_exit rate <= 1k/s {\n    calls.inc();\n}\n"),
        right: Text("use example::calls;\n\nmap exits: count;\n\nprobe tracepoint:raw_syscalls:sys_exit rate <= 1k/s {\n    exits.inc();\n}\n"),
    },
    Page {
        code: "E0016",
        summary: "A `budget` in a module.",
        details: "The overhead budget is the whole program's, so only the main file sets it. \
`example::budgeted` declares `budget 0.1%;`: remove it from the module and put it in the main file.",
        language: Ppl,
        wrong: Text("use example::budgeted;\n"),
        right: Text("budget 0.1%;\nuse example::calls;\n"),
    },
    // ------------------------------------------------------------------------- names
    Page {
        code: "E0101",
        summary: "A name that is neither a local, a const, a builtin nor a probe argument.",
        details: "Locals are declared with `let` before use; consts with `const` above their first use. \
The builtins are `pid`, `tid`, `uid`, `comm`, `cpu`, `nsecs` and `cpid`; uprobes add `arg0`..`arg5`, \
uretprobes `retval`. The message suggests the closest existing name.",
        language: Ppl,
        wrong: Text("map last: hash[u32] -> u64 max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    last[tid] = nsec;\n}\n"),
        right: Text("map last: hash[u32] -> u64 max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    last[tid] = nsecs;\n}\n"),
    },
    Page {
        code: "E0102",
        summary: "A map name used in a probe has no `map` declaration.",
        details: "Maps are declared at the top level with `map NAME: KIND[KEYS] max N;`. The message \
suggests the closest declared map.",
        language: Ppl,
        wrong: Text("map calls: count[str[16]] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    cals[comm].inc();\n}\n"),
        right: Text("map calls: count[str[16]] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls[comm].inc();\n}\n"),
    },
    Page {
        code: "E0103",
        summary: "Two maps or consts with the same name.",
        details: "Maps and consts share one namespace, so a const may not reuse a map's name either. \
Rename one of them.",
        language: Ppl,
        wrong: Text("map calls: count[u32] max 1024;\nconst calls = 5;\n"),
        right: Text("map calls: count[u32] max 1024;\nconst MAX_CALLS = 5;\n"),
    },
    Page {
        code: "E0104",
        summary: "A map kind the language does not have.",
        details: "The kinds are the aggregations `count`, `sum`, `min`, `max`, `avg`, `hist` (powers of \
two) and `lhist(lo, hi, step)` (linear buckets), and `hash` for plain key/value maps.",
        language: Ppl,
        wrong: Text("map calls: cnt[u32] max 1024;\n"),
        right: Text("map calls: count[u32] max 1024;\n"),
    },
    Page {
        code: "E0105",
        summary: "A type name the language does not have.",
        details: "The types are `u8`, `u16`, `u32`, `u64`, `i8`, `i16`, `i32`, `i64`, `bool` and \
`str[N]` (1 to 256 bytes).",
        language: Ppl,
        wrong: Text("map calls: count[u31] max 1024;\n"),
        right: Text("map calls: count[u32] max 1024;\n"),
    },
    Page {
        code: "E0106",
        summary: "An assignment to a const, a builtin, a probe argument or a whole map.",
        details: "Only locals declared with `let` can be assigned. Map entries are updated with \
`m[k] = v;` (hash maps) or a method (aggregations).",
        language: Ppl,
        wrong: Text("map last: hash[u32] -> u64 max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    pid = pid + 1;\n    last[tid] = pid;\n}\n"),
        right: Text("map last: hash[u32] -> u64 max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    let next = pid + 1;\n    last[tid] = next;\n}\n"),
    },
    Page {
        code: "E0107",
        summary: "A map used where a value is expected.",
        details: "A map is a table, not a value. Read one entry with `m[k] ?? default`, or with \
`if let v = m[k] { .. }`.",
        language: Ppl,
        wrong: Text("map start: hash[u32] -> u64 max 1024;\nmap next: hash[u32] -> u64 max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    next[tid] = start + 1;\n}\n"),
        right: Text("map start: hash[u32] -> u64 max 1024;\nmap next: hash[u32] -> u64 max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    next[tid] = (start[tid] ?? 0) + 1;\n}\n"),
    },
    Page {
        code: "E0110",
        summary: "A `rawtracepoint`, `profile`, `interval`, `begin` or `end` attach point without the parts its kind needs.",
        details: "The forms are `rawtracepoint:NAME`, `profile:hz:N` (N samples a second on every CPU), \
`interval:ms:N` and `interval:s:N` (a timer on one CPU), and bare `begin` and `end`. N is a \
plain decimal integer.",
        language: Ppl,
        wrong: Text("map samples: count[u32] max 1024;\n\nprobe profile:99 {\n    samples[cpu].inc();\n}\n"),
        right: Text("map samples: count[u32] max 1024;\n\nprobe profile:hz:99 {\n    samples[cpu].inc();\n}\n"),
    },
    Page {
        code: "E0111",
        summary: "A raw tracepoint the host does not have.",
        details: "Raw tracepoints are named without their category (`sys_enter`, `sched_switch`): the names \
are those of `/sys/kernel/tracing/available_events` after the `:`.",
        language: Ppl,
        wrong: Text("map calls: count;\n\nprobe rawtracepoint:sys_entr rate <= 1k/s {\n    calls.inc();\n}\n"),
        right: Text("map calls: count;\n\nprobe rawtracepoint:sys_enter rate <= 1k/s {\n    calls.inc();\n}\n"),
    },
    Page {
        code: "E0112",
        summary: "A `profile` frequency or `interval` period the kernel cannot honour.",
        details: "`profile:hz:N` takes 1 to 100000 Hz (the kernel throttles higher sample rates anyway); \
`interval` periods go from 1 ms to one day.",
        language: Ppl,
        wrong: Text("map samples: count[u32] max 1024;\n\nprobe profile:hz:0 {\n    samples[cpu].inc();\n}\n"),
        right: Text("map samples: count[u32] max 1024;\n\nprobe profile:hz:99 {\n    samples[cpu].inc();\n}\n"),
    },
    Page {
        code: "E0113",
        summary: "A `rate` declaration below the rate a `profile` or `interval` probe fires at by construction.",
        details: "`profile:hz:N` fires N times a second on every CPU and `interval` once per period, so their \
rate is known and the overhead check uses it without any declaration. Declaring less would \
be a false promise: remove the declaration, or declare at least the implied rate.",
        language: Ppl,
        wrong: Text("map samples: count[u32] max 1024;\n\nprobe profile:hz:99 rate <= 100/s {\n    samples[cpu].inc();\n}\n"),
        right: Text("map samples: count[u32] max 1024;\n\nprobe profile:hz:99 {\n    samples[cpu].inc();\n}\n"),
    },
    Page {
        code: "E0114",
        summary: "A wildcard attach point that matches no tracepoint or symbol.",
        details: "`*` in the last part of an attach point expands, when the file is checked, to every \
tracepoint of the category (from tracefs) or function of the binary (from its ELF symbols) \
that matches. The help lists the closest names.",
        language: Ppl,
        wrong: Text("map opens: count;\n\nprobe tracepoint:syscalls:sys_enter_opne* rate <= 1k/s {\n    opens.inc();\n}\n"),
        right: Text("map opens: count;\n\nprobe tracepoint:syscalls:sys_enter_openat rate <= 1k/s {\n    opens.inc();\n}\n"),
    },
    Page {
        code: "E0115",
        summary: "`args`, `arg0`..`arg5` or `retval` in a probe kind that does not have them.",
        details: "Raw tracepoints have `arg0`..`arg5` (their u64 arguments) but no named fields and no return \
value; `profile`, `interval`, `begin` and `end` probes have no context at all and read \
builtins only (pid, tid, comm, cpu, nsecs, uid).",
        language: Ppl,
        wrong: Text("map first: max;\n\nprobe profile:hz:99 {\n    first.record(arg0);\n}\n"),
        right: Text("map first: max;\n\nprobe profile:hz:99 {\n    first.record(cpu);\n}\n"),
    },
    Page {
        code: "E0116",
        summary: "A wildcard the checker cannot expand: in a category or path, or on a host it cannot ask.",
        details: "Only the last part of an attach point (tracepoint name, symbol, raw tracepoint name) may \
hold `*`. Expansion reads tracefs and ELF files, so it needs the target host.",
        language: Ppl,
        wrong: Text("map opens: count;\n\nprobe tracepoint:sys*:sys_enter_openat rate <= 1k/s {\n    opens.inc();\n}\n"),
        right: Text("map opens: count;\n\nprobe tracepoint:syscalls:sys_enter_openat rate <= 1k/s {\n    opens.inc();\n}\n"),
    },
    Page {
        code: "E0117",
        summary: "A wildcard that matches more than 256 attach points.",
        details: "Every match becomes its own program in the kernel, loaded and attached separately, so a \
pattern as broad as `*` would load hundreds. Narrow the pattern.",
        language: Ppl,
        wrong: Text("map calls: count;\n\nprobe uprobe:/usr/lib/libhuge.so:fn_* rate <= 1k/s {\n    calls.inc();\n}\n"),
        right: Text("map calls: count;\n\nprobe uprobe:/usr/lib/libhuge.so:fn_1 rate <= 1k/s {\n    calls.inc();\n}\n"),
    },
    // ------------------------------------------------------------------------- types
    Page {
        code: "E0201",
        summary: "A value of the wrong type: a string where a number goes, a number for a bool, ...",
        details: "Integers, bools and strings never convert into each other implicitly. Compare to get \
a bool (`x != 0`); keys and values must match the map's declared types.",
        language: Ppl,
        wrong: Text("map start: hash[u32] -> u64 max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    start[tid] = \"now\";\n}\n"),
        right: Text("map start: hash[u32] -> u64 max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    start[tid] = nsecs;\n}\n"),
    },
    Page {
        code: "E0202",
        summary: "A wider integer used where a narrower one is expected.",
        details: "Integers widen implicitly (`u32` to `u64`) but never narrow, since that may lose \
bits. Truncate explicitly with `as` when that is what you mean, or declare the wider type.",
        language: Ppl,
        wrong: Text("map small: hash[u32] -> u16 max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    small[tid] = pid;\n}\n"),
        right: Text("map small: hash[u32] -> u16 max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    small[tid] = pid as u16;\n}\n"),
    },
    Page {
        code: "E0203",
        summary: "An integer literal outside the range of the type it is used as.",
        details: "Literals take the type their context wants and must fit it: a `u8` holds 0 to 255, an \
unsigned type no negative number. Use a value in range, or truncate explicitly with `as`.",
        language: Ppl,
        wrong: Text("map bytes: count[u8] max 256;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    bytes[300].inc();\n}\n"),
        right: Text("map bytes: count[u8] max 256;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    bytes[255].inc();\n}\n"),
    },
    Page {
        code: "E0204",
        summary: "An `if` condition or `when` predicate that is not a `bool`.",
        details: "There is no truthiness: integers and strings are not conditions. Compare instead: \
`if x != 0`, `when comm == \"bash\"`.",
        language: Ppl,
        wrong: Text("map calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    if pid {\n        calls.inc();\n    }\n}\n"),
        right: Text("map calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    if pid != 0 {\n        calls.inc();\n    }\n}\n"),
    },
    Page {
        code: "E0205",
        summary: "An operator applied to types it is not defined for.",
        details: "Arithmetic and bit operators take integers; `&&`, `||` and `!` take bools; strings \
compare only with `==` and `!=`, integers with every comparison; both sides of a comparison have the \
same kind of type.",
        language: Ppl,
        wrong: Text("map calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    if comm < \"m\" {\n        calls.inc();\n    }\n}\n"),
        right: Text("map calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    if comm == \"make\" {\n        calls.inc();\n    }\n}\n"),
    },
    Page {
        code: "E0206",
        summary: "A cast `as` between types it cannot convert.",
        details: "`as` converts between integer types (truncating or extending). Bools and strings do \
not cast: compare to get a bool, and declare strings with the length you need.",
        language: Ppl,
        wrong: Text("map calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    if pid as bool {\n        calls.inc();\n    }\n}\n"),
        right: Text("map calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    if pid != 0 {\n        calls.inc();\n    }\n}\n"),
    },
    Page {
        code: "E0207",
        summary: "A method the map's kind does not have.",
        details: "`count` maps take `.inc()`, `sum` maps `.add(v)`, `min`, `max`, `avg`, `hist` and \
`lhist` maps `.record(v)`. Hash maps have no methods: assign entries with `m[k] = v;`.",
        language: Ppl,
        wrong: Text("map calls: count[u32] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls[pid].add(1);\n}\n"),
        right: Text("map calls: count[u32] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls[pid].inc();\n}\n"),
    },
    Page {
        code: "E0208",
        summary: "A map entry read without saying what happens when the key is missing.",
        details: "A lookup may find nothing. Give a default with `m[k] ?? 0`, or run code only when the \
entry exists with `if let v = m[k] { .. }`. This is what lets the verifier prove every map access \
null-checked.",
        language: Ppl,
        wrong: Text("map start: hash[u32] -> u64 max 1024;\nmap lat: hist;\n\nprobe tracepoint:raw_syscalls:sys_exit rate <= 1k/s {\n    let t0 = start[tid];\n    lat.record(nsecs - t0);\n}\n"),
        right: Text("map start: hash[u32] -> u64 max 1024;\nmap lat: hist;\n\nprobe tracepoint:raw_syscalls:sys_exit rate <= 1k/s {\n    if let t0 = start[tid] {\n        lat.record(nsecs - t0);\n    }\n}\n"),
    },
    Page {
        code: "E0209",
        summary: "An aggregation map read inside a probe.",
        details: "Aggregations (`count`, `sum`, `min`, `max`, `avg`, `hist`, `lhist`) are kept per CPU and \
combined only when user space reads them, so a probe cannot see their total. Read them from user space \
(`ppisc run` prints them); keep state a probe must read in a `hash` map.",
        language: Ppl,
        wrong: Text("map calls: count[u32] max 1024;\nmap seen: hash[u32] -> u64 max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    seen[pid] = calls[pid] ?? 0;\n}\n"),
        right: Text("map calls: count[u32] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls[pid].inc();\n}\n"),
    },
    Page {
        code: "E0210",
        summary: "A map indexed with a different number of keys than it declares.",
        details: "`map m: count[u32, str[16]]` takes two keys, `m[pid, comm]`; an unkeyed map such as \
`map total: sum;` takes none: `total.add(x);`.",
        language: Ppl,
        wrong: Text("map calls: count[u32] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls[pid, tid].inc();\n}\n"),
        right: Text("map calls: count[u32, u32] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls[pid, tid].inc();\n}\n"),
    },
    Page {
        code: "E0211",
        summary: "A string longer than the `str[N]` it goes into.",
        details: "A `str[N]` holds N bytes including the terminating NUL, so at most N-1 characters of \
ASCII. Strings convert to equal or longer `str` types only; declare a longer one.",
        language: Ppl,
        wrong: Text("map names: count[str[8]] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    names[comm].inc();\n}\n"),
        right: Text("map names: count[str[16]] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    names[comm].inc();\n}\n"),
    },
    Page {
        code: "E0212",
        summary: "A keyed map without `max N`, or with `max 0`.",
        details: "eBPF maps are allocated up front, so every keyed map declares the most distinct keys it \
holds. Inserts beyond it fail (and the verifier warns about maps that only grow, W0400).",
        language: Ppl,
        wrong: Text("map calls: count[u32];\n"),
        right: Text("map calls: count[u32] max 1024;\n"),
    },
    Page {
        code: "E0213",
        summary: "`max N` on a map without keys.",
        details: "An unkeyed map holds exactly one value, so it has no size to declare. Remove `max`, or \
add a key.",
        language: Ppl,
        wrong: Text("map total: sum max 100;\n"),
        right: Text("map total: sum;\n"),
    },
    Page {
        code: "E0214",
        summary: "A hash map without its key or value type, or an aggregation with a value type.",
        details: "Hash maps declare both: `map start: hash[u32] -> u64 max 1024;`. Aggregations infer \
their value type from what they record, so they have no `-> TYPE`. Per-CPU maps (`percpu_array`, \
`percpu_hash`, `lru_percpu_hash`) hold integers: every CPU keeps its own value, and reading sums them.",
        language: Ppl,
        wrong: Text("map start: hash[u32] max 1024;\n"),
        right: Text("map start: hash[u32] -> u64 max 1024;\n"),
    },
    Page {
        code: "E0215",
        summary: "`lhist(lo, hi, step)` bounds that do not make buckets.",
        details: "`lo` must be below `hi`, `step` positive, and the range must not make more than the \
allowed number of buckets; a histogram recording signed values needs a signed range.",
        language: Ppl,
        wrong: Text("map sizes: lhist(4096, 0, 256)[u32] max 64;\n"),
        right: Text("map sizes: lhist(0, 4096, 256)[u32] max 64;\n"),
    },
    Page {
        code: "E0216",
        summary: "A `str[N]` with a length outside 1 to 256.",
        details: "Strings live on the 512-byte eBPF stack, so they are bounded. `str[16]` fits a \
command name (`comm`).",
        language: Ppl,
        wrong: Text("map names: count[str[1000]] max 64;\n"),
        right: Text("map names: count[str[16]] max 64;\n"),
    },
    Page {
        code: "E0217",
        summary: "A `const` whose value is only known at run time.",
        details: "Consts are folded at compile time: integer, string or bool literals and arithmetic on \
them and on earlier consts. Builtins such as `pid` and fields such as `args.id` are run-time values: \
use them inside a probe.",
        language: Ppl,
        wrong: Text("const ME = pid;\n"),
        right: Text("const ME = 1234;\n"),
    },
    Page {
        code: "E0218",
        summary: "A tracepoint array field read whole, indexed out of bounds, or indexed at run time.",
        details: "Array fields such as `args.args` of `raw_syscalls:sys_enter` are read one element at \
a time with a constant index inside the array's bounds. Only `args` array fields can be indexed.",
        language: Ppl,
        wrong: Text("map first: hash[u32] -> u64 max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    first[tid] = args.args;\n}\n"),
        right: Text("map first: hash[u32] -> u64 max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    first[tid] = args.args[0];\n}\n"),
    },
    Page {
        code: "E0219",
        summary: "A map method called with the wrong number of arguments.",
        details: "`.inc()` takes none; `.add(v)` and `.record(v)` take exactly one.",
        language: Ppl,
        wrong: Text("map calls: count[u32] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls[pid].inc(1);\n}\n"),
        right: Text("map calls: count[u32] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls[pid].inc();\n}\n"),
    },
    Page {
        code: "E0220",
        summary: "Constant arithmetic that overflows, shifts by 64 or more, or divides by zero.",
        details: "Constant expressions are folded exactly at compile time, so what would silently wrap \
at run time is an error here.",
        language: Ppl,
        wrong: Text("const TOP_BIT = 1 << 64;\n"),
        right: Text("const TOP_BIT = 1 << 63;\n"),
    },
    Page {
        code: "E0221",
        summary: "An assignment to an entry of an aggregation map.",
        details: "Aggregations are updated only through their method (`.inc()`, `.add(v)`, \
`.record(v)`), which is what makes them per-CPU and race-free. Use a `hash` map to store values.",
        language: Ppl,
        wrong: Text("map calls: count[u32] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls[pid] = 1;\n}\n"),
        right: Text("map calls: count[u32] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls[pid].inc();\n}\n"),
    },
    Page {
        code: "E0222",
        summary: "`delete` on a map without keys.",
        details: "An unkeyed map holds exactly one value and has no entries to delete. Only keyed maps \
support `delete m[k];`.",
        language: Ppl,
        wrong: Text("map total: sum;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    delete total;\n}\n"),
        right: Text("map start: hash[u32] -> u64 max 1024;\n\nprobe tracepoint:raw_syscalls:sys_exit rate <= 1k/s {\n    delete start[tid];\n}\n"),
    },
    Page {
        code: "E0223",
        summary: "`delete` on an array map.",
        details: "An array map holds all of its `N` slots from the start, indexed `0..N`; there is no \
entry to delete. Reset the slot to zero instead.",
        language: Ppl,
        wrong: Text("map slots: array[16] -> u64;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    delete slots[1];\n}\n"),
        right: Text("map slots: array[16] -> u64;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    slots[1] = 0;\n}\n"),
    },
    Page {
        code: "E0224",
        summary: "An array map declared with key types, `max`, or a length outside 1 to 2^20.",
        details: "Arrays are indexed by position: `map slots: array[256] -> u64;` declares 256 slots. \
The length goes in the brackets, so there are no key types and no `max`.",
        language: Ppl,
        wrong: Text("map slots: array[u32] -> u64 max 256;\n"),
        right: Text("map slots: array[256] -> u64;\n"),
    },
    Page {
        code: "E0225",
        summary: "A call of a function the language does not have.",
        details: "The only built-in function is `str(ptr, N)`: a bounded read of the string at `ptr`, \
at most `N` bytes.",
        language: Ppl,
        wrong: Text("map names: count[str[16]] max 1024;\n\nprobe uprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    names[string(arg0, 16)].inc();\n}\n"),
        right: Text("map names: count[str[16]] max 1024;\n\nprobe uprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    names[str(arg0, 16)].inc();\n}\n"),
    },
    Page {
        code: "E0226",
        summary: "A built-in function called with the wrong number of arguments.",
        details: "`str(ptr, N)` takes the pointer and the most bytes to read, a constant.",
        language: Ppl,
        wrong: Text("map names: count[str[16]] max 1024;\n\nprobe uprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    names[str(arg0)].inc();\n}\n"),
        right: Text("map names: count[str[16]] max 1024;\n\nprobe uprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    names[str(arg0, 16)].inc();\n}\n"),
    },
    Page {
        code: "E0227",
        summary: "The two branches of `c ? a : b` have types that do not unify.",
        details: "Both branches must be integers (they widen to a common type, as comparison operands \
do), both strings (the shorter is NUL-padded) or both bools. Only the branch the condition picks is \
evaluated.",
        language: Ppl,
        wrong: Text("map calls: count[u64] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls[pid == 1 ? 0 : \"user\"].inc();\n}\n"),
        right: Text("map calls: count[u64] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls[pid == 1 ? 0 : 1].inc();\n}\n"),
    },
    Page {
        code: "E0230",
        summary: "`ustack` or `kstack` used as a value rather than as a map key.",
        details: "A stack is recorded by the kernel in a stack map and named by an id that user space \
resolves into symbolised frames when it reads the maps. So `ustack`, `kstack`, `ustack(N)` and \
`kstack(N)` may only be written directly as a key (or one part of a tuple key) of a map whose key \
type is the matching stack type, e.g. `map s: count[ustack] max 1024;` and `s[ustack].inc();`.",
        language: Ppl,
        wrong: Text("map depth: sum;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    depth.add(kstack);\n}\n"),
        right: Text("map stacks: count[kstack] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    stacks[kstack].inc();\n}\n"),
    },
    Page {
        code: "E0231",
        summary: "A map key and the map's declared key type disagree about stacks.",
        details: "A key declared `ustack[N]` (user stack, N frames) or `kstack[N]` must be written \
`ustack(N)`/`kstack(N)` with the same kind and depth (a plain `ustack` or `kstack` means the \
declared depth); a stack may not be used for a key of another type, nor another value for a \
stack key. A plain `ustack`/`kstack` type keeps 127 frames.",
        language: Ppl,
        wrong: Text("map stacks: count[str[16], kstack[16]] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    stacks[comm, ustack(16)].inc();\n}\n"),
        right: Text("map stacks: count[str[16], kstack[16]] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    stacks[comm, kstack(16)].inc();\n}\n"),
    },
    Page {
        code: "E0232",
        summary: "A stack type used as a map's value type or as the target of a cast.",
        details: "Stack types (`ustack`, `kstack`, `ustack[N]`, `kstack[N]`) name stack ids the runtime \
symbolises when it reads a map's keys; they exist only among a map's key types.",
        language: Ppl,
        wrong: Text("map last: hash[u32] -> ustack max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    last[pid] = 1;\n}\n"),
        right: Text("map stacks: count[u32, ustack] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    stacks[pid, ustack].inc();\n}\n"),
    },
    Page {
        code: "E0233",
        summary: "A stack depth that is not a constant from 1 to 127.",
        details: "`ustack(N)`/`kstack(N)` and the types `ustack[N]`/`kstack[N]` keep at most N frames; \
N must be a compile-time constant from 1 to 127 (the kernel's default `perf_event_max_stack`). \
Each distinct (kind, depth) gets its own kernel stack map of N 8-byte frames per entry.",
        language: Ppl,
        wrong: Text("map stacks: count[ustack[16]] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    stacks[ustack(cpu)].inc();\n}\n"),
        right: Text("map stacks: count[ustack[16]] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    stacks[ustack(16)].inc();\n}\n"),
    },
    // -------------------------------------------------------------- output statements
    Page {
        code: "E0240",
        summary: "A statement that starts with a word the language does not know.",
        details: "Besides assignments and map updates, a statement may be `emit NAME { field: value, .. };`, which \
sends a structured event to user space, or `print(\"format\", args..);`, which prints a line. `emit` and \
`print` are not reserved words, so a misspelt one reads as an unknown statement.",
        language: Ppl,
        wrong: Text("probe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    emitt call { n: pid };\n}\n"),
        right: Text("probe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    emit call { n: pid };\n}\n"),
    },
    Page {
        code: "E0241",
        summary: "A `print` format that is not a string literal or has an unknown conversion.",
        details: "The format is checked at compile time, so it must be written out as a string literal. Its \
conversions are `%d` (signed decimal), `%u` (unsigned decimal), `%x` (hexadecimal) and `%s` (string); \
`%%` prints a percent sign.",
        language: Ppl,
        wrong: Text("probe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    print(\"pid=%f\\n\", pid);\n}\n"),
        right: Text("probe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    print(\"pid=%d\\n\", pid);\n}\n"),
    },
    Page {
        code: "E0242",
        summary: "`print` got more or fewer arguments than its format has conversions.",
        details: "Each conversion (`%d`, `%u`, `%x`, `%s`) takes the next argument, in order; every argument needs \
one. The error points at the first conversion without an argument, or the first argument without a \
conversion.",
        language: Ppl,
        wrong: Text("probe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    print(\"%d %d\\n\", pid);\n}\n"),
        right: Text("probe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    print(\"%d %d\\n\", pid, tid);\n}\n"),
    },
    Page {
        code: "E0243",
        summary: "A `print` argument whose type does not suit its conversion.",
        details: "`%d`, `%u` and `%x` print integers; `%s` prints strings (`str[N]`). A bool prints as a number \
with `b ? 1 : 0`.",
        language: Ppl,
        wrong: Text("probe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    print(\"%d\\n\", comm);\n}\n"),
        right: Text("probe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    print(\"%s\\n\", comm);\n}\n"),
    },
    Page {
        code: "E0244",
        summary: "An event whose record does not fit on the 512-byte eBPF stack.",
        details: "A probe builds each `emit` or `print` record on its stack before copying it to the ring buffer: \
a 4-byte event-type id, then the values at their natural alignment, rounded up to 8 bytes. The whole \
record must fit in the 512 bytes of the eBPF stack; send shorter strings or fewer values.",
        language: Ppl,
        wrong: Text("probe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    emit big { a: str(args.args[0], 256), b: str(args.args[1], 256) };\n}\n"),
        right: Text("probe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    emit big { a: str(args.args[0], 256) };\n}\n"),
    },
    Page {
        code: "E0245",
        summary: "An `emit` that repeats a field, or names other fields than an earlier `emit` of the same event.",
        details: "All `emit`s of one name send one event type: the first fixes its fields and their types, and the \
runtime decodes every record with that schema. Later `emit`s must give the same fields (in any order), \
each once; their values are converted to the first one's types.",
        language: Ppl,
        wrong: Text("probe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    emit call { n: pid };\n    if tid > 1 {\n        emit call { count: pid };\n    }\n}\n"),
        right: Text("probe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    emit call { n: pid };\n    if tid > 1 {\n        emit call { n: tid };\n    }\n}\n"),
    },
    // -------------------------------------------------------------- activation rules
    Page {
        code: "E0250",
        summary: "A dormant probe's sentinel names no map of the file.",
        details: "`activate when anomaly(SENTINEL) ...` makes the probe dormant: ppisd attaches it when the \
activator is confident the SENTINEL aggregation looks anomalous. SENTINEL must be a map declared in \
the same file (which cheap, always-attached probes update), or `bundle::map` for a sentinel of another \
bundle loaded by the same ppisd (checked when the daemon loads the bundle).",
        language: Ppl,
        wrong: Text("map latency: hist;\nmap slow_args: count[u64] max 1024;\n\nprobe uretprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    latency.record(retval);\n}\n\nprobe uprobe:/usr/bin/app:handle_request activate when anomaly(latncy) > 0.85 for 10s {\n    slow_args[arg0].inc();\n}\n"),
        right: Text("map latency: hist;\nmap slow_args: count[u64] max 1024;\n\nprobe uretprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    latency.record(retval);\n}\n\nprobe uprobe:/usr/bin/app:handle_request activate when anomaly(latency) > 0.85 for 10s {\n    slow_args[arg0].inc();\n}\n"),
    },
    Page {
        code: "E0251",
        summary: "The sentinel is a map that gives no per-window signal.",
        details: "Each tick the daemon turns the sentinel into one observation: the p99 of a `hist`/`lhist`'s \
new values, the mean of an `avg`'s, the rate of a `count` or `sum`. A `min` or `max` never goes back \
down and a hash or array holds values, not events, so none of them can say whether this window is \
abnormal.",
        language: Ppl,
        wrong: Text("map latency: hist;\nmap biggest: max;\nmap slow_args: count[u64] max 1024;\n\nprobe uretprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    latency.record(retval);\n    biggest.record(retval);\n}\n\nprobe uprobe:/usr/bin/app:handle_request activate when anomaly(biggest) > 0.85 for 10s {\n    slow_args[arg0].inc();\n}\n"),
        right: Text("map latency: hist;\nmap slow_args: count[u64] max 1024;\n\nprobe uretprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    latency.record(retval);\n}\n\nprobe uprobe:/usr/bin/app:handle_request activate when anomaly(latency) > 0.85 for 10s {\n    slow_args[arg0].inc();\n}\n"),
    },
    Page {
        code: "E0252",
        summary: "The activation threshold is not a probability strictly between 0 and 1.",
        details: "The threshold is the posterior probability of an anomaly at which the probe is attached. \
0 would attach it always and 1 never, so neither is allowed; values such as 0.85 to 0.99 are typical \
(higher means fewer, later activations).",
        language: Ppl,
        wrong: Text("map latency: hist;\nmap slow_args: count[u64] max 1024;\n\nprobe uretprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    latency.record(retval);\n}\n\nprobe uprobe:/usr/bin/app:handle_request activate when anomaly(latency) > 85 for 10s {\n    slow_args[arg0].inc();\n}\n"),
        right: Text("map latency: hist;\nmap slow_args: count[u64] max 1024;\n\nprobe uretprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    latency.record(retval);\n}\n\nprobe uprobe:/usr/bin/app:handle_request activate when anomaly(latency) > 0.85 for 10s {\n    slow_args[arg0].inc();\n}\n"),
    },
    Page {
        code: "E0253",
        summary: "The activation duration is zero or has an unknown unit.",
        details: "`for N` says how long the posterior must stay above the threshold before the probe is attached, \
which keeps a single noisy window from attaching it. It must be positive and written in seconds, \
minutes or hours: `for 10s`, `for 2m`, `for 1h`.",
        language: Ppl,
        wrong: Text("map latency: hist;\nmap slow_args: count[u64] max 1024;\n\nprobe uretprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    latency.record(retval);\n}\n\nprobe uprobe:/usr/bin/app:handle_request activate when anomaly(latency) > 0.85 for 0s {\n    slow_args[arg0].inc();\n}\n"),
        right: Text("map latency: hist;\nmap slow_args: count[u64] max 1024;\n\nprobe uretprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    latency.record(retval);\n}\n\nprobe uprobe:/usr/bin/app:handle_request activate when anomaly(latency) > 0.85 for 10s {\n    slow_args[arg0].inc();\n}\n"),
    },
    Page {
        code: "E0254",
        summary: "A probe clause that looks like an activation rule but is not one.",
        details: "The only clause between a probe's attach point (and `rate`) and its `when` predicate or body is \
`activate when anomaly(SENTINEL) > P for DURATION`; the words `activate` and `anomaly` must be spelt \
exactly.",
        language: Ppl,
        wrong: Text("map latency: hist;\nmap slow_args: count[u64] max 1024;\n\nprobe uretprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    latency.record(retval);\n}\n\nprobe uprobe:/usr/bin/app:handle_request activated when anomaly(latency) > 0.85 for 10s {\n    slow_args[arg0].inc();\n}\n"),
        right: Text("map latency: hist;\nmap slow_args: count[u64] max 1024;\n\nprobe uretprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    latency.record(retval);\n}\n\nprobe uprobe:/usr/bin/app:handle_request activate when anomaly(latency) > 0.85 for 10s {\n    slow_args[arg0].inc();\n}\n"),
    },
    // -------------------------------------------------------------- map flags
    Page {
        code: "E0260",
        summary: "A word after `max N` that is not a map flag.",
        details: "The only map flag is `lru`: `map seen: count[u32] max 1024 lru;` backs a keyed map by an \
LRU kernel map, which evicts its least recently used entry when full instead of refusing the insert. \
A plain key/value map can also be declared `lru_hash[K] -> V max N`.",
        language: Ppl,
        wrong: Text("map seen: count[u32] max 1024 lur;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    seen[pid].inc();\n}\n"),
        right: Text("map seen: count[u32] max 1024 lru;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    seen[pid].inc();\n}\n"),
    },
    Page {
        code: "E0261",
        summary: "`lru` on a map that has no keys to evict.",
        details: "An unkeyed map holds one value and an array a fixed set of slots: neither ever fills \
up, so neither can evict. `lru` applies to keyed maps (`count[u32] max 1024 lru`).",
        language: Ppl,
        wrong: Text("map total: count lru;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    total.inc();\n}\n"),
        right: Text("map total: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    total.inc();\n}\n"),
    },
    // -------------------------------------------------------------- raw byte buffers
    Page {
        code: "E0262",
        summary: "A `buf[N]` type whose length is not 1 to 256.",
        details: "`buf(ptr, N)` copies exactly N raw bytes into a stack buffer, and `buf[N]` is the type of \
such a value (in map keys and values): N must be 1 to 256 bytes, like a string's.",
        language: Ppl,
        wrong: Text("map seen: count[buf[0]] max 64;\n\nprobe uprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    seen[buf(arg0, 0)].inc();\n}\n"),
        right: Text("map seen: count[buf[16]] max 64;\n\nprobe uprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    seen[buf(arg0, 16)].inc();\n}\n"),
    },
    Page {
        code: "E0263",
        summary: "A buffer compared with a value that is not a buffer of the same length.",
        details: "Buffers hold raw bytes (NULs included), so they compare whole, byte for byte, and only \
with `==` or `!=` against another `buf[N]` of the same N. Strings, integers and buffers of another \
length do not convert to buffers.",
        language: Ppl,
        wrong: Text("map same: count;\n\nprobe uprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    if buf(arg0, 8) == buf(arg1, 4) {\n        same.inc();\n    }\n}\n"),
        right: Text("map same: count;\n\nprobe uprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    if buf(arg0, 8) == buf(arg1, 8) {\n        same.inc();\n    }\n}\n"),
    },
    // -------------------------------------------------------------- USDT probes
    Page {
        code: "E0264",
        summary: "A `usdt:PATH:PROVIDER:NAME` probe the binary does not declare.",
        details: "USDT probes are declared by `.note.stapsdt` notes in the binary (`<sys/sdt.h>`'s \
`DTRACE_PROBE`); `readelf -n PATH` lists them with their providers, names and arguments. The file \
must exist and declare the probe on the host the file is checked on.",
        language: Ppl,
        wrong: Text("map requests: count;\n\nprobe usdt:/usr/bin/app:app:reqest rate <= 1k/s {\n    requests.inc();\n}\n"),
        right: Text("map requests: count;\n\nprobe usdt:/usr/bin/app:app:request rate <= 1k/s {\n    requests.inc();\n}\n"),
    },
    Page {
        code: "E0265",
        summary: "A USDT argument kept where ppis cannot read it.",
        details: "Each site's note says where its arguments are: a register (`8@%rdi`), a constant \
(`4@$5`) or memory at a register plus a displacement (`8@-8(%rbp)`); ppis reads those. Indexed \
(`8@8(%rax,%rbx,2)`) and RIP-relative operands are refused, but only when the probe reads that \
argument.",
        language: Ppl,
        wrong: Text("map sizes: sum;\n\nprobe usdt:/usr/bin/app:app:request rate <= 1k/s {\n    sizes.add(arg3);\n}\n"),
        right: Text("map sizes: sum;\n\nprobe usdt:/usr/bin/app:app:request rate <= 1k/s {\n    sizes.add(arg1);\n}\n"),
    },
    Page {
        code: "E0266",
        summary: "A USDT probe whose semaphore the kernel cannot set.",
        details: "Probes declared with a semaphore (`STAP_PROBE` with `_SDT_HAS_SEMAPHORES`) skip their \
site until a tracer increments the semaphore in the process. ppis attaches them as bpftrace does: the \
kernel increments the 16-bit semaphore in every process that maps the file while the probe is attached, \
and decrements it on detach. For that the semaphore must lie in a writable section with bytes in the \
file (`<sys/sdt.h>` puts it in `.probes`; not `.bss`), 2-byte aligned, and on a file page no \
earlier writable segment maps (lld's separate RELRO segment may end in the page where the data \
starts, and the kernel would count the semaphore there); a semaphore elsewhere is refused rather \
than attached to a site that never fires.",
        language: Ppl,
        wrong: Text("map hits: count;\n\nprobe usdt:/usr/bin/app:app:misplaced rate <= 1k/s {\n    hits.inc();\n}\n"),
        right: Text("map hits: count;\n\nprobe usdt:/usr/bin/app:app:guarded rate <= 1k/s {\n    hits.inc();\n}\n"),
    },
    Page {
        code: "E0267",
        summary: "`argN` beyond the arguments a USDT probe's note declares.",
        details: "A USDT probe has as many arguments as its note lists (`readelf -n PATH`); `arg0` is the \
first.",
        language: Ppl,
        wrong: Text("map sizes: sum;\n\nprobe usdt:/usr/bin/app:app:request rate <= 1k/s {\n    sizes.add(arg4);\n}\n"),
        right: Text("map sizes: sum;\n\nprobe usdt:/usr/bin/app:app:request rate <= 1k/s {\n    sizes.add(arg1);\n}\n"),
    },
    // ------------------------------------------------------------------ probe targets
    Page {
        code: "E0301",
        summary: "A probe kind the language does not support.",
        details: "The kinds are `tracepoint`, `uprobe` and `uretprobe`. kprobes are not supported (they \
are not a stable interface, and many production kernels disable them); most kernel events have a \
tracepoint.",
        language: Ppl,
        wrong: Text("map opens: count[u32] max 1024;\n\nprobe kprobe:do_sys_open rate <= 1k/s {\n    opens[pid].inc();\n}\n"),
        right: Text("map opens: count[u32] max 1024;\n\nprobe tracepoint:syscalls:sys_enter_openat rate <= 1k/s {\n    opens[pid].inc();\n}\n"),
    },
    Page {
        code: "E0302",
        summary: "A tracepoint that does not exist on this host.",
        details: "Tracepoints are listed under /sys/kernel/tracing/events/CATEGORY/NAME. The message \
suggests the closest existing ones.",
        language: Ppl,
        wrong: Text("map calls: count;\n\nprobe tracepoint:raw_syscalls:sys_entr rate <= 1k/s {\n    calls.inc();\n}\n"),
        right: Text("map calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls.inc();\n}\n"),
    },
    Page {
        code: "E0303",
        summary: "A probe reads tracepoint fields, but the tracepoint's format cannot be read here.",
        details: "Field offsets come from the tracepoint's tracefs `format` file. Mount tracefs \
(`mount -t tracefs nodev /sys/kernel/tracing`) and run as root. A probe that only counts events reads \
no fields and checks without it.",
        language: Ppl,
        wrong: Text("map sectors: count[u64] max 1024;\n\nprobe tracepoint:block:block_rq_issue rate <= 1k/s {\n    sectors[args.sector].inc();\n}\n"),
        right: Text("map issues: count;\n\nprobe tracepoint:block:block_rq_issue rate <= 1k/s {\n    issues.inc();\n}\n"),
    },
    Page {
        code: "E0304",
        summary: "A uprobe target whose file or symbol does not exist.",
        details: "The path must name an ELF file on this host and the symbol must be in its symbol \
table. The message suggests the closest names.",
        language: Ppl,
        wrong: Text("map requests: count;\n\nprobe uprobe:/usr/bin/app:handle_requst rate <= 1k/s {\n    requests.inc();\n}\n"),
        right: Text("map requests: count;\n\nprobe uprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    requests.inc();\n}\n"),
    },
    Page {
        code: "E0305",
        summary: "A tracepoint field the tracepoint does not have.",
        details: "Fields are those of the tracepoint's tracefs `format` file (without the `common_` \
ones); the message lists the closest.",
        language: Ppl,
        wrong: Text("map ids: count[i64] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    ids[args.ide].inc();\n}\n"),
        right: Text("map ids: count[i64] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    ids[args.id].inc();\n}\n"),
    },
    Page {
        code: "E0306",
        summary: "A context value the probe kind does not provide.",
        details: "Tracepoints read `args.FIELD`; uprobes read `arg0`..`arg5`; only uretprobes read \
`retval`.",
        language: Ppl,
        wrong: Text("map results: count[u64] max 1024;\n\nprobe uprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    results[retval].inc();\n}\n"),
        right: Text("map results: count[u64] max 1024;\n\nprobe uretprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    results[retval].inc();\n}\n"),
    },
    Page {
        code: "E0307",
        summary: "Two `budget` lines in one file.",
        details: "The budget applies to every probe of the file; declare it once.",
        language: Ppl,
        wrong: Text("budget 0.1%;\nbudget 0.2%;\n"),
        right: Text("budget 0.1%;\n"),
    },
    Page {
        code: "E0308",
        summary: "A budget of zero, or above the 0.5 % invariant.",
        details: "Every probe must stay within 0.5 % of the machine's CPU; a file may only lower that \
budget, to a positive percentage.",
        language: Ppl,
        wrong: Text("budget 1%;\n"),
        right: Text("budget 0.25%;\n"),
    },
    Page {
        code: "E0309",
        summary: "`rate <= 0/s`.",
        details: "The rate is the most events per second the trigger fires, system wide; the verifier \
multiplies it by the probe's worst-case cost to bound its overhead. A probe that never fires needs no \
rate of zero: remove the probe.",
        language: Ppl,
        wrong: Text("map calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 0/s {\n    calls.inc();\n}\n"),
        right: Text("map calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 100/s {\n    calls.inc();\n}\n"),
    },
    Page {
        code: "E0310",
        summary: "A tracepoint field of a size or shape the language cannot read.",
        details: "Fields are read as 1, 2, 4 or 8-byte integers, or as strings when they are `char` \
arrays of 1 to 256 bytes. Other fields (odd sizes, empty arrays) cannot be read; the example's \
`test:odd` tracepoint stands for one that has such fields.",
        language: Ppl,
        wrong: Text("map weird: hash[u32] -> u64 max 64;\n\nprobe tracepoint:test:odd rate <= 1k/s {\n    weird[cpu] = args.weird;\n}\n"),
        right: Text("map odd: count;\n\nprobe tracepoint:test:odd rate <= 1k/s {\n    odd.inc();\n}\n"),
    },
    // ---------------------------------------------------------------------- verifier
    Page {
        code: "E0400",
        summary: "A loop the verifier cannot bound, or other control flow that can repeat.",
        details: "Probes run in the kernel on every event and must finish quickly. `for i in A..B` \
loops are accepted when the bound `B` is provably at most 65,536 iterations away (a constant, or a \
value clamped with `if`), and neither the counter nor the bound changes inside the loop. Any other cycle \
(which only hand-written IR can contain) is rejected too.",
        language: Ppl,
        wrong: Text("map slots: array[16] -> u64;\nmap totals: sum;\n\nprobe uprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    let total = 0;\n    for k in 0..arg1 {\n        total = total + (slots[k % 16] ?? 0);\n    }\n    totals.add(total);\n}\n"),
        right: Text("map slots: array[16] -> u64;\nmap totals: sum;\n\nprobe uprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    let n = arg1;\n    if n > 16 {\n        n = 16;\n    }\n    let total = 0;\n    for k in 0..n {\n        total = total + (slots[k % 16] ?? 0);\n    }\n    totals.add(total);\n}\n"),
    },
    Page {
        code: "E0401",
        summary: "A map value pointer dereferenced on a path where the lookup may have found nothing.",
        details: "A map lookup returns null for a missing key. In source, `m[k] ?? default` and \
`if let v = m[k]` always check; in IR every path to a `load`/`store` through the pointer must pass \
`br.null`.",
        language: Ir,
        wrong: Text("map m0 start: hash key 8 value 8 max 10240\n\nfn probe0(ctx: tracepoint) trigger tracepoint rate 1000 {\n  slot s0: 8\n  v0: *start?\nbb0:\n  zero s0\n  v0 = map.lookup start, s0\n  v1 = load v0+0 u64\n  ret\n}\n"),
        right: Text("map m0 start: hash key 8 value 8 max 10240\n\nfn probe0(ctx: tracepoint) trigger tracepoint rate 1000 {\n  slot s0: 8\n  v0: *start?\nbb0:\n  zero s0\n  v0 = map.lookup start, s0\n  br.null v0, bb2, bb1\nbb1:\n  v1 = load v0+0 u64\n  jump bb2\nbb2:\n  ret\n}\n"),
    },
    Page {
        code: "E0402",
        summary: "The probe compiles to more instructions than the limit of 4096.",
        details: "Small probes load faster and cost less per event. Split the work across several \
probes, or remove statements.",
        language: Ppl,
        wrong: Text("map a: count[u32] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    a[pid].inc();\n    // ... thousands more statements ...\n}\n"),
        right: Text("map a: count[u32] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    a[pid].inc();\n}\n"),
    },
    Page {
        code: "E0403",
        summary: "The probe needs more than the 512 bytes of stack eBPF allows.",
        details: "Map keys, map values and strings live in stack slots. Use shorter strings (`str[N]`) \
and fewer string keys or locals.",
        language: Ppl,
        wrong: Text("map paths: count[str[256], str[256], u64] max 64;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    paths[comm, comm, nsecs].inc();\n}\n"),
        right: Text("map paths: count[str[16], str[16], u64] max 64;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    paths[comm, comm, nsecs].inc();\n}\n"),
    },
    Page {
        code: "E0404",
        summary: "An access outside the bytes of a stack slot.",
        details: "Every slot access must stay inside the slot's declared size. Code compiled from \
source always does; this indicates a compiler bug or hand-written IR.",
        language: Ir,
        wrong: Text("fn probe0(ctx: tracepoint) trigger tracepoint rate 1000 {\n  slot s0: 8\nbb0:\n  zero s0\n  v0 = load s0+8 u32\n  ret\n}\n"),
        right: Text("fn probe0(ctx: tracepoint) trigger tracepoint rate 1000 {\n  slot s0: 8\nbb0:\n  zero s0\n  v0 = load s0+4 u32\n  ret\n}\n"),
    },
    Page {
        code: "E0405",
        summary: "An access outside the bytes of a map value.",
        details: "Loads and stores through a map value pointer must stay inside the map's value size. \
Code compiled from source always does; this indicates a compiler bug or hand-written IR.",
        language: Ir,
        wrong: Text("map m0 start: percpu_hash key 8 value 8 max 1024\n\nfn probe0(ctx: tracepoint) trigger tracepoint rate 1000 {\n  slot s0: 8\n  v0: *start?\nbb0:\n  zero s0\n  v0 = map.lookup start, s0\n  br.null v0, bb2, bb1\nbb1:\n  v1 = load v0+8 u64\n  jump bb2\nbb2:\n  ret\n}\n"),
        right: Text("map m0 start: percpu_hash key 8 value 8 max 1024\n\nfn probe0(ctx: tracepoint) trigger tracepoint rate 1000 {\n  slot s0: 8\n  v0: *start?\nbb0:\n  zero s0\n  v0 = map.lookup start, s0\n  br.null v0, bb2, bb1\nbb1:\n  v1 = load v0+0 u64\n  jump bb2\nbb2:\n  ret\n}\n"),
    },
    Page {
        code: "E0406",
        summary: "A register read on a path where it was never assigned.",
        details: "Every path to a use must assign the register first. Code compiled from source always \
does; this indicates a compiler bug or hand-written IR.",
        language: Ir,
        wrong: Text("fn probe0(ctx: tracepoint) trigger tracepoint rate 1000 {\nbb0:\n  v0 = load.ctx 8 u32\n  br.ne v0, 0, bb1, bb2\nbb1:\n  v1 = add v0, 1\n  jump bb2\nbb2:\n  v2 = mul v1, 2\n  ret\n}\n"),
        right: Text("fn probe0(ctx: tracepoint) trigger tracepoint rate 1000 {\nbb0:\n  v0 = load.ctx 8 u32\n  v1 = 0\n  br.ne v0, 0, bb1, bb2\nbb1:\n  v1 = add v0, 1\n  jump bb2\nbb2:\n  v2 = mul v1, 2\n  ret\n}\n"),
    },
    Page {
        code: "E0407",
        summary: "Stack bytes read, or passed to a map helper as a key or value, before being written.",
        details: "The kernel rejects programs that may read uninitialised stack. Zero the slot first \
(`zero sN`) or store every byte. Code compiled from source always does.",
        language: Ir,
        wrong: Text("map m0 calls: percpu_hash key 16 value 8 max 1024\n\nfn probe0(ctx: tracepoint) trigger tracepoint rate 1000 {\n  slot s0: 16\n  v1: *calls?\nbb0:\n  v0 = call get_current_pid_tgid()\n  store s0+0 u32, v0\n  v1 = map.lookup calls, s0\n  ret\n}\n"),
        right: Text("map m0 calls: percpu_hash key 16 value 8 max 1024\n\nfn probe0(ctx: tracepoint) trigger tracepoint rate 1000 {\n  slot s0: 16\n  v1: *calls?\nbb0:\n  zero s0\n  v0 = call get_current_pid_tgid()\n  store s0+0 u32, v0\n  v1 = map.lookup calls, s0\n  ret\n}\n"),
    },
    Page {
        code: "E0408",
        summary: "A division or remainder whose divisor may be zero.",
        details: "eBPF silently gives 0 (or the dividend) for a zero divisor, which would make results \
wrong without a trace. Guard the division so the verifier sees the divisor is non-zero (test a \
local, then divide by that same local).",
        language: Ppl,
        wrong: Text("map per_byte: hist;\n\nprobe uretprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    per_byte.record(nsecs / retval);\n}\n"),
        right: Text("map per_byte: hist;\n\nprobe uretprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    let bytes = retval;\n    if bytes != 0 {\n        per_byte.record(nsecs / bytes);\n    }\n}\n"),
    },
    Page {
        code: "E0409",
        summary: "A probe without `rate <= N/s`.",
        details: "The overhead bound is the worst-case cost per event times the event rate, so every \
probe declares the most events per second its trigger fires. The message suggests the highest rate \
that fits the budget.",
        language: Ppl,
        wrong: Text("map calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter {\n    calls.inc();\n}\n"),
        right: Text("map calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 10k/s {\n    calls.inc();\n}\n"),
    },
    Page {
        code: "E0410",
        summary: "The probe's worst-case cost times its rate exceeds the CPU budget.",
        details: "The verifier bounds the most expensive path through the probe (with this host's cost \
profile) and multiplies it by the declared rate; that share of all CPUs must stay within the budget \
(0.5 % unless the file lowers it). Lower the rate to the suggested one, or make the probe cheaper: \
aggregations cost less than hash maps, and `--explain-cost` shows where the time goes.",
        language: Ppl,
        wrong: Text("map seen: hash[u32] -> u64 max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 10M/s {\n    seen[tid] = nsecs;\n    delete seen[pid];\n}\n"),
        right: Text("map seen: hash[u32] -> u64 max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 10k/s {\n    seen[tid] = nsecs;\n    delete seen[pid];\n}\n"),
    },
    Page {
        code: "E0411",
        summary: "A hash map entry written back with a value computed from the same map.",
        details: "Hash maps are shared by all CPUs: between the read and the write another CPU may update \
the entry, and one update is lost. Counters and sums belong in aggregations, which are per-CPU and \
race-free.",
        language: Ppl,
        wrong: Text("map calls: hash[u32] -> u64 max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls[pid] = (calls[pid] ?? 0) + 1;\n}\n"),
        right: Text("map calls: count[u32] max 1024;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls[pid].inc();\n}\n"),
    },
    Page {
        code: "E0412",
        summary: "IR the verifier cannot analyse: a scalar dereferenced, a pointer used as a number, ...",
        details: "The IR breaks its own typing rules. Code compiled from source never does; this \
indicates a compiler bug (please report it) or hand-written IR.",
        language: Ir,
        wrong: Text("map m0 m: hash key 8 value 8 max 16\n\nfn probe0(ctx: tracepoint) trigger tracepoint rate 10 {\n  v1: *m?\nbb0:\n  v0 = 1\n  v2 = load v0+0 u64\n  ret\n}\n"),
        right: Text("map m0 m: hash key 8 value 8 max 16\n\nfn probe0(ctx: tracepoint) trigger tracepoint rate 10 {\n  v1: *m?\nbb0:\n  v0 = 1\n  v2 = add v0, 1\n  ret\n}\n"),
    },
    Page {
        code: "E0413",
        summary: "The SMT solver did not confirm the probe's cost bound.",
        details: "The cost bound is computed on the control-flow graph and then checked independently \
with Z3. A disagreement is a verifier bug: please report it with the `ppisc ir` output of the probe. \
Any probe can show it; the examples are an ordinary probe and the same probe once the bug is fixed.",
        language: Ppl,
        wrong: Text("map calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls.inc();\n}\n"),
        right: Text("map calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls.inc();\n}\n"),
    },
    Page {
        code: "E0414",
        summary: "An array map index that may be outside `0..N`.",
        details: "The verifier tracks the range of every index; each array access must be provably \
inside the array. Bound the index first, e.g. with `%`.",
        language: Ppl,
        wrong: Text("map per_cpu_last: array[16] -> u64;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    per_cpu_last[cpu] = nsecs;\n}\n"),
        right: Text("map per_cpu_last: array[16] -> u64;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    per_cpu_last[cpu % 16] = nsecs;\n}\n"),
    },
    Page {
        code: "E0415",
        summary: "A string read whose length is not a constant from 1 to 256.",
        details: "`str(ptr, N)` copies at most `N` bytes into a stack buffer, so `N` must be a constant \
that fits the 512-byte eBPF stack: 1 to 256.",
        language: Ppl,
        wrong: Text("map names: count[str[64]] max 1024;\n\nprobe uprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    names[str(arg0, 1000)].inc();\n}\n"),
        right: Text("map names: count[str[64]] max 1024;\n\nprobe uprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    names[str(arg0, 64)].inc();\n}\n"),
    },
    Page {
        code: "E0500",
        summary: "The code generator could not turn a verified probe into eBPF.",
        details: "It reports a limit the verifier does not model, such as the stack once values that do \
not fit the 10 eBPF registers spill to it. Most such probes are caught earlier: the example's stack \
overflow is reported as E0403 by the verifier today. The remedy is the same: fewer values live at once, \
shorter strings. Please report it if it looks like a compiler limitation.",
        language: Ppl,
        wrong: Text("map paths: count[str[248], str[248]] max 64;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    paths[comm, comm].inc();\n}\n"),
        right: Text("map paths: count[str[64], str[64]] max 64;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    paths[comm, comm].inc();\n}\n"),
    },
    Page {
        code: "E0501",
        summary: "The file declares no probes, so there is nothing to compile.",
        details: "A file may declare maps and consts, but `ppisc build` and `ppisc check` need at least \
one `probe` to produce a program.",
        language: Ppl,
        wrong: Text("map calls: count;\n"),
        right: Text("map calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls.inc();\n}\n"),
    },
    Page {
        code: "E0502",
        summary: "A `-D NAME=VALUE` option names no const of the file, or gives a value of the wrong kind.",
        details: "`ppisc check/build/run/ir -D NAME=VALUE` replaces the value of `const NAME` for one \
compilation. VALUE is a literal of the same kind as the declared value: an integer (`-D LIMIT=100`, \
`-D OFFSET=-4`), a quoted string (`-D TARGET='\"nginx\"'`, quoted for the shell too) or `true`/`false`. \
Consts declared after NAME see the new value. With the file below, `-D TARGET=42` is wrong (TARGET \
is a string) and so is `-D TARGETS=x` (no such const); `-D TARGET='\"nginx\"'` is right.",
        language: Ppl,
        wrong: Text("const TARGET = \"bash\";\n\nmap calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s when comm == TARGET {\n    calls.inc();\n}\n"),
        right: Text("const TARGET = \"bash\";\n\nmap calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s when comm == TARGET {\n    calls.inc();\n}\n"),
    },
    // ---------------------------------------------------------------------- warnings
    Page {
        code: "W0001",
        summary: "A local declared with `let` and never read.",
        details: "Probably a leftover, or a typo in a later use. Remove it; a name starting with `_` \
silences the warning.",
        language: Ppl,
        wrong: Text("map calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    let me = pid;\n    calls.inc();\n}\n"),
        right: Text("map calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    let _me = pid;\n    calls.inc();\n}\n"),
    },
    Page {
        code: "W0002",
        summary: "A map no probe uses.",
        details: "A map declared but never updated, read or deleted from by any probe (nor named as an \
activation sentinel) stays empty: probably a leftover or a misspelt map. Remove it; a name starting \
with `_` silences the warning.",
        language: Ppl,
        wrong: Text("map calls: count;\nmap exits: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls.inc();\n}\n"),
        right: Text("map calls: count;\nmap _exits: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls.inc();\n}\n"),
    },
    Page {
        code: "W0003",
        summary: "A const nothing reads.",
        details: "Neither a probe nor another const reads it, so setting it (also with `-D NAME=VALUE`) \
changes nothing. Remove it; a name starting with `_` silences the warning.",
        language: Ppl,
        wrong: Text("const TARGET = 42;\n\nmap calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    calls.inc();\n}\n"),
        right: Text("const TARGET = 42;\n\nmap calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s when pid == TARGET {\n    calls.inc();\n}\n"),
    },
    Page {
        code: "W0004",
        summary: "A `when` predicate that can never be true, so the probe never runs.",
        details: "The checker folds literals and consts (`when 1 > 2`, `when DEBUG && ..` with `DEBUG` \
false) and looks at `&&` chains that require one value (`pid`, `tid`, `comm`, `args.FIELD`, `argN`, ...) to \
equal two different constants, or to equal and differ from the same one: `when pid == 1 && pid == 2`. \
Usually `||` was meant.",
        language: Ppl,
        wrong: Text("map calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s when pid == 1 && pid == 2 {\n    calls.inc();\n}\n"),
        right: Text("map calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s when pid == 1 || pid == 2 {\n    calls.inc();\n}\n"),
    },
    Page {
        code: "W0005",
        summary: "A bounded string compared with a literal longer than it can ever hold.",
        details: "`str(ptr, N)` reads at most N-1 bytes (the last is the NUL), `comm` at most 15, a \
`char[N]` tracepoint field at most N. Compared with a longer literal, `==` is always false and `!=` always \
true. Read a longer string (`str(ptr, 64)`) or compare a shorter literal.",
        language: Ppl,
        wrong: Text("map calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s when comm == \"systemd-journald-worker\" {\n    calls.inc();\n}\n"),
        right: Text("map calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s when comm == \"systemd-journal\" {\n    calls.inc();\n}\n"),
    },
    Page {
        code: "W0100",
        summary: "A note: the attach points a wildcard expanded to.",
        details: "Not a problem: the note lists what `*` matched on this host, one probe per match. The body \
is checked against each match, and a declared `rate` applies to each match separately. Use \
the `probe` builtin to tell the matches apart in a map key.",
        language: Ppl,
        wrong: Text("map opens: count[str[64]] max 16;\n\nprobe tracepoint:syscalls:sys_enter_open* rate <= 1k/s {\n    opens[probe].inc();\n}\n"),
        right: Text("map opens: count[str[64]] max 16;\n\nprobe tracepoint:syscalls:sys_enter_openat rate <= 1k/s {\n    opens[probe].inc();\n}\n"),
    },
    Page {
        code: "W0101",
        summary: "A `rate` declared on `begin` or `end`, which run exactly once.",
        details: "`begin` runs once before the other probes attach and `end` once after they detach, so their \
cost is paid once and no rate applies. Remove the declaration.",
        language: Ppl,
        wrong: Text("map started: max;\n\nprobe begin rate <= 1/s {\n    started.record(nsecs);\n}\n"),
        right: Text("map started: max;\n\nprobe begin {\n    started.record(nsecs);\n}\n"),
    },
    Page {
        code: "W0400",
        summary: "A hash map is inserted into but never deleted from, so it fills up.",
        details: "Once `max N` entries exist, further inserts fail and events go unrecorded. The \
message estimates how soon at the declared rates. Delete entries once done with them. (The \
checker has no lint of its own for this: only the verifier knows the rates, so W0400 is the one warning.)",
        language: Ppl,
        wrong: Text("map started: hash[u32] -> u64 max 4096;\nmap lat: hist;\n\nprobe uprobe:/usr/bin/app:handle_request rate <= 50/s {\n    started[tid] = nsecs;\n}\n\nprobe uretprobe:/usr/bin/app:handle_request rate <= 50/s {\n    if let t0 = started[tid] {\n        lat.record(nsecs - t0);\n    }\n}\n"),
        right: Text("map started: hash[u32] -> u64 max 4096;\nmap lat: hist;\n\nprobe uprobe:/usr/bin/app:handle_request rate <= 50/s {\n    started[tid] = nsecs;\n}\n\nprobe uretprobe:/usr/bin/app:handle_request rate <= 50/s {\n    if let t0 = started[tid] {\n        lat.record(nsecs - t0);\n        delete started[tid];\n    }\n}\n"),
    },
];
