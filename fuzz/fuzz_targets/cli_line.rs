//! The device CLI grammar: one typed line in any mode (and `-c` one-shot lines).
//!
//! Input: a mode byte, then the line.
#![no_main]
use libfuzzer_sys::fuzz_target;
use smartlic_agent::cli::{format_help, Cli, CliError, Command, Mode, Parsed};
use std::sync::LazyLock;

static CLI: LazyLock<Cli> = LazyLock::new(Cli::new);

fn check(mode: &Mode, line: &str, parsed: Result<Parsed<Command>, CliError>) {
    match parsed {
        Ok(Parsed::Command(cmd)) => {
            let _ = mode.after(&cmd);
            if let Command::ClockSet(clock) = &cmd {
                let _ = clock.unix_seconds();
            }
        }
        Ok(Parsed::Help(items)) => drop(format_help(&items)),
        Ok(Parsed::Empty) => {}
        Err(e) => {
            if let CliError::Invalid { line: echoed, pos } = &e {
                assert!(*pos <= echoed.chars().count() + 1, "marker {pos} past {echoed:?} (typed {line:?})");
            }
            assert!(!e.to_string().is_empty());
            let _ = e.render_after_prompt(mode.prompt("Device").len());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [selector, rest @ ..] = data else { return };
    let Some(line) = smartlic_fuzz::text(rest) else { return };
    let mode = match selector % 7 {
        0 => Mode::Exec,
        1 => Mode::Config,
        2 => Mode::CallHome,
        3 => Mode::CallHomeProfile("CiscoTAC-1".into()),
        4 => Mode::Callhome,
        5 => Mode::Trustpoint("SLA-TrustPoint".into()),
        _ => return check(&Mode::Exec, line, CLI.parse_oneshot(line)),
    };
    check(&mode, line, CLI.parse(&mode, line));
});
