//! `smartlic bench`: the load generator behind BENCHMARKS.md.
//!
//! It starts its own manager (this binary's `server`, fresh data directory, loopback only),
//! sets up an account with licenses and a token through the REST API, then measures:
//! registrations, authorizations of random registered devices at one or more pool sizes, and
//! the same load against `GET /health` as the ceiling of the HTTPS stack alone. With `--flood`,
//! the last authorization phase is run again during a flood of wrong logins. The server's
//! memory is read after each phase. All device tasks share one HTTPS client (keep-alive).
//! With `--satellite`, a satellite approved by a cloud is measured instead (see [`satellite`]).
//!
//! The managers run over one database ([`database`]): a SQLite file, or with `--postgres` a
//! private PostgreSQL cluster started here; `--replicas N` starts N managers over it, each
//! request going to one of them at random. Each phase also reports the CPU time the managers
//! (and PostgreSQL's processes) spent per request ([`cpu`]), steadier than the rate on a
//! shared machine. `--register-at-most` reaches large pools by storing instances straight into
//! the database instead of registering them.

mod cpu;
mod database;
mod satellite;
mod signatures;

use database::Database;

use anyhow::{bail, Context};
use rand::Rng;
use smartlic_agent::client::{new_nonce, ManagerClient};
use smartlic_agent::identity::DeviceIdentity;
use smartlic_core::{Clock, SystemClock};
use smartlic_proto::wire::{Udi, Usage};
use smartlic_proto::{KeyAlgorithm, SigningKey};
use smartlic_server::data_key::DATA_KEY_VARIABLE;
use std::future::Future;
use std::io::IsTerminal;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Devices to register and authorize (unless --instances is given).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    devices: u32,
    /// Pool sizes at which to measure authorizations, e.g. 10000,100000: devices are
    /// registered up to each size in turn, so the cost of a larger pool shows.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    instances: Vec<u32>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    concurrency: u32,
    /// Duration of each timed phase (authorization, health).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    seconds: u64,
    /// Wrong logins in flight at once while the last authorization phase runs again, each
    /// from one of as many loopback addresses (127.1.x.y): a distributed login flood. 0: none.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=4096))]
    flood: u32,
    /// Wrong logins per second of the flood, all addresses together; 0: as fast as they go.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    flood_rate: u32,
    /// Measure a satellite (`server --mode satellite`) approved by a cloud, both started here:
    /// registrations and authorizations at the satellite, then full and standard
    /// synchronisations (over the network and by files) at each pool size.
    #[arg(long, conflicts_with_all = ["flood", "flood_rate"])]
    satellite: bool,
    /// Run the managers over a fresh database of a private PostgreSQL cluster started here
    /// (initdb and pg_ctl on a temporary directory, loopback only) instead of a SQLite file.
    #[arg(long, conflicts_with = "satellite")]
    postgres: bool,
    /// Managers (replicas) serving over the one database, each its own process, port and
    /// `--data`; each request goes to one of them at random.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16), conflicts_with = "satellite")]
    replicas: u32,
    /// Register at most this many devices over HTTPS; larger pool sizes are reached by storing
    /// the other instances straight into the database, as registrations store them, in one
    /// transaction. Authorizations still come from the registered devices.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000), conflicts_with = "satellite")]
    register_at_most: Option<u32>,
    /// Run each manager under this command (words separated by spaces), e.g. `valgrind
    /// --tool=callgrind` to count its instructions.
    #[arg(long, value_name = "COMMAND", conflicts_with = "satellite")]
    server_wrapper: Option<String>,
    /// Only time N pairs of the two signature operations of an authorization (request
    /// verification, answer signature), without a server; see BENCHMARKS.md.
    #[arg(long, value_name = "N", conflicts_with_all = ["satellite", "postgres", "flood"])]
    signatures: Option<u32>,
    /// After the report, leave the managers and their database running until Ctrl-C, so that
    /// listings and reports can be measured over the pool (`admin instance list`; the admin
    /// secret is `SMARTLIC_ADMIN_SECRET` when set, a random one otherwise).
    #[arg(long, conflicts_with_all = ["satellite", "signatures"])]
    hold: bool,
}

