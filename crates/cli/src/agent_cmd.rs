//! `smartlic agent`: a simulated device running the smart agent, driven with the device CLI.
//!
//! `init` creates a device; `-c 'CMD'` (repeatable) runs commands one after another and exits;
//! `run` is the device daemon (timers on time, product REST API on loopback); with none of
//! them, an interactive device prompt reads standard input. One process drives a device at a
//! time: each takes the state directory's lock.

use anyhow::Context;
use smartlic_agent::daemon;
use smartlic_agent::device::Device;
use smartlic_agent::session::Session;
use smartlic_core::{Catalog, SystemClock};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;

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
        #[arg(long)]
        pid: String,
        #[arg(long)]
        sn: String,
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
    if let Some(AgentAction::Run { listen }) = args.action {
        let filter = tracing_subscriber::EnvFilter::try_from_env("SMARTLIC_LOG").unwrap_or_else(|_| "info".into());
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        return Ok(daemon::run(device, _lock, listen, shutdown).await?);
    }
    if args.commands.is_empty() {
        return interactive(Session::new(device, false)).await;
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
    if failed {
        anyhow::bail!("a command was refused");
    }
    Ok(())
}

async fn interactive(mut session: Session) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    loop {
        say(&session.prompt());
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            say("\n");
            return Ok(());
        }
        let reply = session.line(line.trim_end_matches(['\n', '\r'])).await?;
        say(&with_newline(&reply.output));
        if reply.exit {
            return Ok(());
        }
    }
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
