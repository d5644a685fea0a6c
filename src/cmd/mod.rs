//! The command line: the clap types, one module per command, and [`Exit`], every exit code the
//! README lists, mapped to its number in one place.
//!
//! `main` parses, sets up logging and calls [`main_with_args`]; each command returns an [`Exit`].
//! Errors leave here as one line on stderr, never a panic, a backtrace or a secret. This is the
//! only layer that knows about the simulator besides the demo.

pub mod check;
pub mod check_config;
pub mod demo;
pub mod logging;
pub mod rotate;
pub mod run;
pub mod signals;
pub mod simulate;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{self, Environment, Settings, DEFAULT_CONFIG_PATH};
use logging::LogFormat;

/// How a command ended, as the README's exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done; `check` found nothing above info.
    Ok,
    /// 1 (Nagios WARNING): `check` found a warning.
    Warning,
    /// 2 (Nagios CRITICAL): `check` found something critical.
    Critical,
    /// 2: `rotate` could not finish a rotation.
    RotationFailed,
    /// 3 (Nagios UNKNOWN): `check` could not check; `rotate` could not reach the account.
    Unknown,
    /// 64 (EX_USAGE): a command line that does not parse.
    Usage,
    /// 70 (EX_SOFTWARE): failed in a way that is not the configuration's fault.
    Software,
    /// 71 (EX_OSERR): an address could not be bound.
    OsError,
    /// 78 (EX_CONFIG): a bad configuration; systemd's `RestartPreventExitStatus=78` stops a
    /// restart loop on it.
    Config,
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> i32 {
        match self {
            Exit::Ok => 0,
            Exit::Warning => 1,
            Exit::Critical | Exit::RotationFailed => 2,
            Exit::Unknown => 3,
            Exit::Usage => 64,
            Exit::Software => 70,
            Exit::OsError => 71,
            Exit::Config => 78,
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "ngrok-cert-watchdog",
    version,
    about = "Keeps the TLS certificates behind an ngrok account from expiring or failing silently"
)]
pub struct Cli {
    /// The configuration file.
    #[arg(long, global = true, env = "NGROK_CERT_WATCHDOG_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// Log format on stderr (level from RUST_LOG, default info).
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The daemon: scheduled syncs, metrics, health (exit 78 on a bad configuration or API key).
    Run,
    /// One sync of the account and its evaluation; Nagios exit codes (0 OK, 1 warning, 2 critical, 3 unknown).
    Check {
        #[arg(long, value_enum, default_value = "text")]
        format: check::ReportFormat,
    },
    /// Validate the configuration (0 valid, 78 invalid).
    CheckConfig,
    /// One rotation pass over the [[watch]] entries (0 done or nothing to do, 2 a rotation failed,
    /// 3 could not reach the account, 78 bad config).
    Rotate {
        /// Only this watch.
        #[arg(long)]
        watch: Option<String>,
        /// Print the plan (what would be uploaded, moved, deleted); change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Run the ngrok API simulator in the foreground; reads no configuration file.
    Simulate {
        /// Address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long)]
        listen: SocketAddr,
        /// The API key clients must present.
        #[arg(long)]
        api_key: String,
        /// A seed file describing the account (README, "The simulator"; config/demo-seed.toml is one).
        #[arg(long)]
        seed: Option<PathBuf>,
        /// Rate limit as N/DURATION (default 120/60s), or "off".
        #[arg(long)]
        rate_limit: Option<String>,
        /// Simultaneous API requests allowed before 429 ERR_NGROK_225 (/_sim/ is exempt); 0 for
        /// no limit.
        #[arg(long, value_name = "N", default_value_t = crate::sim::DEFAULT_MAX_CONCURRENT)]
        max_concurrent: usize,
        /// Write the root CA the seeds' certificates chain to (PEM) into FILE, for
        /// `edge.trust_anchors`.
        #[arg(long, value_name = "FILE")]
        write_ca: Option<PathBuf>,
    },
    /// The simulator and the daemon in one process on loopback, with a seeded account; reads no
    /// configuration file; runs until Ctrl-C.
    Demo {
        /// Where to serve /metrics, /readyz and /healthz (default 127.0.0.1:10742, else a free port).
        #[arg(long)]
        metrics_listen: Option<SocketAddr>,
    },
}

/// Runs the program with these arguments; returns the exit code.
pub fn main_with_args(args: impl IntoIterator<Item = OsString>) -> i32 {
    let args: Vec<OsString> = args.into_iter().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            let exit = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    Exit::Ok
                }
                // A Nagios check must stay in its range: "could not check".
                _ if args.iter().any(|a| a == "check") => Exit::Unknown,
                _ => Exit::Usage,
            };
            return exit.code();
        }
    };
    logging::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ngrok-cert-watchdog: cannot start the async runtime: {e}");
            return Exit::Software.code();
        }
    };
    let exit = runtime.block_on(dispatch(cli));
    // A reader stuck on a hung file (a blocking thread) must not keep the process alive: the
    // daemon has drained; give what is left a moment, well inside the unit's TimeoutStopSec.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    exit.code()
}

/// One command, one module, one signature: what it needs in, an [`Exit`] out.
async fn dispatch(cli: Cli) -> Exit {
    let env = Environment::from_process();
    match cli.command {
        Command::Run => run::run(cli.config, env).await,
        Command::CheckConfig => check_config::check_config(&cli.config, &env),
        Command::Check { format } => check::check(&cli.config, &env, format).await,
        Command::Rotate { watch, dry_run } => {
            rotate::rotate(&cli.config, &env, watch.as_deref(), dry_run).await
        }
        Command::Demo { metrics_listen } => demo::demo(metrics_listen).await,
        Command::Simulate {
            listen,
            api_key,
            seed,
            rate_limit,
            max_concurrent,
            write_ca,
        } => simulate::simulate(listen, api_key, seed, rate_limit, max_concurrent, write_ca).await,
    }
}

/// Loads the configuration for a command; a bad one is printed (one problem a line) and ends the
/// command with `on_error`.
fn load_settings(
    path: &std::path::Path,
    env: &Environment,
    on_error: Exit,
) -> Result<Settings, Exit> {
    config::load(path, env).map_err(|e| {
        eprintln!("{e}");
        on_error
    })
}