const DOMAIN: &str = "bench.example.com";
const POOL_TAG: &str = "ACI Advantage";
const USED_TAG: &str = "ACI Essentials";
const BENCH_PID: &str = "BENCH-1";
/// 1,200 polls 100 ms apart: the server gets 2 minutes to come up (under valgrind, 30 s
/// were not always enough).
const STARTUP_POLLS: u32 = 1200;

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let mut sizes: Vec<usize> = if args.instances.is_empty() { vec![args.devices] } else { args.instances.clone() }
        .into_iter()
        .map(|n| n as usize)
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; build with --release for representative numbers");
    }
    let plan = Plan {
        sizes,
        concurrency: args.concurrency as usize,
        seconds: args.seconds,
        flood: args.flood as usize,
        flood_rate: args.flood_rate,
        register_at_most: args.register_at_most.map_or(usize::MAX, |n| n as usize),
    };
    if args.satellite {
        return satellite::run(plan).await;
    }
    if let Some(n) = args.signatures {
        return signatures::run(n);
    }
    let database = Database::create(args.postgres)?;
    let secret = std::env::var("SMARTLIC_ADMIN_SECRET").unwrap_or_else(|_| new_nonce());
    let wrapper: Vec<&str> = args.server_wrapper.as_deref().map_or_else(Vec::new, |w| w.split_whitespace().collect());
    let servers = (0..args.replicas)
        .map(|_| Server::spawn_over(&database, &secret, &wrapper))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut deployment = Deployment { servers, database };
    // On Ctrl-C too the servers are dropped, hence killed, before the process ends.
    tokio::select! {
        result = measure(&mut deployment, &plan) => result?,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
    }
    if args.hold {
        for server in &deployment.servers {
            eprintln!("bench: holding {} (CA {}/data/ca.pem) until Ctrl-C", server.base, server.dir.path().display());
        }
        tokio::signal::ctrl_c().await?;
    }
    Ok(())
}

/// The managers under test and the database they share. The servers are dropped (killed)
/// first, then the database.
struct Deployment {
    servers: Vec<Server>,
    database: Database,
}

impl Deployment {
    /// The managers' resident memory and peak, summed.
    fn rss(&self) -> Option<(u64, u64)> {
        self.servers.iter().map(Server::rss).try_fold((0, 0), |(a, b), r| r.map(|(now, peak)| (a + now, b + peak)))
    }

    /// CPU time of the managers and of the database's processes so far, in clock ticks.
    fn cpu_ticks(&self) -> anyhow::Result<u64> {
        let servers: u64 = self.servers.iter().map(|s| cpu::ticks(s.child.id()).unwrap_or(0)).sum();
        Ok(servers + self.database.cpu_ticks()?)
    }

    /// `e` with the end of every manager's log.
    fn failed(&self, e: anyhow::Error) -> anyhow::Error {
        self.servers.iter().fold(e, |e, s| s.failed(e))
    }
}

struct Plan {
    /// Pool sizes in increasing order.
    sizes: Vec<usize>,
    concurrency: usize,
    seconds: u64,
    flood: usize,
    flood_rate: u32,
    /// Devices registered over HTTPS at most; instances beyond are stored straight.
    register_at_most: usize,
}

