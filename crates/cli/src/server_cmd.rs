//! `smartlic server`: runs the license manager until interrupted.

use smartlic_server::data_key::{DataKey, DATA_KEY_VARIABLE};
use smartlic_server::state::Limits;
use smartlic_server::{start, DatabaseConfig, Mode, ServerConfig};
use smartlic_store::DatabaseUrl;
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

/// `--mode`: the role of this server.
#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
pub enum ModeArg {
    /// The license manager (the cloud).
    Cloud,
    /// An on-premises manager serving the virtual accounts the cloud assigned to it.
    Satellite,
    /// A relay of device messages to the manager at --upstream, keeping no licensing state.
    Gateway,
    /// The fleet orchestrator: customers' clusters licensed against managers (seed 002).
    Fleet,
}

#[derive(clap::Args)]
pub struct ServerArgs {
    /// What this server is: the cloud manager, a satellite, or a gateway.
    #[arg(long, value_enum, default_value = "cloud")]
    mode: ModeArg,
    /// The manager a gateway relays to (`https://HOST:PORT`; gateway mode only).
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
    /// The CA certificate (PEM) that authenticates --upstream's TLS (gateway mode only).
    #[arg(long, value_name = "FILE")]
    upstream_ca: Option<PathBuf>,
    /// Directory for the database, the CA and its key.
    #[arg(long = "data", default_value = "./smartlic-data")]
    data: PathBuf,
    /// The database: `sqlite:PATH` (or a bare path) or `postgres://USER@HOST:PORT/DB`.
    /// Default: the SQLite file in --data. Replicas of
    /// one manager name the same database and set the same SMARTLIC_DATA_KEY (at least 32
    /// characters), which encrypts the CA key the database keeps for all of them; PostgreSQL
    /// requires it.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
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
    /// Where the manager's time comes from (`simulated` lets `smartlic admin clock set` move it).
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
    /// Seconds a request has, after its headers, to send its body; each --body-min-rate bytes
    /// received earn another second.
    #[arg(long, default_value_t = Limits::default().body_timeout.as_secs(), value_parser = seconds())]
    body_timeout: u64,
    /// Bytes per second a request body must keep up on average beyond --body-timeout.
    #[arg(long, default_value_t = Limits::default().body_min_rate,
          value_parser = clap::value_parser!(u64).range(1..))]
    body_min_rate: u64,
    /// A load balancer or proxy in front of the manager (an address or a range such as
    /// 10.0.0.0/8; repeat for several): requests from it are counted and logged as coming from
    /// the client its X-Forwarded-For names. Never list addresses clients can connect from.
    #[arg(long = "trusted-proxy", value_name = "CIDR", value_parser = smartlic_server::tls::trusted_proxy)]
    trusted_proxies: Vec<smartlic_server::state::IpNet>,
    /// Failed logins per minute allowed for one client ID, then 429 (0: no limit).
    #[arg(long, default_value_t = Limits::default().login_failures_per_client)]
    login_failures_per_client: u32,
    /// Failed logins per minute allowed from one source address (IPv6: a /64), then 429 (0: no limit).
    #[arg(long, default_value_t = Limits::default().login_failures_per_address)]
    login_failures_per_address: u32,
    /// Seconds requests in progress have to finish at a stop (SIGTERM, Ctrl-C); the database
    /// is then closed.
    #[arg(long, default_value_t = Limits::default().shutdown_timeout.as_secs(), value_parser = seconds())]
    shutdown_timeout: u64,
    /// Log lines as readable text or as one JSON object per line.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Install this backup (from `smartlic admin backup`) as the database of --data, then exit
    /// without serving. The server must be stopped, and --data must hold the backed-up
    /// server's ca.pem and ca-key.pem.
    #[arg(long, value_name = "FILE")]
    restore: Option<PathBuf>,
    /// With --restore: replace the database --data already holds (its data is lost).
    #[arg(long, requires = "restore")]
    overwrite: bool,
}

/// The mode with its own options: a gateway needs its upstream, the managers take none.
fn mode(mode: ModeArg, upstream: Option<String>, upstream_ca: Option<PathBuf>) -> anyhow::Result<Mode> {
    match (mode, upstream, upstream_ca) {
        (ModeArg::Gateway, Some(upstream), Some(upstream_ca)) => Ok(Mode::Gateway { upstream, upstream_ca }),
        (ModeArg::Gateway, upstream, _) => {
            let missing = if upstream.is_none() { "--upstream URL" } else { "--upstream-ca FILE" };
            anyhow::bail!("--mode gateway needs {missing}: the manager it relays to and the CA that authenticates it")
        }
        (ModeArg::Fleet, None, None) => Ok(Mode::Fleet),
        (_, None, None) => Ok(if mode == ModeArg::Satellite { Mode::Satellite } else { Mode::Cloud }),
        (_, Some(_), _) => anyhow::bail!("--upstream is for --mode gateway only"),
        (_, None, Some(_)) => anyhow::bail!("--upstream-ca is for --mode gateway only"),
    }
}

