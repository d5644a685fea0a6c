# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_ngrok_cert_watchdog_global_optspecs
    string join \n config= log-format= h/help V/version
end

function __fish_ngrok_cert_watchdog_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_ngrok_cert_watchdog_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_ngrok_cert_watchdog_using_subcommand
    set -l cmd (__fish_ngrok_cert_watchdog_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_needs_command" -l config -d 'The configuration file' -r -F
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_needs_command" -l log-format -d 'Log format on stderr (level from RUST_LOG, default info)' -r -f -a "text\t''
json\t''"
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_needs_command" -s h -l help -d 'Print help'
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_needs_command" -s V -l version -d 'Print version'
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_needs_command" -f -a "run" -d 'The daemon: scheduled syncs, metrics, health (exit 78 on a bad configuration or API key)'
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_needs_command" -f -a "check" -d 'One sync of the account and its evaluation; Nagios exit codes (0 OK, 1 warning, 2 critical, 3 unknown)'
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_needs_command" -f -a "check-config" -d 'Validate the configuration (0 valid, 78 invalid)'
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_needs_command" -f -a "rotate" -d 'One rotation pass over the [[watch]] entries (0 done or nothing to do, 2 a rotation failed, 3 could not reach the account, 78 bad config)'
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_needs_command" -f -a "simulate" -d 'Run the ngrok API simulator in the foreground; reads no configuration file'
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_needs_command" -f -a "demo" -d 'The simulator and the daemon in one process on loopback, with a seeded account; reads no configuration file; runs until Ctrl-C'
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand run" -l config -d 'The configuration file' -r -F
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand run" -l log-format -d 'Log format on stderr (level from RUST_LOG, default info)' -r -f -a "text\t''
json\t''"
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand run" -s h -l help -d 'Print help'
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand check" -l format -r -f -a "text\t''
json\t''"
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand check" -l config -d 'The configuration file' -r -F
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand check" -l log-format -d 'Log format on stderr (level from RUST_LOG, default info)' -r -f -a "text\t''
json\t''"
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand check" -l no-edge -d 'Skip the probes from outside the API: no TLS handshake with the edge, no DNS query'
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand check" -s h -l help -d 'Print help'
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand check-config" -l config -d 'The configuration file' -r -F
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand check-config" -l log-format -d 'Log format on stderr (level from RUST_LOG, default info)' -r -f -a "text\t''
json\t''"
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand check-config" -s h -l help -d 'Print help'
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand rotate" -l watch -d 'Only this watch' -r
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand rotate" -l config -d 'The configuration file' -r -F
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand rotate" -l log-format -d 'Log format on stderr (level from RUST_LOG, default info)' -r -f -a "text\t''
json\t''"
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand rotate" -l dry-run -d 'Print the plan (what would be uploaded, moved, deleted); change nothing'
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand rotate" -s h -l help -d 'Print help'
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand simulate" -l listen -d 'Address to listen on, e.g. 127.0.0.1:8080' -r
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand simulate" -l api-key -d 'The API key clients must present' -r
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand simulate" -l seed -d 'A seed file describing the account (README, "The simulator"; config/demo-seed.toml is one)' -r -F
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand simulate" -l rate-limit -d 'Rate limit as N/DURATION (default 120/60s), or "off"' -r
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand simulate" -l max-concurrent -d 'Simultaneous API requests allowed before 429 ERR_NGROK_225 (/_sim/ is exempt); 0 for no limit' -r
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand simulate" -l write-ca -d 'Write the root CA the seeds\' certificates chain to (PEM) into FILE, for `edge.trust_anchors`' -r -F
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand simulate" -l config -d 'The configuration file' -r -F
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand simulate" -l log-format -d 'Log format on stderr (level from RUST_LOG, default info)' -r -f -a "text\t''
json\t''"
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand simulate" -s h -l help -d 'Print help'
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand demo" -l metrics-listen -d 'Where to serve /metrics, /readyz and /healthz (default 127.0.0.1:10742, else a free port)' -r
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand demo" -l config -d 'The configuration file' -r -F
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand demo" -l log-format -d 'Log format on stderr (level from RUST_LOG, default info)' -r -f -a "text\t''
json\t''"
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand demo" -s h -l help -d 'Print help'
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand help; and not __fish_seen_subcommand_from run check check-config rotate simulate demo help" -f -a "run" -d 'The daemon: scheduled syncs, metrics, health (exit 78 on a bad configuration or API key)'
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand help; and not __fish_seen_subcommand_from run check check-config rotate simulate demo help" -f -a "check" -d 'One sync of the account and its evaluation; Nagios exit codes (0 OK, 1 warning, 2 critical, 3 unknown)'
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand help; and not __fish_seen_subcommand_from run check check-config rotate simulate demo help" -f -a "check-config" -d 'Validate the configuration (0 valid, 78 invalid)'
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand help; and not __fish_seen_subcommand_from run check check-config rotate simulate demo help" -f -a "rotate" -d 'One rotation pass over the [[watch]] entries (0 done or nothing to do, 2 a rotation failed, 3 could not reach the account, 78 bad config)'
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand help; and not __fish_seen_subcommand_from run check check-config rotate simulate demo help" -f -a "simulate" -d 'Run the ngrok API simulator in the foreground; reads no configuration file'
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand help; and not __fish_seen_subcommand_from run check check-config rotate simulate demo help" -f -a "demo" -d 'The simulator and the daemon in one process on loopback, with a seeded account; reads no configuration file; runs until Ctrl-C'
complete -c ngrok-cert-watchdog -n "__fish_ngrok_cert_watchdog_using_subcommand help; and not __fish_seen_subcommand_from run check check-config rotate simulate demo help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