async fn measure(deployment: &mut Deployment, plan: &Plan) -> anyhow::Result<()> {
    let mut clients = Vec::new();
    for server in &mut deployment.servers {
        clients.push(server.wait_until_up().await.map_err(|e| server.failed(e))?);
    }
    let endpoints = Endpoints(clients.into());
    let total = plan.sizes.last().copied().unwrap_or_default();
    let first = &deployment.servers[0];
    let token = first.setup(endpoints.any(), total).await.map_err(|e| deployment.failed(e))?;
    for server in &deployment.servers {
        eprintln!(
            "bench: manager up at {} (pid {}), data in {}, over {}",
            server.base,
            server.child.id(),
            server.dir.path().display(),
            deployment.database.url()
        );
    }
    let length = Duration::from_secs(plan.seconds);
    let mut rows = Vec::new();
    let mut loads = Vec::new();
    let mut pool: Arc<Vec<DeviceIdentity>> = Arc::new(Vec::with_capacity(total.min(plan.register_at_most)));
    let mut loaded = 0;
    for &size in &plan.sizes {
        let from = pool.len();
        let to = size.min(plan.register_at_most).max(from);
        if to > from {
            eprintln!("bench: registering devices {}..{to}", from + 1);
            let before = deployment.cpu_ticks()?;
            let registered = register(&endpoints, &token, from..to, plan.concurrency).await?;
            let row = Row::new("register", format!("{} → {to}", from + 1), &registered, deployment.rss());
            rows.push(row.with_cpu(deployment.cpu_ticks()? - before));
            let new = Arc::new(registered.values);
            // Each new device's first report moves the pool's counter (0 → 1): a phase of
            // its own, so the timed phase measures renewals, as a settled fleet sends them.
            eprintln!("bench: first authorization of devices {}..{to}", from + 1);
            let before = deployment.cpu_ticks()?;
            let first = authorize_each(&endpoints, &new, plan.concurrency).await?;
            let row = Row::new("authorize (first)", format!("{} → {to}", from + 1), &first, deployment.rss());
            rows.push(row.with_cpu(deployment.cpu_ticks()? - before));
            let new = Arc::try_unwrap(new).ok().context("the new devices are still shared")?;
            Arc::get_mut(&mut pool).context("the device pool is still shared")?.extend(new);
        }
        if pool.is_empty() {
            bail!("no device could register");
        }
        if size > pool.len() + loaded {
            let range = loaded..size - pool.len();
            eprintln!("bench: storing {} instances straight into the database", range.len());
            let began = Instant::now();
            deployment.database.bulk_load(DOMAIN, USED_TAG, range.clone(), now_ms())?;
            loads.push(format!(
                "{} instances stored straight into {} in {:.1} s (pool of {size})",
                range.len(),
                deployment.database.name(),
                began.elapsed().as_secs_f64()
            ));
            loaded = range.end;
        }
        eprintln!("bench: authorizing for {} s with {size} instances", plan.seconds);
        let before = deployment.cpu_ticks()?;
        let authorized = authorize(&endpoints, &pool, plan.concurrency, length).await?;
        let row = Row::new("authorize", size.to_string(), &authorized, deployment.rss());
        rows.push(row.with_cpu(deployment.cpu_ticks()? - before));
    }
    let pool_size = pool.len() + loaded;
    let server = &deployment.servers[0];
    if plan.flood > 0 {
        eprintln!(
            "bench: authorizing for {} s during a flood of wrong logins from {} addresses",
            plan.seconds, plan.flood
        );
        let flooders = server.clients_from_addresses(plan.flood)?;
        let flooding = flood(flooders, &server.base, plan.flood_rate, length);
        let (authorized, flooded) = tokio::join!(authorize(&endpoints, &pool, plan.concurrency, length), flooding);
        rows.push(Row::new("authorize (login flood)", pool_size.to_string(), &authorized?, deployment.rss()));
        let mut flooded = flooded?;
        let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
        for (status, _) in &flooded.values {
            *statuses.entry(*status).or_default() += 1;
        }
        // Each request's own time, without the wait for its turn at the flood's rate.
        flooded.latencies = flooded.values.iter().map(|(_, took)| *took).collect();
        eprintln!("bench: wrong logins answered, by status: {statuses:?}");
        rows.push(Row::new("wrong logins (flood)", pool_size.to_string(), &flooded, deployment.rss()));
    }
    eprintln!("bench: GET /health for {} s (ceiling)", plan.seconds);
    let before = deployment.cpu_ticks()?;
    let health = health(&endpoints, plan.concurrency, length).await?;
    let row = Row::new("health (ceiling)", pool_size.to_string(), &health, deployment.rss());
    rows.push(row.with_cpu(deployment.cpu_ticks()? - before));
    println!(
        "{} manager(s) over {}; memory columns: the managers' sum; CPU: managers{} per request\n",
        deployment.servers.len(),
        deployment.database.name(),
        if matches!(deployment.database, Database::Postgres { .. }) { " + PostgreSQL" } else { "" }
    );
    print_report(&rows, plan);
    for load in loads {
        println!("\n{load}");
    }
    Ok(())
}