/// `--database`, parsed here rather than by clap, whose refusal would echo the value with its
/// password: the URL's own message says what is wrong and hides the password.
fn database_url(text: Option<&str>) -> anyhow::Result<Option<DatabaseUrl>> {
    text.map(|t| t.parse::<DatabaseUrl>().map_err(|e| anyhow::anyhow!("--database: {e}"))).transpose()
}

/// `SMARTLIC_DATA_KEY`, when set (an empty value is refused as too short, not taken as unset).
fn data_key() -> anyhow::Result<Option<DataKey>> {
    match std::env::var(DATA_KEY_VARIABLE) {
        Ok(secret) => Ok(Some(DataKey::from_secret(&secret)?)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => anyhow::bail!("{DATA_KEY_VARIABLE} is not valid UTF-8"),
    }
}

/// A timeout in whole seconds, one second to one hour.
fn seconds() -> clap::builder::RangedU64ValueParser {
    clap::value_parser!(u64).range(1..=3600)
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing::subscriber::set_global_default(logger(std::io::stderr, ansi, args.log_format))?;
    if let Some(file) = &args.restore {
        let restored = smartlic_server::backup::restore(file, &args.data, args.overwrite)?;
        say(&format!(
            "restored {} into {} ({} bytes, schema version {}); start the server with --data {}{}\n",
            file.display(),
            restored.database.display(),
            restored.bytes,
            restored.schema_version,
            args.data.display(),
            if restored.sealed_ca { " and SMARTLIC_DATA_KEY set (the backup holds the CA sealed with it)" } else { "" }
        ));
        return Ok(());
    }
    let config = ServerConfig {
        mode: mode(args.mode, args.upstream, args.upstream_ca)?,
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
            body_timeout: Duration::from_secs(args.body_timeout),
            body_min_rate: args.body_min_rate,
            trusted_proxies: args.trusted_proxies,
            login_failures_per_client: args.login_failures_per_client,
            login_failures_per_address: args.login_failures_per_address,
            shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
        },
        database: DatabaseConfig { url: database_url(args.database.as_deref())?, data_key: data_key()? },
    };
    if let Mode::Gateway { upstream, .. } = &config.mode {
        if config.database.url.is_some() {
            anyhow::bail!("--database is for the managers (--mode cloud or satellite): a gateway keeps no database");
        }
        let mut banner = format!("smartlic transport gateway relaying device messages to {upstream}\n");
        let gateway = smartlic_server::gateway::start(config).await?;
        banner.push_str(&format!("listening on https://{}\n", gateway.local_addr));
        if gateway.ca_pem.is_some() {
            let ca = args.data.join(smartlic_server::tls::CA_FILE);
            banner.push_str(&format!(
                "devices trust the CA in {} for TLS (and the manager's for its answers)\n",
                ca.display()
            ));
        }
        return serve(&banner, gateway.wait()).await;
    }
    if let Mode::Fleet = config.mode {
        return fleet(config, &args.data).await;
    }
    let running = start(config).await?;
    let mut banner = String::new();
    if let Some(secret) = &running.generated_admin_secret {
        banner.push_str("Generated the administrator secret (shown once, only its hash is stored):\n");
        banner.push_str(&format!("  SMARTLIC_ADMIN_SECRET={secret}\n"));
    }
    banner.push_str(&format!("smartlic server listening on https://{}\n", running.local_addr));
    let ca = args.data.join(smartlic_server::tls::CA_FILE);
    banner.push_str(&format!("devices and admin clients trust the CA in {}\n", ca.display()));
    let stop = stop_signal()?;
    say(&banner);
    stop.await?;
    say("shutting down: finishing requests in progress\n");
    running.shutdown().await;
    tracing::info!("stopped: database closed");
    Ok(())
}

/// `--mode fleet`: the orchestrator on its own database in --data; its clients present the
/// administrator token it keeps there.
async fn fleet(config: ServerConfig, data: &std::path::Path) -> anyhow::Result<()> {
    if config.database.url.is_some() {
        anyhow::bail!("--database is for the managers: the fleet orchestrator keeps its SQLite file in --data");
    }
    let clock: std::sync::Arc<dyn smartlic_core::Clock> = match config.simulated_clock {
        true => std::sync::Arc::new(smartlic_core::SimulatedClock::new()),
        false => std::sync::Arc::new(smartlic_core::SystemClock),
    };
    let running = smartlic_fleet::server::start(config, clock).await?;
    let token = data.join(smartlic_fleet::server::ADMIN_TOKEN_FILE);
    let mut banner = format!("smartlic fleet orchestrator listening on https://{}\n", running.local_addr);
    if running.ca_pem.is_some() {
        banner.push_str(&format!(
            "admin clients trust the CA in {}\n",
            data.join(smartlic_server::tls::CA_FILE).display()
        ));
    }
    banner.push_str(&format!("admin clients present the token in {}\n", token.display()));
    serve(&banner, running.wait()).await
}

