//! `smartlic`: one binary for the manager (`server`), its operators (`admin`), a simulated
//! device with the smart agent (`agent`), a test device (`device`) and the load generator
//! (`bench`).

mod admin;
mod agent_cmd;
mod bench;
mod device;
mod prompt;
mod server_cmd;
mod simulate;

use clap::{CommandFactory, Parser, Subcommand};
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
    /// Simulate a fleet of devices against a manager for months or years of simulated time.
    Simulate(simulate::SimulateArgs),
    /// Print a shell completion script, e.g. `smartlic completions bash > /etc/bash_completion.d/smartlic`.
    Completions {
        /// The shell the script is for.
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "smartlic", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
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
            Command::Simulate(args) => simulate::run(args).await,
            Command::Completions { .. } => unreachable!("answered before the runtime starts"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.is::<device::NotAuthorized>() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;
    use std::collections::HashMap;

    /// Every subcommand and argument of `cmd` and below: (its path, its help text).
    fn helps(cmd: &clap::Command, path: &str, out: &mut Vec<(String, String)>) {
        for arg in cmd.get_arguments().filter(|a| !["help", "version"].contains(&a.get_id().as_str())) {
            out.push((format!("{path} --{}", arg.get_id()), arg.get_help().map(|h| h.to_string()).unwrap_or_default()));
        }
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let sub_path = format!("{path} {}", sub.get_name());
            out.push((sub_path.clone(), sub.get_about().map(|h| h.to_string()).unwrap_or_default()));
            helps(sub, &sub_path, out);
        }
    }

    /// The whole command tree says what each command and flag does, in words of its own: no
    /// empty help, and no help text shared by things of different names (a flattened group's
    /// doc comment leaking into the commands that use it).
    #[test]
    fn every_command_and_flag_has_help_of_its_own() {
        Cli::command().debug_assert();
        let mut all = Vec::new();
        helps(&Cli::command(), "smartlic", &mut all);
        let empty: Vec<&String> = all.iter().filter(|(_, h)| h.trim().is_empty()).map(|(p, _)| p).collect();
        assert!(empty.is_empty(), "no help text: {empty:#?}");
        let mut by_text: HashMap<&str, Vec<&str>> = HashMap::new();
        for (path, help) in &all {
            by_text.entry(help.as_str()).or_default().push(path.as_str());
        }
        // The same flag may repeat its help across commands; commands, and flags of
        // different names, may not share one.
        let flag = |p: &str| p.rsplit(' ').next().filter(|w| w.starts_with("--")).map(str::to_string);
        let shared: Vec<_> = by_text
            .iter()
            .filter(|(_, paths)| {
                paths.len() > 1 && paths.iter().any(|p| flag(p).is_none() || flag(p) != flag(paths[0]))
            })
            .map(|(help, paths)| (*help, paths.clone()))
            .collect();
        assert!(shared.is_empty(), "help text shared by different commands or flags: {shared:#?}");
    }
}
