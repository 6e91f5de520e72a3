//! `ppisc`: check, inspect, build and run `.ppl` probes.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use ppis_compiler::driver::{self, CompileOptions, Compiled};
use ppis_compiler::lower::LowerOptions;
use ppis_compiler::targets::HostTargets;
use ppis_lang::Diagnostic;
use ppis_manifest::profile::CostProfile;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "ppisc", version, about = "Provably cheap production probes: check, build and run .ppl files")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Colour diagnostics: auto (on a terminal), always, never.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    color: Color,
    /// Host cost profile (JSON, from `ppisc calibrate`); default: the profile shipped with ppisc.
    #[arg(long, global = true)]
    profile: Option<PathBuf>,
    /// Override `const NAME` with VALUE (an integer, a quoted string or true/false); repeatable.
    #[arg(short = 'D', global = true, value_name = "NAME=VALUE", value_parser = parse_define)]
    define: Vec<(String, String)>,
    /// Standard library directory for `use stdlib::...` (before `$PPIS_STDLIB`, the source
    /// tree's `stdlib/` and the copy compiled into ppisc).
    #[arg(long, global = true, value_name = "DIR")]
    stdlib: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Parse, type-check and verify probes; exit 0 if clean, 1 on findings, 2 on usage or I/O errors.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
        format: CheckFormat,
        /// Show each probe's worst path with per-instruction costs and the cost breakdown.
        #[arg(long)]
        explain_cost: bool,
        /// Exit 1 on warnings too (they never fail a check otherwise).
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Rewrite FILEs in the canonical layout (comments kept); files with syntax errors are left alone.
    Fmt {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Change nothing; exit 1 if a file is not formatted (for CI and pre-commit).
        #[arg(long)]
        check: bool,
    },
    /// Explain a diagnostic code (e.g. E0208) with a wrong and a right example.
    Explain { code: String },
    /// Print the IR of every probe in FILE.
    Ir { file: PathBuf },
    /// Compile FILE to an eBPF ELF object, or with --key to a signed bundle (NAME.ppb).
    Build {
        file: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
        /// Sign a bundle with this secret key (from `ppisc keygen`); the output is then a bundle.
        #[arg(long)]
        key: Option<PathBuf>,
        /// Also write the proof certificate (JSON) here.
        #[arg(long)]
        certificate: Option<PathBuf>,
        /// Also write one Coq proof file per probe into this directory.
        #[arg(long)]
        emit_coq: Option<PathBuf>,
    },
    /// Generate an ed25519 signing key: KEY (secret) and KEY.pub.
    Keygen {
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Show a bundle's manifest, entries, certificate verdicts and signer.
    Inspect { bundle: PathBuf },
    /// Check a bundle's signature against trusted public keys and its entry hashes, offline.
    Verify {
        bundle: PathBuf,
        /// A trusted public key file (several may be given; a file may hold several keys).
        #[arg(long = "trust", required = true)]
        trust: Vec<PathBuf>,
    },
    /// Disassemble an object written by `ppisc build`.
    Disasm { object: PathBuf },
    /// Measure this host's probe costs (triggers, instructions, helpers) and write a cost profile.
    Calibrate {
        /// Write the profile here instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Events per measurement.
        #[arg(long, default_value_t = 20_000)]
        events: u64,
        /// Repetitions of each measurement (the profile keeps a high percentile).
        #[arg(long, default_value_t = 5)]
        trials: u32,
    },
    /// Load and attach the probes in FILE, then print every map when it ends (like bpftrace).
    Run {
        file: PathBuf,
        /// Stop after this long (e.g. 500ms, 5s, 2m); otherwise run until Ctrl-C or the -c command exits.
        #[arg(long = "for", value_parser = parse_duration)]
        duration: Option<Duration>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Run this command (split on spaces) with probes attached; `cpid` is its pid.
        #[arg(short = 'c', long = "cmd")]
        command: Option<String>,
        /// Also write the maps with `ustack`/`kstack` keys as folded stacks to FILE.
        #[arg(long, value_name = "FILE")]
        folded: Option<PathBuf>,
        /// Also write them as an SVG flame graph to FILE.
        #[arg(long, value_name = "FILE.svg")]
        flamegraph: Option<PathBuf>,
        /// Also write them as a pprof profile (profile.proto) to FILE.
        #[arg(long, value_name = "FILE.pb")]
        pprof: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Output of `ppisc check`: `run` has no SARIF.
#[derive(Clone, Copy, ValueEnum)]
enum CheckFormat {
    Text,
    Json,
    /// SARIF 2.1.0, for code-scanning services.
    Sarif,
}

#[derive(Clone, Copy, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a duration (try 500ms, 5s, 2m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("unknown unit `{unit}` in `{text}` (use ms, s, m or h)")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

fn main() -> ExitCode {
    // Like other Unix filters, end quietly when the reader goes away (`ppisc ... | head`)
    // instead of panicking on a failed write.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let color = match cli.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stderr().is_terminal(),
    };
    let profile = match &cli.profile {
        Some(path) => {
            match std::fs::read_to_string(path).map_err(|e| e.to_string()).and_then(|t| CostProfile::from_json(&t)) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: cost profile {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            }
        }
        None => driver::default_profile(),
    };
    let ctx = Ctx { color, profile, defines: cli.define, stdlib: cli.stdlib };
    let result = match cli.command {
        Command::Check { files, format, explain_cost, deny_warnings } => {
            check(&ctx, &files, format, explain_cost, deny_warnings)
        }
        Command::Fmt { files, check } => fmt(&files, check, color),
        Command::Explain { code } => explain_code(&code),
        Command::Ir { file } => ir(&ctx, &file),
        Command::Build { file, output, key, certificate, emit_coq } => {
            build(&ctx, &file, &output, key.as_deref(), certificate.as_deref(), emit_coq.as_deref())
        }
        Command::Keygen { output } => keygen(&output),
        Command::Inspect { bundle } => inspect(&bundle),
        Command::Verify { bundle, trust } => verify(&bundle, &trust),
        Command::Disasm { object } => disasm(&object),
        Command::Run { file, duration, format, command, folded, flamegraph, pprof } => {
            let stack_files = StackFiles { folded, flamegraph, pprof };
            run(&ctx, &file, duration, format, command, &stack_files)
        }
        Command::Calibrate { output, events, trials } => calibrate(output.as_deref(), events, trials),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// A source file's text. Bytes that are not UTF-8 become U+FFFD, and the first one is
/// reported (a comment would otherwise hide it from the lexer).
struct Source {
    text: String,
    encoding_error: Option<Diagnostic>,
}

fn read_source(path: &Path) -> Result<Source> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(match String::from_utf8(bytes) {
        Ok(text) => Source { text, encoding_error: None },
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let byte = e.as_bytes()[at];
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let diag = Diagnostic::error(
                "E0002",
                format!("invalid UTF-8: byte 0x{byte:02x}"),
                ppis_lang::Span::new(at, at + 3),
            )
            .label("not UTF-8")
            .with_help("save the file as UTF-8");
            Source { text, encoding_error: Some(diag) }
        }
    })
}

/// At most this many diagnostics are printed per file: garbage input would otherwise bury
/// the first, most useful ones.
const MAX_SHOWN: usize = 50;

/// A compiler run's diagnostics, with the encoding error first.
fn with_encoding(source: &Source, mut diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    if let Some(d) = &source.encoding_error {
        diags.insert(0, d.clone());
    }
    diags
}

fn print_diagnostics(diags: &[Diagnostic], path: &Path, source: &str, color: bool) {
    let shown = &diags[..diags.len().min(MAX_SHOWN)];
    if !shown.is_empty() {
        eprint!("{}", ppis_lang::render::text(shown, &path.display().to_string(), source, color));
    }
    if diags.len() > MAX_SHOWN {
        eprintln!("... and {} more diagnostics in {}", diags.len() - MAX_SHOWN, path.display());
    }
}

/// Like [`print_diagnostics`], each diagnostic against the file (main file or module) it is in.
fn print_program_diagnostics(diags: &[Diagnostic], sources: &ppis_lang::modules::Sources, color: bool) {
    let shown = &diags[..diags.len().min(MAX_SHOWN)];
    if !shown.is_empty() {
        eprint!("{}", sources.render_text(shown, color));
    }
    if diags.len() > MAX_SHOWN {
        let main = sources.files.first().map_or("", |file| file.name.as_str());
        eprintln!("... and {} more diagnostics in {main} and its modules", diags.len() - MAX_SHOWN);
    }
}

/// What every command shares: output colour and the host cost profile.
struct Ctx {
    color: bool,
    profile: CostProfile,
    /// `-D NAME=VALUE` const overrides.
    defines: Vec<(String, String)>,
    /// `--stdlib DIR`.
    stdlib: Option<PathBuf>,
}

impl Ctx {
    fn check_options(&self) -> ppis_lang::CheckOptions {
        ppis_lang::CheckOptions::with_const_overrides(self.defines.clone())
    }

    /// Where `use stdlib::...` modules come from.
    fn modules(&self) -> ppis_compiler::modules::StdlibLoader {
        ppis_compiler::modules::StdlibLoader::for_ppisc(self.stdlib.as_deref())
    }

    fn options(&self, lower: LowerOptions) -> CompileOptions {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        CompileOptions { lower, profile: self.profile.clone(), cpus }
    }
}

/// Compiles a file, printing diagnostics; `None` when it has errors.
/// Compiles `path` with its modules; returns what the build's source hash covers
/// ([`driver::source_identity`]) and the compiled program, or `None` after printing errors.
fn compile_file(ctx: &Ctx, path: &Path, opts: LowerOptions) -> Result<Option<(Vec<u8>, Compiled)>> {
    let source = read_source(path)?;
    let check = ctx.check_options();
    let (compiled, diags, sources) = driver::compile_program(
        &path.display().to_string(),
        &source.text,
        &HostTargets,
        &ctx.modules(),
        &check,
        &ctx.options(opts),
    );
    let diags = with_encoding(&source, diags);
    print_program_diagnostics(&diags, &sources, ctx.color);
    if source.encoding_error.is_some() {
        return Ok(None);
    }
    Ok(compiled.map(|c| (driver::source_identity(&sources, &check), c)))
}

fn check(
    ctx: &Ctx,
    files: &[PathBuf],
    format: CheckFormat,
    explain_cost: bool,
    deny_warnings: bool,
) -> Result<ExitCode> {
    let mut findings = false;
    let mut json = Vec::new();
    let mut sarif: Vec<(String, String, Vec<Diagnostic>)> = Vec::new();
    for path in files {
        let Source { text: source, encoding_error } = read_source(path)?;
        let (compiled, diags, sources) = driver::compile_program(
            &path.display().to_string(),
            &source,
            &HostTargets,
            &ctx.modules(),
            &ctx.check_options(),
            &ctx.options(LowerOptions::default()),
        );
        let diags = with_encoding(&Source { text: String::new(), encoding_error }, diags);
        findings |= diags.iter().any(|d| d.is_error() || (deny_warnings && d.severity == ppis_lang::Severity::Warning));
        if let (true, Some(compiled)) = (explain_cost, &compiled) {
            print!("{}", explain(compiled, &sources));
        }
        match format {
            CheckFormat::Text => print_program_diagnostics(&diags, &sources, ctx.color),
            CheckFormat::Json => {
                // Each diagnostic names the file it is in (the main file or a module).
                let rendered = sources.render_json(&diags);
                let value: serde_json::Value = serde_json::from_str(&rendered).context("diagnostics as JSON")?;
                json.extend(value.as_array().cloned().unwrap_or_default());
            }
            CheckFormat::Sarif => {
                for (file, diags) in sources.files.iter().zip(sources.by_file(&diags)) {
                    if file.base == 0 || !diags.is_empty() {
                        sarif.push((file.name.clone(), file.text.clone(), diags));
                    }
                }
            }
        }
    }
    match format {
        CheckFormat::Text => {}
        CheckFormat::Json => println!("{}", serde_json::to_string_pretty(&json)?),
        CheckFormat::Sarif => {
            let files: Vec<ppis_lang::sarif::SarifFile<'_>> = sarif
                .iter()
                .map(|(name, source, diagnostics)| ppis_lang::sarif::SarifFile { name, source, diagnostics })
                .collect();
            println!("{}", ppis_lang::sarif::render(&files));
        }
    }
    Ok(if findings { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// `ppisc fmt [--check]`: exit 1 if a file has syntax errors or, with `--check`, is not formatted.
fn fmt(files: &[PathBuf], check_only: bool, color: bool) -> Result<ExitCode> {
    let mut failed = false;
    for path in files {
        let source = read_source(path)?;
        if let Some(diag) = &source.encoding_error {
            print_diagnostics(std::slice::from_ref(diag), path, &source.text, color);
            failed = true;
            continue;
        }
        match ppis_lang::fmt::format_source(&source.text) {
            Err(diags) => {
                print_diagnostics(&diags, path, &source.text, color);
                eprintln!("{}: not formatted: fix the syntax errors first", path.display());
                failed = true;
            }
            Ok(formatted) if formatted == source.text => {}
            Ok(_) if check_only => {
                eprintln!("{}: not formatted (run `ppisc fmt {}`)", path.display(), path.display());
                failed = true;
            }
            Ok(formatted) => write(path, formatted)?,
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// `ppisc explain CODE`.
fn explain_code(code: &str) -> Result<ExitCode> {
    match ppis_lang::explain::page(code) {
        Some(page) => {
            print!("{page}");
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let known: Vec<&str> = ppis_lang::diag::CODES.iter().map(|info| info.code).collect();
            eprintln!("error: no diagnostic code `{code}`; the codes are {}", known.join(", "));
            Ok(ExitCode::from(2))
        }
    }
}

/// `-D NAME=VALUE`: splits at the first `=`; VALUE is parsed by the checker, which knows
/// the const's kind and reports a mismatch against the declaration.
fn parse_define(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("expected NAME=VALUE, got `{text}`")),
    }
}

fn ir(ctx: &Ctx, path: &Path) -> Result<ExitCode> {
    let Source { text: source, encoding_error } = read_source(path)?;
    if let Some(d) = encoding_error {
        print_diagnostics(&[d], path, &source, ctx.color);
        return Ok(ExitCode::from(1));
    }
    let (program, diags, sources) = ppis_lang::check_program(
        &path.display().to_string(),
        &source,
        &HostTargets,
        &ctx.modules(),
        &ctx.check_options(),
    );
    print_program_diagnostics(&diags, &sources, ctx.color);
    let Some(program) = program else { return Ok(ExitCode::from(1)) };
    let lowered = ppis_compiler::lower::lower(&program, &sources.combined(), &LowerOptions::default());
    print!("{}", ppis_ir::print_module(&lowered.module));
    Ok(ExitCode::SUCCESS)
}

/// `--explain-cost`: each probe's worst path, with source lines for the IR spans.
/// Spans may point into a module: each is located in the file it is in.
fn explain(compiled: &Compiled, sources: &ppis_lang::modules::Sources) -> String {
    let locate = |span: ppis_ir::Span| {
        let file = &sources.files[sources.file_at(span.start)];
        let offset = (span.start as usize).saturating_sub(file.base);
        let line = ppis_lang::render::line_of(&file.text, offset);
        let text = file.text.lines().nth(line as usize - 1).unwrap_or("").trim();
        format!("{}:{line}: {text}", file.name)
    };
    compiled.verdict.functions.iter().map(|f| ppis_verifier::explain_cost(f, compiled.verdict.cpus, &locate)).collect()
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

fn build(
    ctx: &Ctx,
    path: &Path,
    output: &Path,
    key: Option<&Path>,
    certificate: Option<&Path>,
    emit_coq: Option<&Path>,
) -> Result<ExitCode> {
    let Some((source, compiled)) = compile_file(ctx, path, LowerOptions::default())? else {
        return Ok(ExitCode::from(1));
    };
    let object = driver::object(&compiled);
    match key {
        Some(key_path) => {
            let text = std::fs::read(key_path).with_context(|| format!("cannot read {}", key_path.display()))?;
            let key = ppis_bundle::SigningKey::from_key_file(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", key_path.display()))?;
            let name = output.file_stem().and_then(|s| s.to_str()).unwrap_or("bundle");
            let bundle = driver::bundle(&compiled, name, &source, &ctx.profile, &key)?;
            write(output, bundle)?;
        }
        None => write(output, &object)?,
    }
    if let Some(cert_path) = certificate {
        write(cert_path, driver::certificate_json(&compiled, &source, &object, &ctx.profile))?;
    }
    if let Some(dir) = emit_coq {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for proof in driver::coq_proofs(&compiled, &ctx.profile) {
            write(&dir.join(&proof.file), proof.text)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn keygen(output: &Path) -> Result<ExitCode> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let (secret, public) = ppis_bundle::keygen().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(output)
        .with_context(|| format!("cannot create {} (it must not exist yet)", output.display()))?;
    file.write_all(&secret)?;
    let mut public_path = output.as_os_str().to_owned();
    public_path.push(".pub");
    write(Path::new(&public_path), public)?;
    Ok(ExitCode::SUCCESS)
}

fn inspect(path: &Path) -> Result<ExitCode> {
    let bytes = ppis_bundle::load_bundle_file(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    match ppis_bundle::inspect(&bytes) {
        Ok(inspection) => {
            print!("{inspection}");
            Ok(if inspection.is_intact() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            Ok(ExitCode::from(1))
        }
    }
}

fn verify(path: &Path, trust_files: &[PathBuf]) -> Result<ExitCode> {
    let mut trust = ppis_bundle::TrustList::new();
    for file in trust_files {
        let text = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let keys = ppis_bundle::TrustList::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        for key in keys.keys() {
            trust.add(*key);
        }
    }
    let bytes = ppis_bundle::load_bundle_file(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    match ppis_bundle::read_bundle(&bytes, &trust) {
        Ok(bundle) => {
            println!("{}: ok, signed by {}", path.display(), bundle.signer.id());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{}: refused: {e}", path.display());
            Ok(ExitCode::from(1))
        }
    }
}

fn disasm(path: &Path) -> Result<ExitCode> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    match ppis_compiler::disasm::disassemble_object(&bytes) {
        Ok(text) => {
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => bail!("{}: {e}", path.display()),
    }
}

fn run(
    ctx: &Ctx,
    path: &Path,
    duration: Option<Duration>,
    format: Format,
    command: Option<String>,
    stack_files: &StackFiles,
) -> Result<ExitCode> {
    let child = match &command {
        Some(cmd) => {
            let argv: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
            if argv.is_empty() {
                bail!("-c needs a command");
            }
            Some(ppis_runtime::PausedChild::spawn(&argv)?)
        }
        None => None,
    };
    let opts = LowerOptions { cpid: child.as_ref().map(|c| c.pid()) };
    let Some((_, compiled)) = compile_file(ctx, path, opts)? else {
        return Ok(ExitCode::from(1));
    };
    let manifest = &compiled.lowered.manifest;
    if let Err(e) = ppis_runtime::preflight(manifest) {
        eprintln!("error: {e}");
        return Ok(ExitCode::from(1));
    }
    let object = driver::object(&compiled);
    let snapshot = match ppis_runtime::run(&object, manifest, ppis_runtime::RunOptions { duration, child }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    match format {
        Format::Text => print!("{}", ppis_runtime::render_text(&snapshot, manifest)),
        Format::Json => println!("{}", ppis_runtime::render_json(&snapshot, manifest)),
    }
    write_stack_files(stack_files, &snapshot, manifest, path)?;
    Ok(ExitCode::SUCCESS)
}

/// Where `ppisc run` writes the aggregated stacks of maps with stack keys.
struct StackFiles {
    folded: Option<PathBuf>,
    flamegraph: Option<PathBuf>,
    pprof: Option<PathBuf>,
}

fn write_stack_files(
    files: &StackFiles,
    snapshot: &ppis_runtime::Snapshot,
    manifest: &ppis_manifest::Manifest,
    source: &Path,
) -> Result<()> {
    use ppis_runtime::flame;
    if files.folded.is_none() && files.flamegraph.is_none() && files.pprof.is_none() {
        return Ok(());
    }
    if !flame::has_stacks(manifest) {
        eprintln!("warning: no map has a `ustack`/`kstack` key; the stack files hold no stacks");
    }
    let stacks = flame::all_stacks(snapshot, manifest);
    if let Some(path) = &files.folded {
        write(path, flame::folded(&stacks))?;
    }
    if let Some(path) = &files.flamegraph {
        let svg = flame::flamegraph_svg(&stacks, &source.display().to_string())
            .map_err(|e| anyhow::anyhow!("cannot draw the flame graph: {e}"))?;
        write(path, svg)?;
    }
    if let Some(path) = &files.pprof {
        write(path, flame::pprof_bytes(&stacks))?;
    }
    Ok(())
}

fn calibrate(output: Option<&Path>, events: u64, trials: u32) -> Result<ExitCode> {
    let profile = ppis_compiler::calibrate::calibrate(&ppis_compiler::calibrate::CalibrateOptions { events, trials })?;
    let json = profile.to_json();
    match output {
        Some(path) => std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?,
        None => println!("{json}"),
    }
    Ok(ExitCode::SUCCESS)
}