/// Ctrl-C (SIGINT) or SIGTERM (systemd, docker stop, kill); SIGTERM is caught from now on,
/// before the banner tells anyone the server is up.
fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = std::io::Result<()>>> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            interrupted = tokio::signal::ctrl_c() => interrupted,
            _ = term.recv() => Ok(()),
        }
    })
}

/// Shows `banner` and serves until interrupted.
async fn serve(banner: &str, serving: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let stop = stop_signal()?;
    say(banner);
    tokio::select! {
        stopped = stop => {
            stopped?;
            say("shutting down\n");
        }
        _ = serving => {}
    }
    Ok(())
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per line, fields at the top level (for log collectors).
    Json,
}

/// The server's log (level from `SMARTLIC_LOG`, default info). Every field and message is
/// escaped: a value taken from a request (a client ID, a hostname) cannot start a line of its
/// own or carry terminal control sequences (JSON escapes them by itself).
fn logger<W>(writer: W, ansi: bool, format: LogFormat) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use std::fmt::Write as _;
    use tracing_subscriber::field::MakeExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("SMARTLIC_LOG").unwrap_or_else(|_| "info".into());
    if format == LogFormat::Json {
        let json = tracing_subscriber::fmt().json().flatten_event(true).with_current_span(false).with_span_list(false);
        return Box::new(json.with_env_filter(filter).with_writer(writer).finish());
    }
    let fields = tracing_subscriber::fmt::format::debug_fn(|out, field, value| {
        if field.name() != "message" {
            write!(out, "{}=", field.name())?;
        }
        write!(Escaped(out), "{value:?}")
    })
    .delimited(" ");
    Box::new(
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .with_ansi(ansi)
            .fmt_fields(fields)
            .finish(),
    )
}

/// Passes text on with its control characters escaped (`\n` as `\\n`, ESC as `\\u{1b}`), as
/// it is written: no copy of each value per log line (every request writes one, the access log).
struct Escaped<'a, W: std::fmt::Write>(&'a mut W);

impl<W: std::fmt::Write> std::fmt::Write for Escaped<'_, W> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let mut plain = text;
        while let Some((at, c)) = plain.char_indices().find(|(_, c)| c.is_control()) {
            self.0.write_str(&plain[..at])?;
            write!(self.0, "{}", c.escape_default())?;
            plain = &plain[at + c.len_utf8()..];
        }
        self.0.write_str(plain)
    }
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
    fn upstream_options_belong_to_the_gateway() {
        let url = || Some("https://cloud:8443".to_string());
        let ca = || Some(PathBuf::from("cloud-ca.pem"));
        assert!(matches!(mode(ModeArg::Cloud, None, None), Ok(Mode::Cloud)));
        assert!(matches!(mode(ModeArg::Satellite, None, None), Ok(Mode::Satellite)));
        assert!(matches!(mode(ModeArg::Fleet, None, None), Ok(Mode::Fleet)));
        assert!(mode(ModeArg::Fleet, url(), None)
            .unwrap_err()
            .to_string()
            .starts_with("--upstream is for --mode gateway only"));
        let gateway = mode(ModeArg::Gateway, url(), ca()).unwrap();
        assert!(matches!(gateway, Mode::Gateway { upstream, .. } if upstream == "https://cloud:8443"));
        let refused = [
            (ModeArg::Gateway, None, ca(), "--mode gateway needs --upstream URL"),
            (ModeArg::Gateway, url(), None, "--mode gateway needs --upstream-ca FILE"),
            (ModeArg::Gateway, None, None, "--mode gateway needs --upstream URL"),
            (ModeArg::Cloud, url(), None, "--upstream is for --mode gateway only"),
            (ModeArg::Satellite, url(), ca(), "--upstream is for --mode gateway only"),
            (ModeArg::Cloud, None, ca(), "--upstream-ca is for --mode gateway only"),
        ];
        for (arg, upstream, upstream_ca, message) in refused {
            let error = mode(arg, upstream, upstream_ca).unwrap_err().to_string();
            assert!(error.starts_with(message), "{error}");
        }
    }

    #[test]
    fn request_values_cannot_forge_log_lines() {
        let log = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = log.clone();
        let writer = move || Sink(sink.clone());
        tracing::subscriber::with_default(logger(writer, false, LogFormat::Text), || {
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