/// The managers' device endpoints; each request goes to one of them at random, so one
/// device's requests alternate between replicas.
#[derive(Clone)]
struct Endpoints(Arc<[ManagerClient]>);

impl Endpoints {
    fn one(client: &ManagerClient) -> Self {
        Endpoints(Arc::new([client.clone()]))
    }

    fn any(&self) -> &ManagerClient {
        &self.0[rand::thread_rng().gen_range(0..self.0.len())]
    }
}

/// The manager under test; dropping it kills the process (also when the bench fails).
struct Server {
    child: Child,
    /// Holds the data directory and the server log; removed after the process is gone.
    dir: tempfile::TempDir,
    base: String,
    secret: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// This binary's `server` with `extra` options (`--mode satellite`).
    fn spawn(extra: &[&str]) -> anyhow::Result<Self> {
        Self::spawn_with(&[], extra, &[], new_nonce())
    }

    /// This binary's `server` over `database`, a replica of any other over it with the same
    /// admin `secret` (the operator's principal is in the database).
    /// `wrapper`: a command the server runs under (none when empty).
    fn spawn_over(database: &Database, secret: &str, wrapper: &[&str]) -> anyhow::Result<Self> {
        let env = [(DATA_KEY_VARIABLE, database::DATA_KEY)];
        Self::spawn_with(wrapper, &["--database", &database.url()], &env, secret.to_string())
    }

