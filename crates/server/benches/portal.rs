//! How long the portal's pages take with 100,000 product instances in the virtual account
//! (issue 14: every page under 50 ms). A manager starts on a fresh data directory, the
//! instances go straight into its store (as registrations do, without the device protocol),
//! an administrator signs in through the form, then each page is fetched over HTTPS on
//! loopback, one request at a time, and its median and p99 printed as a Markdown table.
//!
//! `cargo bench -p smartlic-server --bench portal` (`-- --instances N --samples N`).

use smartlic_server::auth::sha256_hex;
use smartlic_server::{start, Mode, ServerConfig};
use smartlic_store::{CertificateFacts, NewInstance};
use std::time::{Duration, Instant};

const DOMAIN: &str = "bench.example";
const SECRET: &str = "portal-bench-secret";
const PASSWORD: &str = "portal-bench-password";
const TAG: &str = "C9500 Network Advantage";

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A REST call as the operator; the JSON answer, its status checked.
async fn api(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let r =
        http.post(format!("{base}{path}")).bearer_auth(token).json(&body).send().await.expect("the manager answers");
    let status = r.status();
    let answer: serde_json::Value = r.json().await.expect("JSON");
    assert!(status.is_success(), "{path}: {status} {answer}");
    answer
}

/// The value of cookie `name` set by an answer.
fn set_cookie(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next()?.split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_string())
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

/// Signs in through the form; the `Cookie` header of the session.
async fn sign_in(http: &reqwest::Client, base: &str, login: &str) -> String {
    let form = http.get(format!("{base}/signin")).send().await.unwrap();
    let token = set_cookie(&form, "__Host-smartlic-signin");
    let fields = [("csrf", token.as_str()), ("login", login), ("password", PASSWORD)];
    let cookie = format!("__Host-smartlic-signin={token}");
    let r = http.post(format!("{base}/signin")).header("cookie", cookie).form(&fields).send().await.unwrap();
    assert_eq!(r.status(), 303, "signed in");
    format!("__Host-smartlic-session={}", set_cookie(&r, "__Host-smartlic-session"))
}

fn instance_id(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// `count` instances registered with `token` straight in the store, 64 writers at once (the
/// store commits them in groups).
async fn fill(state: &smartlic_server::state::AppState, token: &str, count: usize) {
    let token_hash = sha256_hex(token);
    let now = state.clock.now();
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..64 {
        let (store, token_hash) = (state.store.clone(), token_hash.clone());
        writers.spawn(async move {
            for n in (w..count).step_by(64) {
                let new = NewInstance {
                    id: instance_id(n),
                    token_hash: token_hash.clone(),
                    udi_pid: format!("C9300-{}", n % 7),
                    udi_sn: format!("FCW{n:08}"),
                    hostname: format!("switch-{n}"),
                    force: false,
                    certificate: CertificateFacts {
                        serial: format!("{n:016x}"),
                        expires_at: now.plus_days(365),
                        key_algorithm: "ed25519".into(),
                        public_key: format!("bench-key-{n}"),
                    },
                    evaluation_used_ms: None,
                };
                store.register_instance(new, now).await.map_err(|e| e.to_string()).expect("registered");
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.expect("a writer finished");
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let instances = arg("--instances", 100_000);
    let samples = arg("--samples", 100);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        mode: Mode::Cloud,
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        tls_cert: None,
        tls_key: None,
        hostnames: vec![],
        simulated_clock: false,
        catalog: None,
        admin_secret: Some(SECRET.into()),
        job_interval: Duration::from_secs(3600),
        limits: Default::default(),
        database: Default::default(),
    };
    let server = start(config).await.expect("the manager starts");
    let base = format!("https://{}", server.local_addr);
    let tls =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(smartlic_agent::tls::root_store(&server.ca_pem).unwrap())
            .with_no_client_auth();
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();

    let form = [("grant_type", "client_credentials"), ("client_id", "admin"), ("client_secret", SECRET)];
    let answer: serde_json::Value =
        http.post(format!("{base}/oauth/token")).form(&form).send().await.unwrap().json().await.unwrap();
    let admin = answer["access_token"].as_str().expect("operator token").to_string();
    api(&http, &base, &admin, "/api/v1/accounts", serde_json::json!({"domain": DOMAIN})).await;
    let pool = format!("/api/v1/accounts/{DOMAIN}/virtual-accounts/Default");
    api(&http, &base, &admin, &format!("{pool}/licenses"), serde_json::json!({"tag": TAG, "count": 1000})).await;
    let user = serde_json::json!({"name": "admin", "role": "smart-account-admin", "password": PASSWORD});
    let login = api(&http, &base, &admin, &format!("/api/v1/accounts/{DOMAIN}/users"), user).await["login"]
        .as_str()
        .unwrap()
        .to_string();
    let token = api(&http, &base, &admin, &format!("{pool}/tokens"), serde_json::json!({"description": "bench"})).await
        ["token"]
        .as_str()
        .unwrap()
        .to_string();
    let filling = Instant::now();
    fill(&server.state, &token, instances).await;
    eprintln!("{instances} instances stored in {:.1} s", filling.elapsed().as_secs_f64());
    smartlic_server::jobs::run_once(&server.state).await.expect("the jobs run");

    let cookie = sign_in(&http, &base, &login).await;
    let page = |rest: &str| format!("/portal/{DOMAIN}/Default/{rest}");
    let today = server.state.clock.now().to_datetime().format("%Y-%m-%d").to_string();
    let last_page = instances.div_ceil(50);
    let pages = [
        ("General", page("general")),
        ("Licenses", page("licenses")),
        ("Product Instances (first page)", page("instances")),
        ("Product Instances (last page)", page(&format!("instances?page={last_page}"))),
        ("Product Instances (search `switch-4242`)", page("instances?q=switch-4242")),
        ("Product Instances (search `switch-`, every instance matches)", page("instances?q=switch-")),
        ("Product Instances (search `switch-`, page 20)", page("instances?q=switch-&page=19")),
        ("Product Instances (search `42`, 2 characters)", page("instances?q=42")),
        ("Product Instances (search, no match)", page("instances?q=nothing-like-this")),
        ("Product instance", page(&format!("instances/{}", instance_id(instances / 2)))),
        ("Event Log", page("events")),
        ("Event Log (search `FCW00004242`)", page("events?q=FCW00004242")),
        ("Event Log (search `registered`, every event matches)", page("events?q=registered")),
        ("Event Log (search `zz`, 2 characters, no match)", page("events?q=zz")),
        ("Event Log (type and today)", page(&format!("events?type=instance.registered&from={today}&to={today}"))),
        (
            "Event Log (type, a day without events)",
            page("events?type=instance.registered&from=2001-01-01&to=2001-01-01"),
        ),
        ("Reservations", page("reservations")),
        ("Alerts", page("alerts")),
        ("Reports", page("reports")),
        ("Administration", page("admin")),
    ];
    println!("| Page | Median (ms) | p99 (ms) |");
    println!("|---|---:|---:|");
    for (name, path) in pages {
        let mut times = Vec::with_capacity(samples);
        for n in 0..samples + 3 {
            let started = Instant::now();
            let r = http.get(format!("{base}{path}")).header("cookie", &cookie).send().await.unwrap();
            let status = r.status();
            let body = r.text().await.unwrap();
            assert_eq!(status, 200, "{path}: {body}");
            if n >= 3 {
                times.push(started.elapsed());
            }
        }
        times.sort();
        println!("| {name} | {:.1} | {:.1} |", percentile(&times, 0.5), percentile(&times, 0.99));
    }
    server.stop();
}
