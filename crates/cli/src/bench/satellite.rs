//! `smartlic bench --satellite`: the satellite at scale (issue 12, "Scale and speed").
//!
//! Starts a cloud (`server`) and a satellite (`server --mode satellite`), each a child process
//! with its own data directory, and connects them as an operator would: an account and a pool
//! with licenses in the cloud, a local account on the satellite registered by files and
//! approved for that pool, a registration token from the satellite. Then, at each pool size:
//! devices register at the satellite (answers signed with its certificate, verified against
//! the cloud CA as a device does), random devices authorize for the timed phase, and the
//! satellite synchronises with the cloud, fully and then in the standard way after 1 % of the
//! instances changed (re-authorized with another usage count), each over the network (`sync
//! now`) and by files (export, the cloud's File Sync, import). Each sync step records its time,
//! the size of the file it produced and both servers' memory.

use super::{authorize, client_trusting, drive, now_ms, print_report, register, text_field, Api};
use super::{Endpoints, Outcome, Plan, Row, Server, DOMAIN, POOL_TAG, USED_TAG};
use anyhow::{bail, Context};
use serde_json::json;
use smartlic_agent::client::ManagerClient;
use smartlic_agent::identity::DeviceIdentity;
use smartlic_proto::wire::Usage;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The virtual account the satellite serves.
const POOL: &str = "Plant";
const LOCAL_ACCOUNT: &str = "Bench";
/// A synchronisation of a million instances takes minutes, beyond a device client's timeout.
const SYNC_TIMEOUT: Duration = Duration::from_secs(3600);
/// A standard synchronisation follows changes to one instance in this many.
const CHANGED_ONE_IN: usize = 100;
/// Licenses per instance: a changed instance reports one more than the last change (1 in
/// [`CHANGED_ONE_IN`] each time), so the pool stays in compliance for dozens of changes.
const LICENSES_PER_INSTANCE: usize = 2;
/// The most licenses one purchase record may hold.
const MAX_PER_RECORD: usize = 1_000_000;

pub(super) async fn run(plan: Plan) -> anyhow::Result<()> {
    let mut cloud = Server::spawn(&[])?;
    let mut satellite = Server::spawn(&["--mode", "satellite"])?;
    // On Ctrl-C too both servers are dropped, hence killed, before the process ends.
    tokio::select! {
        result = measure(&mut cloud, &mut satellite, &plan) => result,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
    }
}

/// The two managers, connected, and the APIs the bench drives them through.
struct Pair<'a> {
    cloud: &'a Server,
    satellite: &'a Server,
    cloud_api: Api,
    satellite_api: Api,
    /// The device side: TLS to the satellite, answers verified against the cloud CA.
    devices: Arc<ManagerClient>,
    /// The satellite's registration token.
    token: String,
    /// The last usage count a change reported; each change reports one more.
    last_count: i64,
}

async fn measure(cloud: &mut Server, satellite: &mut Server, plan: &Plan) -> anyhow::Result<()> {
    cloud.wait_until_up().await.map_err(|e| cloud.failed(e))?;
    satellite.wait_until_up().await.map_err(|e| satellite.failed(e))?;
    let total = plan.sizes.last().copied().unwrap_or_default();
    let mut pair = Pair::connect(cloud, satellite, total).await.map_err(|e| satellite.failed(cloud.failed(e)))?;
    eprintln!(
        "bench: cloud at {} (pid {}), satellite at {} (pid {}), data in {} and {}",
        cloud.base,
        cloud.child.id(),
        satellite.base,
        satellite.child.id(),
        cloud.dir.path().display(),
        satellite.dir.path().display()
    );
    let length = Duration::from_secs(plan.seconds);
    let (mut rows, mut syncs) = (Vec::new(), Vec::new());
    let mut pool: Arc<Vec<DeviceIdentity>> = Arc::new(Vec::with_capacity(total));
    for &size in &plan.sizes {
        let from = pool.len();
        eprintln!("bench: registering devices {}..{size} at the satellite", from + 1);
        let registered = register(&Endpoints::one(&pair.devices), &pair.token, from..size, plan.concurrency).await?;
        let rss = satellite.rss();
        rows.push(Row::new("register", format!("{} → {size}", from + 1), &registered, rss));
        Arc::get_mut(&mut pool).context("the device pool is still shared")?.extend(registered.values);
        if pool.is_empty() {
            bail!("no device could register: {}", registered.first_error.unwrap_or_default());
        }
        eprintln!("bench: authorizing for {} s with {} instances", plan.seconds, pool.len());
        let authorized = authorize(&Endpoints::one(&pair.devices), &pool, plan.concurrency, length).await?;
        rows.push(Row::new("authorize", pool.len().to_string(), &authorized, satellite.rss()));
        pair.synchronise(&pool, plan.concurrency, &mut rows, &mut syncs).await.map_err(|e| satellite.failed(e))?;
    }
    print_report(&rows, plan);
    print_syncs(&syncs);
    Ok(())
}

