//! `smartlic server`: runs the license manager until interrupted.

use smartlic_server::state::Limits;
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
    /// A DNS name or IP address devices reach the manager by, added to the generated TLS
    /// certificate (repeatable).
    #[arg(long = "hostname", value_name = "NAME")]
    hostnames: Vec<String>,
    #[arg(long, value_enum, default_value = "system")]
    clock: ClockMode,
    /// Product catalogue (TOML) replacing the built-in one.
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// Seconds of wall time between runs of the background jobs.
    #[arg(long, default_value_t = 60)]
    job_interval: u64,
    /// Open connections at most; at the cap the oldest idle one is closed for a new one.
    #[arg(long, default_value_t = Limits::default().max_connections as u32,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    max_connections: u32,
    /// Seconds a new connection has to complete its TLS handshake.
    #[arg(long, default_value_t = Limits::default().handshake_timeout.as_secs(), value_parser = seconds())]
    handshake_timeout: u64,
    /// Seconds a request has, from its first byte, to send all its headers.
    #[arg(long, default_value_t = Limits::default().header_timeout.as_secs(), value_parser = seconds())]
    header_timeout: u64,
    /// Seconds a keep-alive connection may stay without a request before it is closed.
    #[arg(long, default_value_t = Limits::default().idle_timeout.as_secs(), value_parser = seconds())]
    idle_timeout: u64,
    /// Failed logins per minute allowed for one client ID, then 429 (0: no limit).
    #[arg(long, default_value_t = Limits::default().login_failures_per_client)]
    login_failures_per_client: u32,
    /// Failed logins per minute allowed from one source address (IPv6: a /64), then 429 (0: no limit).
    #[arg(long, default_value_t = Limits::default().login_failures_per_address)]
    login_failures_per_address: u32,
}

/// A timeout in whole seconds, one second to one hour.
fn seconds() -> clap::builder::RangedU64ValueParser {
    clap::value_parser!(u64).range(1..=3600)
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing::subscriber::set_global_default(logger(std::io::stderr, ansi))?;
    let config = ServerConfig {
        data_dir: args.data.clone(),
        listen: args.listen,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        hostnames: args.hostnames,
        simulated_clock: matches!(args.clock, ClockMode::Simulated),
        catalog: args.catalog,
        admin_secret: std::env::var("SMARTLIC_ADMIN_SECRET").ok().filter(|s| !s.is_empty()),
        job_interval: Duration::from_secs(args.job_interval.max(1)),
        limits: Limits {
            max_connections: args.max_connections as usize,
            handshake_timeout: Duration::from_secs(args.handshake_timeout),
            header_timeout: Duration::from_secs(args.header_timeout),
            idle_timeout: Duration::from_secs(args.idle_timeout),
            login_failures_per_client: args.login_failures_per_client,
            login_failures_per_address: args.login_failures_per_address,
        },
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

/// The server's log (level from `SMARTLIC_LOG`, default info). Every field and message is
/// escaped: a value taken from a request (a client ID, a hostname) cannot start a line of its
/// own or carry terminal control sequences.
fn logger<W>(writer: W, ansi: bool) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::field::MakeExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("SMARTLIC_LOG").unwrap_or_else(|_| "info".into());
    let fields = tracing_subscriber::fmt::format::debug_fn(|out, field, value| {
        let text: String = format!("{value:?}")
            .chars()
            .flat_map(|c| match c.is_control() {
                true => c.escape_default().collect::<Vec<_>>(),
                false => vec![c],
            })
            .collect();
        match field.name() {
            "message" => write!(out, "{text}"),
            name => write!(out, "{name}={text}"),
        }
    })
    .delimited(" ");
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi).fmt_fields(fields).finish()
}

/// Writes to stdout, ignoring a closed pipe: the server keeps running when nobody reads it.
fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn request_values_cannot_forge_log_lines() {
        let log = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = log.clone();
        let writer = move || Sink(sink.clone());
        tracing::subscriber::with_default(logger(writer, false), || {
            let client = "intruder\n2026-12-03T13:00:00Z  INFO smartlic_server: admin logged in";
            tracing::warn!(client = %client, hostname = "sw1\r\x1b[2J", "token refused: {}", "wrong\nsecret");
        });
        let text = String::from_utf8(log.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("client=intruder\\n2026-12-03T13:00:00Z  INFO"), "{text}");
        assert!(text.contains(r#"hostname="sw1\r\u{1b}[2J""#), "{text}");
        assert!(text.contains("token refused: wrong\\nsecret"), "{text}");
    }

    /// Collects what the logger writes.
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