    fn spawn_with(wrapper: &[&str], extra: &[&str], env: &[(&str, &str)], secret: String) -> anyhow::Result<Self> {
        let dir =
            tempfile::Builder::new().prefix("smartlic-bench-").tempdir().context("cannot create a data directory")?;
        std::fs::create_dir(dir.path().join("data"))?;
        // Free now; taken again by the server a moment later. Loopback only.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let this = std::env::current_exe().context("cannot find this executable")?;
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(this);
                c
            }
            None => Command::new(this),
        };
        let child = command
            .arg("server")
            .arg("--data")
            .arg(dir.path().join("data"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--clock", "system"])
            .args(extra)
            .envs(env.iter().copied())
            .env("SMARTLIC_ADMIN_SECRET", &secret)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start the server")?;
        Ok(Server { child, dir, base: format!("https://127.0.0.1:{port}"), secret })
    }

    /// Polls until the server has written its CA certificate and answers `/health` over TLS.
    async fn wait_until_up(&mut self) -> anyhow::Result<ManagerClient> {
        let ca_path = self.dir.path().join("data").join("ca.pem");
        let mut client = None;
        for _ in 0..STARTUP_POLLS {
            if let Some(status) = self.child.try_wait()? {
                bail!("the server exited at start ({status})");
            }
            if client.is_none() {
                // A half-written file fails to parse and is simply read again next time.
                client =
                    std::fs::read_to_string(&ca_path).ok().and_then(|pem| ManagerClient::new(&self.base, &pem).ok());
            }
            if let Some(c) = &client {
                if c.http().get(c.url("/health")).send().await.is_ok_and(|r| r.status().is_success()) {
                    return Ok(c.clone());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the server did not answer {}/health within {} s", self.base, STARTUP_POLLS / 10)
    }

    /// An account with `licenses` of the pool tag and a token good for as many devices.
    async fn setup(&self, client: &ManagerClient, licenses: usize) -> anyhow::Result<String> {
        let api = self.api(client.http().clone()).await?;
        let va = format!("/api/v1/accounts/{DOMAIN}/virtual-accounts/Default");
        api.post("/api/v1/accounts", serde_json::json!({"domain": DOMAIN, "name": "Bench"})).await?;
        api.post(&format!("{va}/licenses"), serde_json::json!({"tag": POOL_TAG, "count": licenses})).await?;
        api.token(&va, licenses).await
    }

    /// The REST API as this server's operator (logged in with its admin secret), over `http`.
    async fn api(&self, http: reqwest::Client) -> anyhow::Result<Api> {
        let answer = http
            .post(format!("{}/oauth/token", self.base))
            .form(&[("grant_type", "client_credentials"), ("client_id", "admin"), ("client_secret", &self.secret)])
            .send()
            .await;
        let bearer = text_field(&json_of(answer, "POST /oauth/token").await?, "access_token")?;
        Ok(Api { http, base: self.base.clone(), bearer })
    }

    /// `e` with the end of the server's log, which usually says why.
    fn failed(&self, e: anyhow::Error) -> anyhow::Error {
        let path = self.dir.path().join("server.log");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        anyhow::anyhow!("{e:#}\nserver log ({}):\n{tail}", path.display())
    }

    /// Resident memory of the server now (VmRSS) and its peak so far (VmHWM), in KiB, where
    /// /proc tells them.
    fn rss(&self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let field = |name: &str| -> Option<u64> {
            let line = status.lines().find(|l| l.starts_with(name))?;
            line.split_whitespace().nth(1)?.parse().ok()
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// `n` HTTPS clients, each connecting from its own loopback address (127.1.x.y), so that
    /// the server sees `n` sources.
    fn clients_from_addresses(&self, n: usize) -> anyhow::Result<Arc<Vec<reqwest::Client>>> {
        let ca = self.ca_pem()?;
        let clients = (1..=n)
            .map(|i| {
                let source = std::net::Ipv4Addr::new(127, 1, (i / 256) as u8, (i % 256) as u8);
                let builder = client_trusting(&ca)?.local_address(std::net::IpAddr::V4(source));
                Ok(builder.timeout(Duration::from_secs(60)).build()?)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Arc::new(clients))
    }

    /// The server's CA certificate (PEM), which its TLS listener presents a certificate of.
    fn ca_pem(&self) -> anyhow::Result<String> {
        let path = self.dir.path().join("data").join("ca.pem");
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
    }
}

/// An HTTPS client builder (rustls, ring) trusting the CA certificates of `ca` only.
fn client_trusting(ca: &str) -> anyhow::Result<reqwest::ClientBuilder> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(smartlic_agent::tls::root_store(ca)?)
        .with_no_client_auth();
    Ok(reqwest::Client::builder().use_preconfigured_tls(tls))
}

/// A manager's REST API, logged in as its operator.
struct Api {
    http: reqwest::Client,
    base: String,
    bearer: String,
}

impl Api {
    async fn post(&self, path: &str, body: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let answer = self.http.post(format!("{}{path}", self.base)).bearer_auth(&self.bearer).json(&body).send().await;
        json_of(answer, &format!("POST {path}")).await
    }

    async fn get(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let answer = self.http.get(format!("{}{path}", self.base)).bearer_auth(&self.bearer).send().await;
        json_of(answer, &format!("GET {path}")).await
    }

    /// A registration token of the pool at `va` (its API path), good for `uses` devices.
    async fn token(&self, va: &str, uses: usize) -> anyhow::Result<String> {
        let body = serde_json::json!({"description": "bench", "max_uses": uses});
        text_field(&self.post(&format!("{va}/tokens"), body).await?, "token")
    }
}

async fn json_of(answer: reqwest::Result<reqwest::Response>, what: &str) -> anyhow::Result<serde_json::Value> {
    let answer = answer.with_context(|| format!("{what} failed"))?;
    let status = answer.status();
    let text = answer.text().await.with_context(|| format!("{what}: cannot read the answer"))?;
    if !status.is_success() {
        bail!("{what} answered {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("{what} answered something other than JSON: {text}"))
}

fn text_field(value: &serde_json::Value, name: &str) -> anyhow::Result<String> {
    value[name].as_str().map(str::to_string).with_context(|| format!("no \"{name}\" in {value}"))
}

fn now_ms() -> i64 {
    SystemClock.now().millis()
}

/// Registers devices numbered `range`, their Ed25519 keys made before the clock starts.
async fn register(
    endpoints: &Endpoints,
    token: &str,
    range: std::ops::Range<usize>,
    concurrency: usize,
) -> anyhow::Result<Outcome<DeviceIdentity>> {
    let keys = range
        .clone()
        .map(|_| SigningKey::generate(KeyAlgorithm::Ed25519))
        .collect::<Result<Vec<_>, _>>()
        .context("cannot generate device keys")?;
    let queue = Mutex::new(range.zip(keys));
    let (endpoints, token) = (endpoints.clone(), Arc::<str>::from(token));
    drive(concurrency, None, move || {
        let (n, key) = queue.lock().ok()?.next()?;
        let (client, token) = (endpoints.any().clone(), token.clone());
        Some(async move {
            let udi = Udi { pid: BENCH_PID.into(), sn: format!("BENCH{n:08}") };
            let hostname = format!("bench-{n}");
            let answer = client
                .register_with_key(&key, &udi, Some(&hostname), &token, false, now_ms())
                .await
                .map_err(|e| e.to_string())?;
            Ok(DeviceIdentity::from_registration(udi, Some(hostname), key, answer))
        })
    })
    .await
}

/// Each of `devices` once, reporting one license in use.
async fn authorize_each(
    endpoints: &Endpoints,
    devices: &Arc<Vec<DeviceIdentity>>,
    concurrency: usize,
) -> anyhow::Result<Outcome<()>> {
    let (endpoints, devices) = (endpoints.clone(), devices.clone());
    let next = AtomicUsize::new(0);
    drive(concurrency, None, move || {
        let device = next.fetch_add(1, Ordering::Relaxed);
        (device < devices.len()).then(|| {
            let (client, devices) = (endpoints.any().clone(), devices.clone());
            async move {
                let usage = [Usage { tag: USED_TAG.into(), count: 1 }];
                client.authorize(&devices[device], &usage, now_ms()).await.map(drop).map_err(|e| e.to_string())
            }
        })
    })
    .await
}

/// Random registered devices each reporting one license in use.
async fn authorize(
    endpoints: &Endpoints,
    pool: &Arc<Vec<DeviceIdentity>>,
    concurrency: usize,
    length: Duration,
) -> anyhow::Result<Outcome<()>> {
    let (endpoints, pool) = (endpoints.clone(), pool.clone());
    let usage: Arc<[Usage]> = Arc::new([Usage { tag: USED_TAG.into(), count: 1 }]);
    drive(concurrency, Some(Instant::now() + length), move || {
        let device = rand::thread_rng().gen_range(0..pool.len());
        let (client, pool, usage) = (endpoints.any().clone(), pool.clone(), usage.clone());
        Some(
            async move { client.authorize(&pool[device], &usage, now_ms()).await.map(drop).map_err(|e| e.to_string()) },
        )
    })
    .await
}

async fn health(endpoints: &Endpoints, concurrency: usize, length: Duration) -> anyhow::Result<Outcome<()>> {
    let endpoints = endpoints.clone();
    drive(concurrency, Some(Instant::now() + length), move || {
        let client = endpoints.any().clone();
        Some(async move {
            let answer = client.http().get(client.url("/health")).send().await.map_err(|e| e.to_string())?;
            match answer.status().is_success() {
                true => Ok(()),
                false => Err(format!("GET /health answered {}", answer.status())),
            }
        })
    })
    .await
}

/// Wrong client-credentials logins (a new random client ID each) from random clients of
/// `clients`, as many in flight as clients, `per_sec` a second at most (0: no limit), until
/// `length` has passed; the values are the statuses and each request's own time.
async fn flood(
    clients: Arc<Vec<reqwest::Client>>,
    base: &str,
    per_sec: u32,
    length: Duration,
) -> anyhow::Result<Outcome<(u16, Duration)>> {
    let url: Arc<str> = format!("{base}/oauth/token").into();
    let concurrency = clients.len();
    let pace = (per_sec > 0).then(|| {
        let mut ticks = tokio::time::interval(Duration::from_secs(1) / per_sec);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Arc::new(tokio::sync::Mutex::new(ticks))
    });
    drive(concurrency, Some(Instant::now() + length), move || {
        let (clients, url, pace) = (clients.clone(), url.clone(), pace.clone());
        Some(async move {
            if let Some(pace) = pace {
                pace.lock().await.tick().await;
            }
            let began = Instant::now();
            let http = &clients[rand::thread_rng().gen_range(0..clients.len())];
            let client_id = format!("flood-{}", rand::thread_rng().gen::<u64>());
            let form = [("grant_type", "client_credentials"), ("client_id", &client_id), ("client_secret", "wrong")];
            let answer = http.post(&*url).form(&form).send().await.map_err(|e| e.to_string())?;
            Ok((answer.status().as_u16(), began.elapsed()))
        })
    })
    .await
}

/// What a phase produced: the successful results and their latencies, the failures.
struct Outcome<T> {
    values: Vec<T>,
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
    elapsed: Duration,
}

impl<T> Outcome<T> {
    fn new() -> Self {
        Outcome { values: Vec::new(), latencies: Vec::new(), errors: 0, first_error: None, elapsed: Duration::ZERO }
    }
}

/// Runs `concurrency` workers, each awaiting requests from `next` one after the other until
/// `next` has no more or the deadline has passed.
async fn drive<T, F, Fut>(concurrency: usize, deadline: Option<Instant>, next: F) -> anyhow::Result<Outcome<T>>
where
    T: Send + 'static,
    F: Fn() -> Option<Fut> + Send + Sync + 'static,
    Fut: Future<Output = Result<T, String>> + Send + 'static,
{
    let next = Arc::new(next);
    let start = Instant::now();
    let done = Arc::new(AtomicUsize::new(0));
    let ticker = progress(done.clone(), start);
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (next, done) = (next.clone(), done.clone());
            tokio::spawn(async move {
                let mut out = Outcome::new();
                while deadline.is_none_or(|d| Instant::now() < d) {
                    let Some(request) = next() else { break };
                    let began = Instant::now();
                    match request.await {
                        Ok(value) => {
                            out.latencies.push(began.elapsed());
                            out.values.push(value);
                        }
                        Err(e) => {
                            out.errors += 1;
                            out.first_error.get_or_insert(e);
                        }
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                out
            })
        })
        .collect();
    let mut all = Outcome::new();
    for worker in workers {
        let out = worker.await.context("a load worker failed")?;
        all.values.extend(out.values);
        all.latencies.extend(out.latencies);
        all.errors += out.errors;
        all.first_error = all.first_error.or(out.first_error);
    }
    all.elapsed = start.elapsed();
    if let Some(ticker) = ticker {
        ticker.abort();
        eprint!("\r\x1b[K");
    }
    Ok(all)
}

/// Requests done so far, redrawn on one line twice a second while a phase runs, so a long run
/// shows it is alive. Only on a terminal: a log or a pipe gets the phase lines alone.
fn progress(done: Arc<AtomicUsize>, start: Instant) -> Option<tokio::task::JoinHandle<()>> {
    std::io::stderr().is_terminal().then(|| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tick.tick().await;
                let secs = start.elapsed().as_secs();
                eprint!("\r\x1b[Kbench: {} requests in {secs} s", done.load(Ordering::Relaxed));
            }
        })
    })
}

/// One line of the report.
struct Row {
    phase: &'static str,
    instances: String,
    ok: usize,
    errors: usize,
    per_sec: f64,
    p50: Duration,
    p99: Duration,
    /// Server resident memory at the end of the phase and its peak so far (KiB).
    rss_kib: Option<(u64, u64)>,
    /// CPU time the servers (and the database's processes) spent per request, in µs.
    cpu_us: Option<f64>,
}

impl Row {
    fn new<T>(phase: &'static str, instances: String, outcome: &Outcome<T>, rss_kib: Option<(u64, u64)>) -> Self {
        if let Some(e) = &outcome.first_error {
            eprintln!("bench: {phase}: {} failed, first: {e}", outcome.errors);
        }
        let mut sorted = outcome.latencies.clone();
        sorted.sort_unstable();
        Row {
            phase,
            instances,
            ok: sorted.len(),
            errors: outcome.errors,
            per_sec: sorted.len() as f64 / outcome.elapsed.as_secs_f64().max(1e-9),
            p50: percentile(&sorted, 0.50),
            p99: percentile(&sorted, 0.99),
            rss_kib,
            cpu_us: None,
        }
    }

    /// With the servers' CPU time over the phase, `ticks` (see [`cpu`]), per request.
    fn with_cpu(self, ticks: u64) -> Self {
        let requests = (self.ok + self.errors).max(1) as f64;
        Row { cpu_us: Some(ticks as f64 / cpu::TICKS_PER_SEC * 1e6 / requests), ..self }
    }
}

/// Nearest-rank percentile of sorted latencies (zero when there are none).
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied().unwrap_or_default()
}

fn print_report(rows: &[Row], plan: &Plan) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!(
        "smartlic bench, {}: {cores} cores shared by server and load generator, {build} build, \
         HTTPS on loopback, concurrency {}, {} s per timed phase\n",
        SystemClock.now().to_datetime().format("%Y-%m-%d"),
        plan.concurrency,
        plan.seconds
    );
    // The CPU column only when measured (not by the satellite bench).
    let with_cpu = rows.iter().any(|r| r.cpu_us.is_some());
    let (cpu_head, cpu_rule) = if with_cpu { (" Server CPU (µs/req) |", "---:|") } else { ("", "") };
    println!(
        "| Phase | Instances | Requests OK | Errors | Req/s | p50 (ms) | p99 (ms) | Server RSS (MiB) | Server peak RSS (MiB) |{cpu_head}"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|{cpu_rule}");
    let mib = |k: u64| format!("{:.1}", k as f64 / 1024.0);
    for r in rows {
        let (rss, peak) = r.rss_kib.map_or_else(|| ("n/a".into(), "n/a".into()), |(now, peak)| (mib(now), mib(peak)));
        let cpu = match (with_cpu, r.cpu_us) {
            (false, _) => String::new(),
            (true, Some(us)) => format!(" {us:.0} |"),
            (true, None) => " n/a |".into(),
        };
        println!(
            "| {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {rss} | {peak} |{cpu}",
            r.phase,
            r.instances,
            r.ok,
            r.errors,
            r.per_sec,
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&ms, 0.50), Duration::from_millis(50));
        assert_eq!(percentile(&ms, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&ms[..1], 0.99), Duration::from_millis(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[tokio::test]
    async fn drive_stops_when_work_runs_out() {
        let left = Arc::new(Mutex::new(0..10));
        let out = drive(3, None, move || {
            let n = left.lock().ok()?.next()?;
            Some(async move {
                if n % 5 == 0 {
                    Err(format!("no {n}"))
                } else {
                    Ok(n)
                }
            })
        })
        .await
        .unwrap();
        let mut values = out.values;
        values.sort_unstable();
        assert_eq!(values, [1, 2, 3, 4, 6, 7, 8, 9]);
        assert_eq!((out.errors, out.latencies.len()), (2, 8));
    }
}