impl<'a> Pair<'a> {
    /// The cloud's account and pool with `instances` × [`LICENSES_PER_INSTANCE`] licenses, the
    /// satellite's local account registered by files and approved for the pool, and a token.
    async fn connect(cloud: &'a Server, satellite: &'a Server, instances: usize) -> anyhow::Result<Pair<'a>> {
        let (cloud_ca, satellite_ca) = (cloud.ca_pem()?, satellite.ca_pem()?);
        let cloud_api = cloud.api(client_trusting(&cloud_ca)?.timeout(SYNC_TIMEOUT).build()?).await?;
        let satellite_api = satellite.api(client_trusting(&satellite_ca)?.timeout(SYNC_TIMEOUT).build()?).await?;
        let account = format!("/api/v1/accounts/{DOMAIN}");
        let pool = format!("{account}/virtual-accounts/{POOL}");
        cloud_api.post("/api/v1/accounts", json!({"domain": DOMAIN, "name": "Bench"})).await?;
        cloud_api.post(&format!("{account}/virtual-accounts"), json!({"name": POOL})).await?;
        let mut licenses = instances * LICENSES_PER_INSTANCE;
        while licenses > 0 {
            let count = licenses.min(MAX_PER_RECORD);
            cloud_api.post(&format!("{pool}/licenses"), json!({"tag": POOL_TAG, "count": count})).await?;
            licenses -= count;
        }
        let local = format!("/api/v1/local-accounts/{LOCAL_ACCOUNT}");
        satellite_api.post("/api/v1/local-accounts", json!({"name": LOCAL_ACCOUNT, "smart_account": DOMAIN})).await?;
        let registration = satellite_api.get(&format!("{local}/registration?satellite=bench-satellite")).await?;
        let body = json!({"registration": registration, "virtual_accounts": [POOL]});
        let answer = cloud_api.post("/api/v1/satellites/answer", body).await?;
        satellite_api.post(&format!("{local}/approval"), answer).await?;
        let token = satellite_api.token(&pool, instances).await?;
        let devices = ManagerClient::new(&satellite.base, &format!("{satellite_ca}\n{cloud_ca}"))?
            .answers_signed_by(&cloud_ca)?;
        Ok(Pair { cloud, satellite, cloud_api, satellite_api, devices: Arc::new(devices), token, last_count: 1 })
    }

    /// A full synchronisation, then a standard one after 1 % of the instances changed; each
    /// over the network and by files.
    async fn synchronise(
        &mut self,
        pool: &Arc<Vec<DeviceIdentity>>,
        concurrency: usize,
        rows: &mut Vec<Row>,
        syncs: &mut Vec<SyncRow>,
    ) -> anyhow::Result<()> {
        let n = pool.len();
        eprintln!("bench: full synchronisation of {n} instances, over the network then by files");
        self.over_network(Kind::Full, n, n, syncs).await;
        self.by_files(Kind::Full, n, n, syncs).await;
        for (offset, how) in [(0, "network"), (CHANGED_ONE_IN / 2, "files")] {
            let changed = self.change(pool, offset, concurrency).await?;
            rows.push(Row::new("authorize (1 % change)", n.to_string(), &changed, self.satellite.rss()));
            if changed.errors > 0 {
                bail!("{} of the changes failed", changed.errors);
            }
            let count = changed.values.len();
            eprintln!("bench: standard synchronisation after {count} of {n} instances changed, by {how}");
            match how {
                "network" => self.over_network(Kind::Standard, n, count, syncs).await,
                _ => self.by_files(Kind::Standard, n, count, syncs).await,
            }
        }
        Ok(())
    }

    /// Re-authorizes one instance in [`CHANGED_ONE_IN`] (those at `offset` in each hundred)
    /// with a usage count none of them reported before.
    async fn change(
        &mut self,
        pool: &Arc<Vec<DeviceIdentity>>,
        offset: usize,
        concurrency: usize,
    ) -> anyhow::Result<Outcome<()>> {
        self.last_count += 1;
        let usage: Arc<[Usage]> = Arc::new([Usage { tag: USED_TAG.into(), count: self.last_count }]);
        let queue = Mutex::new((offset..pool.len()).step_by(CHANGED_ONE_IN));
        let (client, pool) = (self.devices.clone(), pool.clone());
        drive(concurrency, None, move || {
            let device = queue.lock().ok()?.next()?;
            let (client, pool, usage) = (client.clone(), pool.clone(), usage.clone());
            Some(async move {
                client.authorize(&pool[device], &usage, now_ms()).await.map(drop).map_err(|e| e.to_string())
            })
        })
        .await
    }

    /// `sync now`: the satellite sends its request to the cloud and applies the response.
    async fn over_network(&self, kind: Kind, n: usize, changed: usize, syncs: &mut Vec<SyncRow>) {
        let began = Instant::now();
        let body = json!({"full": kind == Kind::Full, "cloud": self.cloud.base});
        let done = self.satellite_api.post("/api/v1/sync/now", body).await.map(|_| None);
        syncs.push(self.row((kind, n, changed), "network: sync now", began, done));
    }

    /// Manual synchronisation: the request file exported, answered by the cloud's File Sync,
    /// the response file imported; a step that fails ends it.
    async fn by_files(&self, kind: Kind, n: usize, changed: usize, syncs: &mut Vec<SyncRow>) {
        let what = (kind, n, changed);
        let began = Instant::now();
        let exported = self.satellite_api.post("/api/v1/sync/export", json!({"full": kind == Kind::Full})).await;
        let request = exported.and_then(|v| text_field(&v, "request"));
        let size = request.as_ref().map(|r| Some(r.len())).map_err(|e| anyhow::anyhow!("{e:#}"));
        syncs.push(self.row(what, "files: export (request file)", began, size));
        let Ok(request) = request else { return };
        let began = Instant::now();
        // The file itself, as YAML: the cloud reads it as it comes rather than whole.
        let path = "/api/v1/satellites/file-sync";
        let api = &self.cloud_api;
        let posted = api.http.post(format!("{}{path}", api.base)).bearer_auth(&api.bearer);
        let posted = posted.header(reqwest::header::CONTENT_TYPE, "application/yaml").body(request).send().await;
        let answered = super::json_of(posted, &format!("POST {path}")).await;
        let response = answered.and_then(|v| text_field(&v, "response"));
        let size = response.as_ref().map(|r| Some(r.len())).map_err(|e| anyhow::anyhow!("{e:#}"));
        syncs.push(self.row(what, "files: cloud File Sync (response file)", began, size));
        let Ok(response) = response else { return };
        let began = Instant::now();
        let done = self.satellite_api.post("/api/v1/sync/import", json!({"response": response})).await.map(|_| None);
        syncs.push(self.row(what, "files: import", began, done));
    }

    /// The report's line for a step of a `(kind, instances, changed)` synchronisation begun at
    /// `began`, which made a file of so many bytes or failed.
    fn row(
        &self,
        (kind, instances, changed): (Kind, usize, usize),
        step: &'static str,
        began: Instant,
        done: anyhow::Result<Option<usize>>,
    ) -> SyncRow {
        let took = began.elapsed();
        if let Err(e) = &done {
            eprintln!("bench: {step} failed after {:.1} s: {e:#}", took.as_secs_f64());
        }
        SyncRow {
            kind,
            instances,
            changed,
            step,
            took,
            done: done.map_err(|e| format!("{e:#}")),
            satellite_rss: self.satellite.rss(),
            cloud_rss: self.cloud.rss(),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Full,
    Standard,
}

/// One step of a synchronisation, as the report shows it.
struct SyncRow {
    kind: Kind,
    instances: usize,
    /// Instances changed since the last synchronisation (all of them for a full one).
    changed: usize,
    step: &'static str,
    took: Duration,
    /// The size of the file the step produced, or why it failed.
    done: Result<Option<usize>, String>,
    /// Resident memory now and peak so far (KiB), of each server.
    satellite_rss: Option<(u64, u64)>,
    cloud_rss: Option<(u64, u64)>,
}

fn print_syncs(rows: &[SyncRow]) {
    println!(
        "\n| Sync | Instances | Changed | Step | Time (s) | File (bytes) | Satellite RSS / peak (MiB) | Cloud RSS / peak (MiB) |"
    );
    println!("|---|---:|---:|---|---:|---:|---:|---:|");
    let mib = |rss: Option<(u64, u64)>| {
        rss.map_or("n/a".into(), |(now, peak)| format!("{:.1} / {:.1}", now as f64 / 1024.0, peak as f64 / 1024.0))
    };
    for r in rows {
        let file = match &r.done {
            Ok(bytes) => bytes.map_or(String::new(), |b| b.to_string()),
            Err(e) => format!("failed: {}", e.replace('|', "/")),
        };
        println!(
            "| {} | {} | {} | {} | {:.2} | {file} | {} | {} |",
            if r.kind == Kind::Full { "full" } else { "standard" },
            r.instances,
            r.changed,
            r.step,
            r.took.as_secs_f64(),
            mib(r.satellite_rss),
            mib(r.cloud_rss)
        );
    }
}
