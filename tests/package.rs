//! The Debian package's generated files: the man pages and the shell completions in `debian/`
//! are what clap_mangen and clap_complete make of the same clap definitions as `--help`.
//! `UPDATE_GENERATED=1 cargo test --test package` rewrites them after a change to the command line.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use ngrok_cert_watchdog::cmd::Cli;

const BIN: &str = "ngrok-cert-watchdog";

/// Sections clap does not know about, appended to the main page.
const MAIN_PAGE_EXTRA: &str = r#".SH "EXIT STATUS"
run: 0 after SIGTERM or SIGINT, 78 a bad configuration or an unreadable API key, 71 the metrics
address cannot be bound. check (a Nagios plugin): 0 nothing above info, 1 warning, 2 critical,
3 could not check. rotate: 0 done or nothing to do, 2 a rotation failed, 3 could not reach the
account, 78 a bad configuration. check\-config: 0 valid, 78 invalid.
.SH ENVIRONMENT
.TP
.B NGROK_CERT_WATCHDOG_CONFIG
The configuration file, when \-\-config is not given.
.TP
.B NGROK_API_KEY
The API key, when the configuration has no api.key_file.
.TP
.B CREDENTIALS_DIRECTORY
Set by systemd (LoadCredential=): the API key is read from its file ngrok\-api\-key when neither of
the above gives one.
.TP
.B STATE_DIRECTORY
Set by systemd (StateDirectory=): the default for state.dir.
.TP
.B RUST_LOG
The log level and filter (default info). Under the journal each line carries its priority, so
journalctl \-p warning shows the warnings and errors only.
.SH FILES
.TP
.I /etc/ngrok\-cert\-watchdog/config.toml
The configuration. Every key is shown there with its default; unknown keys are errors.
.TP
.I /etc/ngrok\-cert\-watchdog/api\-key
The API key (mode 0600, root), handed to the service by systemd as a credential.
.TP
.I /etc/ngrok\-cert\-watchdog/NAME.toml, /etc/ngrok\-cert\-watchdog/NAME.api\-key
The configuration and API key of ngrok\-cert\-watchdog@NAME.service, one account of several.
.TP
.I /var/lib/ngrok\-cert\-watchdog
The state: alert state and locks (/var/lib/ngrok\-cert\-watchdog\-NAME for an instance).
.TP
.I /usr/share/ngrok\-cert\-watchdog/
Prometheus alert rules, the certbot deploy hook and, where shipped, a Grafana dashboard.
.SH "SEE ALSO"
.BR systemctl (1),
.BR journalctl (1),
.BR systemd.exec (5)
"#;

fn generated_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("debian")
}

/// Every generated file: its path under `debian/` and its content.
fn generated() -> Vec<(String, Vec<u8>)> {
    let mut cmd = Cli::command();
    // Built, the command has its generated `help` subcommand too (the main page lists it).
    cmd.build();
    let mut files = Vec::new();

    let mut main = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut main)
        .unwrap();
    main.extend_from_slice(MAIN_PAGE_EXTRA.as_bytes());
    files.push((format!("man/{BIN}.1"), main));
    // One page per command, as git does (man ngrok-cert-watchdog-check).
    for sub in cmd.get_subcommands() {
        let name = format!("{BIN}-{}", sub.get_name());
        let mut page = Vec::new();
        let page_cmd = sub
            .clone()
            .name(name.clone().leak() as &'static str)
            .bin_name(format!("{BIN} {}", sub.get_name()));
        clap_mangen::Man::new(page_cmd).render(&mut page).unwrap();
        files.push((format!("man/{name}.1"), page));
    }

    for (shell, file) in [
        (Shell::Bash, format!("{BIN}.bash")),
        (Shell::Zsh, format!("_{BIN}")),
        (Shell::Fish, format!("{BIN}.fish")),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), BIN, &mut out);
        if shell == Shell::Bash {
            out = bash_fix(out);
        }
        files.push((format!("completions/{file}"), out));
    }
    files
}

/// clap_complete 4.6 names a subcommand's state in the bash script two ways when the binary's
/// name has a '-': the walk over the words sets `ngrok__cert__watchdog__subcmd__rotate`, the
/// case that completes it matches `ngrok__subcmd__cert__subcmd__watchdog__subcmd__rotate`, so no
/// subcommand's options ever complete (the boot test's `rotate --d<Tab>` found it). One spelling.
fn bash_fix(script: Vec<u8>) -> Vec<u8> {
    let script = String::from_utf8(script).unwrap();
    let walked = format!("{}__subcmd__", BIN.replace('-', "__"));
    let matched = format!("{}__subcmd__", BIN.replace('-', "__subcmd__"));
    script.replace(&matched, &walked).into_bytes()
}

#[test]
fn the_man_pages_and_completions_are_generated_from_the_cli() {
    let update = std::env::var_os("UPDATE_GENERATED").is_some();
    let mut stale = Vec::new();
    for (rel, content) in generated() {
        let path = generated_dir().join(&rel);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &content).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(&content[..]) {
            stale.push(rel);
        }
    }
    assert!(
        stale.is_empty(),
        "debian/{stale:?} differ from the command line: UPDATE_GENERATED=1 cargo test --test package"
    );
}

#[test]
fn the_main_man_page_lists_every_command_and_global_option() {
    let (_, page) = generated().into_iter().next().unwrap();
    let page = String::from_utf8(page).unwrap();
    for name in [
        "run",
        "check",
        "check\\-config",
        "rotate",
        "simulate",
        "demo",
    ] {
        assert!(page.contains(name), "{name} missing from the man page");
    }
    assert!(page.contains("\\-\\-config"), "{page}");
    assert!(page.contains("\\-\\-log\\-format"), "{page}");
}

/// `[package.metadata.deb] assets` as (source, destination) pairs.
fn assets() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(root.join("Cargo.toml")).unwrap()).unwrap();
    manifest["package"]["metadata"]["deb"]["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let a = a.as_array().unwrap();
            (
                a[0].as_str().unwrap().to_owned(),
                a[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_package_installs_the_interface_paths_from_files_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let assets = assets();
    for dest in [
        "usr/bin/",
        "lib/systemd/system/ngrok-cert-watchdog.service",
        "lib/systemd/system/ngrok-cert-watchdog@.service",
        "usr/lib/sysusers.d/ngrok-cert-watchdog.conf",
        "etc/ngrok-cert-watchdog/config.toml",
        "usr/share/man/man1/",
        "usr/share/bash-completion/completions/ngrok-cert-watchdog",
        "usr/share/zsh/vendor-completions/_ngrok-cert-watchdog",
        "usr/share/fish/vendor_completions.d/ngrok-cert-watchdog.fish",
        "usr/share/ngrok-cert-watchdog/prometheus-alerts.yml",
        "usr/share/ngrok-cert-watchdog/certbot-deploy-hook",
    ] {
        assert!(
            assets.iter().any(|(_, d)| d == dest),
            "nothing installed at /{dest}: {assets:?}"
        );
    }
    for (source, _) in &assets {
        if !source.starts_with("target/") && !source.contains('*') {
            assert!(root.join(source).is_file(), "asset {source} does not exist");
        }
    }
    // The Grafana dashboard ships as soon as the source has one.
    if root.join("config/grafana-dashboard.json").exists() {
        assert!(
            assets.iter().any(|(s, d)| s == "config/grafana-dashboard.json"
                && d.starts_with("usr/share/ngrok-cert-watchdog/")),
            "config/grafana-dashboard.json exists: list it in [package.metadata.deb] assets (commented there)"
        );
    }
}
