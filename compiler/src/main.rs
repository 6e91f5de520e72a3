//! `ppisc`: check, inspect, build and run `.ppl` probes.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use ppis_compiler::driver::{self, CompileOptions, Compiled};
use ppis_compiler::lower::LowerOptions;
use ppis_compiler::targets::HostTargets;
use ppis_lang::Diagnostic;
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
}

#[derive(Subcommand)]
enum Command {
    /// Parse, type-check and verify probes; exit 0 if clean, 1 on findings, 2 on usage or I/O errors.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print the IR of every probe in FILE.
    Ir { file: PathBuf },
    /// Compile FILE to an eBPF ELF object.
    Build {
        file: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Disassemble an object written by `ppisc build`.
    Disasm { object: PathBuf },
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
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
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
    let cli = Cli::parse();
    let color = match cli.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stderr().is_terminal(),
    };
    let result = match cli.command {
        Command::Check { files, format } => check(&files, format, color),
        Command::Ir { file } => ir(&file, color),
        Command::Build { file, output } => build(&file, &output, color),
        Command::Disasm { object } => disasm(&object),
        Command::Run { file, duration, format, command } => run(&file, duration, format, command, color),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Reads a source file; bytes that are not UTF-8 become U+FFFD, which the lexer reports.
fn read_source(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

fn print_diagnostics(diags: &[Diagnostic], path: &Path, source: &str, color: bool) {
    if !diags.is_empty() {
        eprint!("{}", ppis_lang::render::text(diags, &path.display().to_string(), source, color));
    }
}

/// Compiles a file, printing diagnostics; `None` when it has errors.
fn compile_file(path: &Path, opts: &LowerOptions, color: bool) -> Result<Option<(String, Compiled)>> {
    let source = read_source(path)?;
    let (compiled, diags) = driver::compile(&source, &HostTargets, &CompileOptions::for_this_host(opts.clone()));
    print_diagnostics(&diags, path, &source, color);
    Ok(compiled.map(|c| (source, c)))
}

fn check(files: &[PathBuf], format: Format, color: bool) -> Result<ExitCode> {
    let mut findings = false;
    let mut json = Vec::new();
    for path in files {
        let source = read_source(path)?;
        let (_, diags) = driver::compile(&source, &HostTargets, &CompileOptions::for_this_host(LowerOptions::default()));
        findings |= diags.iter().any(|d| d.is_error());
        match format {
            Format::Text => print_diagnostics(&diags, path, &source, color),
            Format::Json => {
                let rendered = ppis_lang::render::json(&diags, &path.display().to_string(), &source);
                let value: serde_json::Value = serde_json::from_str(&rendered).context("diagnostics as JSON")?;
                json.extend(value.as_array().cloned().unwrap_or_default());
            }
        }
    }
    if let Format::Json = format {
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    Ok(if findings { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn ir(path: &Path, color: bool) -> Result<ExitCode> {
    let source = read_source(path)?;
    let (program, diags) = ppis_lang::check_source(&source, &HostTargets, &ppis_lang::CheckOptions::default());
    print_diagnostics(&diags, path, &source, color);
    let Some(program) = program else { return Ok(ExitCode::from(1)) };
    let lowered = ppis_compiler::lower::lower(&program, &source, &LowerOptions::default());
    print!("{}", ppis_ir::print_module(&lowered.module));
    Ok(ExitCode::SUCCESS)
}

fn build(path: &Path, output: &Path, color: bool) -> Result<ExitCode> {
    let Some((_, compiled)) = compile_file(path, &LowerOptions::default(), color)? else {
        return Ok(ExitCode::from(1));
    };
    std::fs::write(output, driver::object(&compiled)).with_context(|| format!("cannot write {}", output.display()))?;
    Ok(ExitCode::SUCCESS)
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

fn run(path: &Path, duration: Option<Duration>, format: Format, command: Option<String>, color: bool) -> Result<ExitCode> {
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
    let Some((_, compiled)) = compile_file(path, &opts, color)? else {
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
    Ok(ExitCode::SUCCESS)
}
