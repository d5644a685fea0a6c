//! The command line: parse, set up logging, run one command, map its outcome to an exit code.
//!
//! Errors leave here as one line on stderr, never a panic, a backtrace or a secret.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use secrecy::SecretString;
use time::OffsetDateTime;

use crate::check::{self, ReportFormat, EXIT_UNKNOWN};
use crate::config::{self, Environment, Settings, DEFAULT_CONFIG_PATH};
use crate::logging::{self, LogFormat};
use crate::report;

/// sysexits' EX_CONFIG: systemd's `RestartPreventExitStatus=78` stops a restart loop on it.
pub const EXIT_CONFIG: i32 = 78;
/// sysexits' EX_USAGE, for a command line that does not parse.
pub const EXIT_USAGE: i32 = 64;
/// EX_SOFTWARE: the program failed in a way that is not the configuration's fault.
pub const EXIT_SOFTWARE: i32 = 70;

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
        format: ReportFormat,
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
        /// A seed file describing the account (see docs/simulator.md).
        #[arg(long)]
        seed: Option<PathBuf>,
        /// Rate limit as N/DURATION (default 120/60s), or "off".
        #[arg(long)]
        rate_limit: Option<String>,
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
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                // A Nagios check must stay in its range: "could not check".
                _ if args.iter().any(|a| a == "check") => EXIT_UNKNOWN,
                _ => EXIT_USAGE,
            };
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
            return EXIT_SOFTWARE;
        }
    };
    runtime.block_on(run_command(cli))
}

async fn run_command(cli: Cli) -> i32 {
    let env = Environment::from_process();
    match cli.command {
        Command::Run => run_daemon(cli.config, env).await,
        Command::CheckConfig => match config::load(&cli.config, &env) {
            Ok(settings) => {
                println!("{}", describe(&settings));
                0
            }
            Err(e) => {
                eprintln!("{e}");
                EXIT_CONFIG
            }
        },
        Command::Check { format } => {
            let settings = match config::load(&cli.config, &env) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    return EXIT_UNKNOWN;
                }
            };
            match check::check(&settings).await {
                Ok(outcome) => {
                    let checked_at = OffsetDateTime::now_utc();
                    match format {
                        ReportFormat::Json => {
                            let doc =
                                report::to_json(&outcome.inventory, &outcome.findings, checked_at);
                            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
                        }
                        ReportFormat::Text => {
                            print!(
                                "{}",
                                report::to_text(&outcome.inventory, &outcome.findings, checked_at)
                            );
                        }
                    }
                    report::exit_code(&outcome.findings)
                }
                Err(e) => {
                    eprintln!("ngrok-cert-watchdog: check: {e}");
                    EXIT_UNKNOWN
                }
            }
        }
        Command::Rotate { watch, dry_run } => {
            let settings = match config::load(&cli.config, &env) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    return EXIT_CONFIG;
                }
            };
            crate::rotation::rotate_command(&settings, watch.as_deref(), dry_run).await
        }
        Command::Demo { metrics_listen } => {
            match crate::demo::demo(metrics_listen, crate::shutdown_signal()).await {
                Ok(()) => 0,
                Err(e @ crate::demo::DemoError::Bind { .. }) => {
                    eprintln!("ngrok-cert-watchdog: demo: {e}");
                    EXIT_OSERR
                }
                Err(e) => {
                    eprintln!("ngrok-cert-watchdog: demo: {e}");
                    EXIT_SOFTWARE
                }
            }
        }
        Command::Simulate {
            listen,
            api_key,
            seed,
            rate_limit,
        } => {
            let shutdown = crate::shutdown_signal();
            match crate::sim::simulate(
                listen,
                SecretString::from(api_key),
                seed,
                rate_limit,
                shutdown,
            )
            .await
            {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("ngrok-cert-watchdog: simulate: {e}");
                    EXIT_USAGE
                }
            }
        }
    }
}

/// EX_OSERR: the metrics address could not be bound.
pub const EXIT_OSERR: i32 = 71;

async fn run_daemon(path: PathBuf, env: Environment) -> i32 {
    let settings = match config::load(&path, &env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_CONFIG;
        }
    };
    let listener = match tokio::net::TcpListener::bind(settings.metrics.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "ngrok-cert-watchdog: run: cannot listen on metrics.listen {}: {}",
                settings.metrics.listen,
                config::io_reason(&e)
            );
            return EXIT_OSERR;
        }
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            crate::shutdown_signal().await;
            shutdown.cancel();
        });
    }
    let ctx = crate::daemon::RunContext {
        config_path: Some(path),
        env,
        settings,
        listener,
        ticks: crate::daemon::Ticks::Cron,
        reload: crate::reload_signal(),
        notifier: std::sync::Arc::new(crate::daemon::SystemdNotifier),
        supervision: crate::daemon::Supervision::from_environment(),
    };
    match crate::daemon::run(ctx, shutdown).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ngrok-cert-watchdog: run: {e}");
            EXIT_SOFTWARE
        }
    }
}

/// One line about a valid configuration, without secrets.
fn describe(s: &Settings) -> String {
    format!(
        "{}: valid (api {}, key from {}, sync \"{}\", {} watch(es), {} webhook(s), metrics on {})",
        s.source.display(),
        config::redacted_url(&s.api.url),
        s.api.key_source,
        s.schedule.sync,
        s.watches.len(),
        s.webhooks.len(),
        s.metrics.listen
    )
}
