//! `smartlic`: one binary for the manager (`server`), its operators (`admin`), a simulated
//! device with the smart agent (`agent`), a test device (`device`) and the load generator
//! (`bench`).

mod admin;
mod agent_cmd;
mod bench;
mod device;
mod prompt;
mod server_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "smartlic", version, about = "Smart software licensing: manager, admin client, device tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the license manager (cloud mode) over HTTPS.
    Server(server_cmd::ServerArgs),
    /// Operate a running manager: accounts, pools, licenses, tokens, instances, reports.
    Admin(admin::AdminArgs),
    /// A simulated device running the smart agent, with the device CLI of the seeds.
    Agent(agent_cmd::AgentArgs),
    /// A minimal test device speaking the device protocol, one exchange per command.
    Device(device::DeviceArgs),
    /// Load generator: many simulated devices against a manager over HTTPS on loopback.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Server(args) => server_cmd::run(args).await,
            Command::Admin(args) => admin::run(args).await,
            Command::Agent(args) => agent_cmd::run(args).await,
            Command::Device(args) => device::run(args).await,
            Command::Bench(args) => bench::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
