//! `smartlic server`: runs the license manager until interrupted.

use smartlic_server::{start, ServerConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ClockMode {
    /// Wall-clock time.
    System,
    /// Wall-clock time that `smartlic admin clock set` can move, for demonstrations and tests.
    Simulated,
}

#[derive(clap::Args)]
pub struct ServerArgs {
    /// Directory for the database, the CA and its key.
    #[arg(long = "data", default_value = "./smartlic-data")]
    data: PathBuf,
    /// Address and port to listen on (HTTPS).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// TLS certificate (PEM) to use instead of one issued by the manager's CA.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "system")]
    clock: ClockMode,
    /// Product catalogue (TOML) replacing the built-in one.
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// Seconds of wall time between runs of the background jobs.
    #[arg(long, default_value_t = 60)]
    job_interval: u64,
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SMARTLIC_LOG").unwrap_or_else(|_| "info".into());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
    let config = ServerConfig {
        data_dir: args.data.clone(),
        listen: args.listen,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        simulated_clock: matches!(args.clock, ClockMode::Simulated),
        catalog: args.catalog,
        admin_secret: std::env::var("SMARTLIC_ADMIN_SECRET").ok().filter(|s| !s.is_empty()),
        job_interval: Duration::from_secs(args.job_interval.max(1)),
    };
    let running = start(config).await?;
    let mut banner = String::new();
    if let Some(secret) = &running.generated_admin_secret {
        banner.push_str("Generated the administrator secret (shown once, only its hash is stored):\n");
        banner.push_str(&format!("  SMARTLIC_ADMIN_SECRET={secret}\n"));
    }
    banner.push_str(&format!("smartlic server listening on https://{}\n", running.local_addr));
    let ca = args.data.join(smartlic_server::tls::CA_FILE);
    banner.push_str(&format!("devices and admin clients trust the CA in {}\n", ca.display()));
    say(&banner);
    tokio::select! {
        _ = tokio::signal::ctrl_c() => say("shutting down\n"),
        _ = running.wait() => {}
    }
    Ok(())
}

/// Writes to stdout, ignoring a closed pipe: the server keeps running when nobody reads it.
fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
