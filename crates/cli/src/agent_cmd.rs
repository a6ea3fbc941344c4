//! `smartlic agent`: a simulated device running the smart agent, driven with the device CLI.
//!
//! `init` creates a device; `-c 'CMD'` (repeatable) runs commands one after another and exits;
//! `run` is the device daemon (timers on time, product REST API on loopback); with none of
//! them, an interactive device prompt reads standard input. One process drives a device at a
//! time: each takes the state directory's lock.

use crate::prompt::{Input, Prompt};
use anyhow::Context;
use smartlic_agent::daemon::{self, ApiCredentials};
use smartlic_agent::device::Device;
use smartlic_agent::session::Session;
use smartlic_core::{Catalog, SystemClock};
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

/// The product REST API's password (with `--api-user`) and bearer token.
const API_PASSWORD: &str = "SMARTLIC_AGENT_API_PASSWORD";
const API_TOKEN: &str = "SMARTLIC_AGENT_API_TOKEN";

#[derive(clap::Args)]
pub struct AgentArgs {
    /// The device's state directory.
    #[arg(long, default_value = "./device-state")]
    state: PathBuf,
    /// A device command (exec or configuration); repeat to run several in order.
    #[arg(short = 'c', long = "command", value_name = "CMD")]
    commands: Vec<String>,
    #[command(subcommand)]
    action: Option<AgentAction>,
}

#[derive(clap::Subcommand)]
enum AgentAction {
    /// Create a device: product ID, serial number, hostname, product catalogue.
    Init {
        /// Product ID of the device's UDI, e.g. APIC-SERVER-M3.
        #[arg(long)]
        pid: String,
        /// Serial number of the device's UDI.
        #[arg(long)]
        sn: String,
        /// The device's hostname, shown to the manager and in the prompt.
        #[arg(long)]
        hostname: Option<String>,
        /// Product catalogue (TOML, as the manager's `--catalog`); the built-in one otherwise.
        #[arg(long)]
        catalog: Option<PathBuf>,
    },
    /// The device daemon: fires timers on time and serves the product REST API.
    Run {
        /// Loopback address of the product REST API.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Require HTTP Basic credentials on the product REST API: this user, with the password in
        /// SMARTLIC_AGENT_API_PASSWORD. SMARTLIC_AGENT_API_TOKEN requires a bearer token instead
        /// (or as well). Secrets come from the environment only: a command line is visible to
        /// every local user.
        #[arg(long, value_name = "USER")]
        api_user: Option<String>,
    },
}

pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    if let Some(AgentAction::Init { pid, sn, hostname, catalog }) = args.action {
        let catalog = match catalog {
            Some(path) => {
                let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
                Catalog::from_toml(&text).with_context(|| format!("in {}", path.display()))?
            }
            None => Catalog::builtin(),
        };
        let tags: BTreeMap<String, String> =
            catalog.tags().iter().map(|t| (t.name.clone(), t.display_name.clone())).collect();
        let device = Device::init(&args.state, &pid, &sn, hostname.as_deref(), tags, Box::new(SystemClock))?;
        say(&format!("device PID:{},SN:{} created in {}\n", device.agent.pid, device.agent.sn, args.state.display()));
        return Ok(());
    }
    // Opening first gives the clear "not a device" error; the locked open then reads the state
    // that this process alone will change.
    Device::open(&args.state, Box::new(SystemClock))?;
    let (device, _lock) = daemon::open_locked(&args.state, Box::new(SystemClock))?;
    if let Some(AgentAction::Run { listen, api_user }) = args.action {
        let credentials = api_credentials(api_user)?;
        let filter = tracing_subscriber::EnvFilter::try_from_env("SMARTLIC_LOG").unwrap_or_else(|_| "info".into());
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        return Ok(daemon::run(device, _lock, listen, credentials, shutdown).await?);
    }
    if args.commands.is_empty() {
        let mut session = Session::new(device, false);
        interactive(&mut session).await?;
        return close(&mut session).await;
    }
    let mut session = Session::new(device, true);
    let mut failed = false;
    let stdin = std::io::stdin();
    for command in &args.commands {
        let mut reply = session.line(command).await?;
        say(&with_newline(&reply.output));
        // A certificate to import comes on standard input (`crypto pki authenticate`).
        while session.reading_pem() {
            let mut line = String::new();
            if stdin.lock().read_line(&mut line)? == 0 {
                reply = session.line("quit").await?;
                break;
            }
            reply = session.line(line.trim_end()).await?;
            say(&with_newline(&reply.output));
        }
        failed |= reply.error;
        if reply.exit {
            break;
        }
    }
    close(&mut session).await?;
    if failed {
        anyhow::bail!("a command was refused");
    }
    Ok(())
}

