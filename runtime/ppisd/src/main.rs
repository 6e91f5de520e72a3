//! `ppisd`: `run` the daemon, `check` bundles offline against this host's trust list and cost
//! profile, or `audit verify` an audit log.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use ppis_bundle::pcc::HostPolicy;
use ppisd::config::Config;
use ppisd::daemon::{self, Daemon};

#[derive(Parser)]
#[command(
    name = "ppisd",
    version,
    about = "The ppis production daemon: verified bundles, enforced budgets, metrics, audit"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the config is looked for when `--config` is not given.
const DEFAULT_CONFIG: &str = "/etc/ppis/ppisd.toml";

#[derive(Subcommand)]
enum Command {
    /// Run the daemon until SIGTERM or SIGINT.
    Run {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Verify bundles as `run` would (signature, hashes, proof check), without loading them.
    Check {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(required = true)]
        bundles: Vec<PathBuf>,
    },
    /// Ask the running daemon why each dormant probe is attached or not (GET /explain).
    Explain {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The daemon's metrics address; default: `metrics_listen` of the config.
        #[arg(long)]
        address: Option<String>,
        /// Print the JSON document instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain of an audit log; exit 1 if a line was edited, dropped or reordered.
    Verify {
        file: PathBuf,
        /// The expected hash of the last line (recorded elsewhere), which protects that line too.
        #[arg(long)]
        head: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => run(&config),
        Command::Check { config, bundles } => check(&config, &bundles),
        Command::Audit { command: AuditCommand::Verify { file, head } } => audit_verify(&file, head.as_deref()),
        Command::Explain { config, address, json } => explain(&config, address.as_deref(), json),
    }
}

fn run(config_path: &Path) -> ExitCode {
    let config = match Config::load(config_path) {
        Ok(config) => config,
        Err(error) => return fail(&error),
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(error) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            return fail(&format!("cannot handle signals: {error}"));
        }
    }
    let daemon = match Daemon::start(config) {
        Ok(daemon) => daemon,
        Err(error) => return fail(&error),
    };
    match daemon.run(&stop) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

fn check(config_path: &Path, bundles: &[PathBuf]) -> ExitCode {
    let setup = Config::load(config_path).and_then(|config| {
        let trust = daemon::load_trust(&config.trusted_keys)?;
        let profile = daemon::load_profile(&config)?;
        Ok((config, trust, profile))
    });
    let (config, trust, profile) = match setup {
        Ok(setup) => setup,
        Err(error) => return fail(&error),
    };
    let policy = HostPolicy {
        profile: &profile,
        cpus: daemon::online_cpus(),
        require_profile_match: config.require_profile_match,
    };
    let mut all_ok = true;
    for path in bundles {
        match daemon::check_file(path, &trust, &policy) {
            Ok((bundle, report, _)) => {
                println!("{}: ok, bundle {} signed by {}", path.display(), bundle.header.name, bundle.signer.id());
                for probe in &report.probes {
                    let budget = match (probe.allowed_ns, probe.rate_per_sec) {
                        (Some(allowed), Some(rate)) => format!("budget allows {allowed:.1} ns at {rate}/s"),
                        _ => "runs once".to_string(),
                    };
                    println!(
                        "  {}: {} insns, bytecode bound {:.1} ns, certified {:.1} ns, {budget}",
                        probe.program, probe.instructions, probe.bytecode_bound_ns, probe.certified_bound_ns,
                    );
                }
            }
            Err(reason) => {
                all_ok = false;
                println!("{}: refused: {reason}", path.display());
            }
        }
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn audit_verify(file: &Path, head: Option<&str>) -> ExitCode {
    match ppisd::audit::verify(file) {
        Ok(summary) if head.is_some_and(|head| !head.eq_ignore_ascii_case(&summary.head)) => {
            println!(
                "{}: the last line's hash is {}, not the expected head: the end of the log was changed",
                file.display(),
                summary.head
            );
            ExitCode::FAILURE
        }
        Ok(summary) => {
            println!("{}: ok, {} lines, head {}", file.display(), summary.lines, summary.head);
            ExitCode::SUCCESS
        }
        Err(error) => {
            println!("{error}");
            ExitCode::FAILURE
        }
    }
}

fn explain(config_path: &Path, address: Option<&str>, json: bool) -> ExitCode {
    let address = match address {
        Some(address) => address.to_string(),
        None => match Config::load(config_path) {
            Ok(config) => config.metrics_listen.to_string(),
            Err(error) => return fail(&error),
        },
    };
    let url = match ppisd::feeds::HttpUrl::parse(&format!("http://{address}")) {
        Ok(url) => url,
        Err(error) => return fail(&error),
    };
    let body = match ppisd::feeds::http_get(&url, "/explain", std::time::Duration::from_secs(5)) {
        Ok(body) => body,
        Err(error) => return fail(&format!("cannot ask the daemon: {error}")),
    };
    if json {
        print!("{body}");
        return ExitCode::SUCCESS;
    }
    let document: serde_json::Value = match serde_json::from_str(&body) {
        Ok(document) => document,
        Err(error) => return fail(&format!("the daemon's /explain is not JSON: {error}")),
    };
    match serde_json::from_value::<Vec<ppisd::activation::ProbeExplanation>>(document["dormant_probes"].clone()) {
        Ok(probes) => {
            print!("{}", ppisd::activation::render_table(&probes));
            ExitCode::SUCCESS
        }
        Err(error) => fail(&format!("unexpected /explain document: {error}")),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("ppisd: error: {message}");
    ExitCode::from(2)
}
