//! `smartlic simulate`: a fleet of devices, each driven by the real agent state machine, against
//! a real manager on a simulated clock, for months or years of simulated time in seconds.
//!
//! - [`scenario`]: the TOML file (device groups, pools and purchases, outages, retirements).
//! - [`manager`]: the manager, started in this process, reached without sockets.
//! - [`engine`]: the discrete-event loop over the devices' wake-ups.
//! - [`device`]: a device's state and its side of the signed exchanges.
//! - [`check`]: the timers of SPEC A-5 … A-8, checked on every device's timeline.
//! - [`report`]: per-day CSV, SVG chart, terminal summary.
//!
//! The engine lives in this binary rather than a library crate: it needs the server, the agent
//! protocol client and the store together, which only the binary depends on.

mod check;
mod device;
mod engine;
mod manager;
mod report;
mod scenario;

use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct SimulateArgs {
    /// The scenario file (TOML; see examples/simulate/).
    #[arg(long)]
    scenario: PathBuf,
    /// Directory for days.csv and days.svg (created if needed); none: the summary only.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seed of the pseudo-random choices, instead of the scenario's.
    #[arg(long)]
    seed: Option<u64>,
}

/// How often a run whose standard error is not a terminal says how far it got.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

pub async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let scenario = scenario::Scenario::load(&args.scenario)?;
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; build with --release to simulate large fleets quickly");
    }
    let began = std::time::Instant::now();
    let engine = engine::Engine::new(&scenario, args.seed.unwrap_or(scenario.seed)).await?;
    let interactive = std::io::stderr().is_terminal();
    let days = scenario.days;
    // On a terminal one line redrawn every 30 days; in a log (a long run in the background) a
    // line at most every 10 s, with the time taken so far, to tell how far the run got.
    let mut logged = began;
    let rows = engine
        .run(|day| {
            let line = || format!("simulate: day {} of {days} ({:.0} s)", day + 1, began.elapsed().as_secs_f64());
            if interactive && (day + 1) % 30 == 0 {
                eprint!("\r{}", line());
            } else if !interactive && logged.elapsed() >= PROGRESS_EVERY {
                eprintln!("{}", line());
                logged = std::time::Instant::now();
            }
        })
        .await;
    if interactive {
        eprintln!();
    }
    let rows = rows?;
    print!("{}", report::summary(&rows, scenario.device_count(), began.elapsed()));
    if let Some(dir) = &args.out {
        report::write(dir, &rows)?;
        println!("wrote {} and {}", dir.join("days.csv").display(), dir.join("days.svg").display());
    }
    Ok(())
}