/// The product REST API's credentials from `--api-user` and the environment; a half-configured
/// pair is refused rather than leaving the API open.
fn api_credentials(user: Option<String>) -> anyhow::Result<ApiCredentials> {
    let secret = |name: &str| match std::env::var(name) {
        Ok(value) if value.is_empty() => anyhow::bail!("{name} is set but empty"),
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => anyhow::bail!("{name} is not valid UTF-8"),
    };
    let basic = match (user, secret(API_PASSWORD)?) {
        (Some(user), Some(password)) => {
            if user.is_empty() || user.contains(':') || user.chars().any(char::is_control) {
                anyhow::bail!("--api-user must be a non-empty name without ':' or control characters");
            }
            Some((user, password))
        }
        (Some(_), None) => anyhow::bail!("--api-user needs the password in {API_PASSWORD}"),
        (None, Some(_)) => anyhow::bail!("{API_PASSWORD} is set but --api-user is not: name the user"),
        (None, None) => None,
    };
    Ok(ApiCredentials { basic, bearer: secret(API_TOKEN)? })
}

/// Lets a registration under way end (bounded) before the process does, and prints what it raised.
async fn close(session: &mut Session) -> anyhow::Result<()> {
    say(&with_newline(&session.close().await?));
    Ok(())
}

/// The interactive prompt: on a terminal with line editing ([`Prompt`]); from or to a pipe or a
/// file, plain lines, the prompt printed before each.
async fn interactive(session: &mut Session) -> anyhow::Result<()> {
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let mut terminal = if terminal { Some(Prompt::new()?) } else { None };
    if terminal.is_some() {
        session.typed_on_terminal();
    }
    loop {
        // Blocks the thread `block_on` runs on, not a runtime worker: spawned work goes on.
        let line = match read_input(terminal.as_mut(), session)? {
            Input::Line(line) => line,
            Input::Cancelled => continue,
            Input::End => return Ok(()),
        };
        let reply = session.line(&line).await?;
        say(&with_newline(&reply.output));
        if reply.exit {
            return Ok(());
        }
    }
}

/// One line after the session's prompt, from the terminal or, without one, from standard input.
fn read_input(terminal: Option<&mut Prompt>, session: &Session) -> anyhow::Result<Input> {
    let prompt = session.prompt();
    if let Some(terminal) = terminal {
        // The mode's prompt asks for a command; another one for a certificate or an answer.
        let command = prompt == session.mode.prompt(&session.device.config.hostname);
        return Ok(terminal.read(&prompt, &session.mode, command)?);
    }
    say(&prompt);
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line)? == 0 {
        say("\n");
        return Ok(Input::End);
    }
    Ok(Input::Line(line.trim_end_matches(['\n', '\r']).to_string()))
}

fn with_newline(text: &str) -> String {
    if text.is_empty() || text.ends_with('\n') {
        text.to_string()
    } else {
        format!("{text}\n")
    }
}

/// Writes to stdout, ignoring a closed pipe.
fn say(text: &str) {
    let mut out = std::io::stdout();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
