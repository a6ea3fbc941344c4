//! The manager stays available under hostile load (issue 10): idle connections by the thousand,
//! a connection cap, connection timeouts, failed-login budgets on the manager's clock, and a
//! first start on a taken port.

use crate::common;

use common::{server_config, usage, Harness, SECRET};
use serde_json::Value;
use smartlic_proto::wire::AuthorizationStatus;
use smartlic_server::state::Limits;
use smartlic_server::tls::raise_open_file_limit;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Nothing here should take long: a hang fails the test instead of blocking the suite.
const HANG_GUARD: Duration = Duration::from_secs(120);

async fn guarded<T>(what: &str, work: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(HANG_GUARD, work).await.unwrap_or_else(|_| panic!("{what} hung"))
}

/// A manager with `limits`; the harness's own login happens before anything is held open.
async fn harness(limits: Limits) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut config = server_config(dir.path());
    config.limits = limits;
    Harness::start(dir, config).await
}

/// TLS trusting the manager's CA.
fn tls_config(h: &Harness) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(smartlic_agent::tls::root_store(&h.server.ca_pem).unwrap())
        .with_no_client_auth()
}

/// Connections that are open and say nothing, the two kinds an attacker holds.
struct Idle {
    addr: SocketAddr,
    tls: tokio_rustls::TlsConnector,
}

impl Idle {
    fn new(h: &Harness) -> Idle {
        Idle { addr: h.server.local_addr, tls: tokio_rustls::TlsConnector::from(Arc::new(tls_config(h))) }
    }

    /// Connected, never starts TLS.
    async fn silent(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }

    /// TLS established, no request sent; the socket is kept, the TLS state dropped.
    async fn after_handshake(&self) -> TcpStream {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        self.tls.connect(name, tcp).await.unwrap().into_inner().0
    }

    /// Request headers begun and never finished.
    async fn half_request(&self) -> TcpStream {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = self.tls.connect(name, tcp).await.unwrap();
        tls.write_all(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n").await.unwrap();
        tls.flush().await.unwrap();
        tls.into_inner().0
    }

    /// A request whose headers promise a body of which a trickle arrives, then nothing.
    async fn trickled_body(&self) -> TcpStream {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = self.tls.connect(name, tcp).await.unwrap();
        let head = "POST /oauth/token HTTP/1.1\r\nhost: 127.0.0.1\r\n\
                    content-type: application/x-www-form-urlencoded\r\ncontent-length: 100000\r\n\r\n";
        tls.write_all(head.as_bytes()).await.unwrap();
        tls.write_all(b"grant_type=client_credentials&").await.unwrap();
        tls.flush().await.unwrap();
        tls.into_inner().0
    }
}

/// Whether the server has closed `tcp` (end of file or reset), without waiting.
fn closed(tcp: &TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match tcp.try_read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// Waits for the server to close `tcp`.
async fn closes(mut tcp: TcpStream) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = tcp.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

/// A device registers and authorizes, and `/health` answers.
async fn a_device_gets_through(h: &Harness, sn: &str) {
    let token = h.account_with(&format!("{}.example.com", sn.to_lowercase()), &[("ACI Advantage", 5)]).await;
    let device = h.register(sn, &token).await;
    let answer = h.devices.authorize(&device, &usage(&[("ACI Essentials", 1)]), h.now_ms()).await.unwrap();
    assert_eq!(answer.status, AuthorizationStatus::Authorized);
    let health = h.http.get(format!("{}/health", h.base)).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_connections_do_not_keep_devices_out() {
    // Both ends live in this process: 2,000 sockets, over the usual soft limit of 1,024.
    let files = raise_open_file_limit().unwrap();
    assert!(files >= 2_200, "the hard open-file limit ({files}) is too low for this test (ulimit -Hn)");
    let long = Duration::from_secs(600);
    let limits = Limits { handshake_timeout: long, header_timeout: long, idle_timeout: long, ..Limits::default() };
    let h = harness(limits).await;
    let idle = Idle::new(&h);
    let held = guarded("opening 1,000 idle connections", async {
        let mut held = Vec::new();
        for n in 0..1000 {
            held.push(if n % 2 == 0 { idle.silent().await } else { idle.after_handshake().await });
        }
        held
    })
    .await;
    guarded("the device", a_device_gets_through(&h, "FCH1000IDLE")).await;
    assert_eq!(held.iter().filter(|c| closed(c)).count(), 0, "below the cap no idle connection is closed");
}

#[tokio::test]
async fn at_the_cap_the_oldest_idle_connection_makes_room() {
    let long = Duration::from_secs(600);
    let limits = Limits {
        max_connections: 20,
        handshake_timeout: long,
        header_timeout: long,
        idle_timeout: long,
        ..Limits::default()
    };
    let h = harness(limits).await;
    let idle = Idle::new(&h);
    // With the harness's own connection, the server is at its cap.
    let held = guarded("holding 19 connections", async {
        let mut held = Vec::new();
        for n in 0..19 {
            held.push(if n % 2 == 0 { idle.silent().await } else { idle.after_handshake().await });
        }
        held
    })
    .await;
    guarded("the device at the cap", a_device_gets_through(&h, "FCH20CAP")).await;
    assert!(closed(&held[0]), "the oldest idle connection was closed to make room");
    assert!(!closed(&held[18]), "the newest idle connection is still open");
    assert!(held.iter().filter(|c| closed(c)).count() < 19, "only as many closed as needed");
}

#[tokio::test]
async fn silent_slow_and_idle_connections_are_closed() {
    let limits = Limits {
        handshake_timeout: Duration::from_secs(1),
        header_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(5),
        body_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let h = harness(limits).await;
    let idle = Idle::new(&h);
    let (silent, established, half) = (idle.silent().await, idle.after_handshake().await, idle.half_request().await);
    let trickled = idle.trickled_body().await;
    guarded("closing a connection that never starts TLS", closes(silent)).await;
    guarded("closing a connection whose headers never end", closes(half)).await;
    guarded("closing a connection whose body never ends", closes(trickled)).await;
    assert!(!closed(&established), "an idle connection has longer than a started request");
    guarded("closing a connection that sends no request", closes(established)).await;
    a_device_gets_through(&h, "FCH1SEC").await;
}

/// An HTTPS client whose connections come from `source` (any 127.x address is loopback).
fn client_from(h: &Harness, source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls_config(h))
        .local_address(source.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

struct TokenReply {
    status: u16,
    retry_after: Option<i64>,
    body: Value,
}

async fn token_request(h: &Harness, http: &reqwest::Client, client_id: &str, secret: &str) -> TokenReply {
    let form = [("grant_type", "client_credentials"), ("client_id", client_id), ("client_secret", secret)];
    let r = http.post(format!("{}/oauth/token", h.base)).form(&form).send().await.unwrap();
    let status = r.status().as_u16();
    let retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap());
    TokenReply { status, retry_after, body: r.json().await.unwrap() }
}

async fn throttle_events(h: &Harness) -> Vec<String> {
    let events = h.admin("GET", "/api/v1/events?limit=1000", None).await.body;
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "login.throttled")
        .map(|e| e["object"].as_str().unwrap().to_string())
        .collect()
}

/// A token request through a load balancer: `forwarded` is its X-Forwarded-For.
async fn token_request_via(h: &Harness, http: &reqwest::Client, forwarded: &str) -> u16 {
    let form = [("grant_type", "client_credentials"), ("client_id", "nobody"), ("client_secret", "wrong")];
    let r = http.post(format!("{}/oauth/token", h.base)).header("x-forwarded-for", forwarded).form(&form);
    r.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn behind_a_trusted_load_balancer_budgets_follow_the_forwarded_client() {
    let limits = Limits {
        login_failures_per_client: 0,
        login_failures_per_address: 2,
        trusted_proxies: vec![smartlic_server::tls::trusted_proxy("127.0.0.1").unwrap()],
        ..Limits::default()
    };
    let h = harness(limits).await;
    let (balancer, other) = (client_from(&h, "127.0.0.1"), client_from(&h, "127.0.0.2"));
    for _ in 0..2 {
        assert_eq!(token_request_via(&h, &balancer, "203.0.113.5").await, 401);
    }
    assert_eq!(token_request_via(&h, &balancer, "203.0.113.5").await, 429, "that client's budget is spent");
    // Its own header does not let the client pose as another: the balancer's hop is the one believed.
    assert_eq!(token_request_via(&h, &balancer, "198.51.100.1, 203.0.113.5").await, 429);
    assert_eq!(token_request_via(&h, &balancer, "203.0.113.6").await, 401, "another client behind it is not");
    // From an address that is no trusted proxy, the header is ignored: budgeted by the peer.
    for _ in 0..2 {
        assert_eq!(token_request_via(&h, &other, "203.0.113.7").await, 401);
    }
    assert_eq!(token_request_via(&h, &other, "203.0.113.8").await, 429);
    let throttled = throttle_events(&h).await;
    assert!(throttled.contains(&"address 203.0.113.5".to_string()), "{throttled:?}");
    assert!(throttled.contains(&"address 127.0.0.2".to_string()), "{throttled:?}");
}

#[tokio::test]
async fn failed_logins_are_budgeted_per_client_id_and_per_address() {
    // 3 failures a minute per client ID (one every 20 s), 5 per address (one every 12 s).
    let h = harness(Limits { login_failures_per_client: 3, login_failures_per_address: 5, ..Limits::default() }).await;
    let clock = h.server.state.simulated.clone().unwrap();
    let (local, other) = (client_from(&h, "127.0.0.1"), client_from(&h, "127.0.0.2"));
    for _ in 0..3 {
        assert_eq!(token_request(&h, &local, "admin", "wrong secret").await.status, 401);
    }
    // The client ID's budget is spent: even the right secret waits, from any address.
    for http in [&local, &other] {
        let refused = token_request(&h, http, "admin", SECRET).await;
        assert_eq!(refused.status, 429, "{}", refused.body);
        assert!(matches!(refused.retry_after, Some(15..=20)), "{:?}", refused.retry_after);
        assert_eq!(refused.body["error"], "temporarily_unavailable");
        assert!(refused.body["error_description"].as_str().unwrap().contains("retry in"), "{}", refused.body);
    }
    assert_eq!(throttle_events(&h).await, ["client ID 'admin'"]);
    clock.advance(20_000);
    assert_eq!(token_request(&h, &local, "admin", SECRET).await.status, 200, "a failure's worth came back");

    // From another address, 5 failures under 5 names spend that address's budget.
    for n in 0..5 {
        assert_eq!(token_request(&h, &other, &format!("guess-{n}"), "wrong").await.status, 401);
    }
    let refused = token_request(&h, &other, "admin", SECRET).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(matches!(refused.retry_after, Some(1..=12)), "{:?}", refused.retry_after);
    assert_eq!(token_request(&h, &local, "admin", SECRET).await.status, 200, "other addresses are not affected");
    assert_eq!(throttle_events(&h).await, ["address 127.0.0.2", "client ID 'admin'"]);
    clock.advance(12_000);
    assert_eq!(token_request(&h, &other, "admin", SECRET).await.status, 200);
}

#[tokio::test]
async fn a_taken_port_stores_no_secret() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = server_config(dir.path());
    config.listen = taken.local_addr().unwrap();
    config.admin_secret = None;
    let error = smartlic_server::start(config.clone()).await.err().expect("the port is taken");
    assert!(format!("{error:#}").contains("cannot listen on"), "{error:#}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing was created");
    config.listen = "127.0.0.1:0".parse().unwrap();
    let running = smartlic_server::start(config).await.unwrap();
    assert!(running.generated_admin_secret.is_some(), "the next start is still a first start, and shows its secret");
    running.stop();
}
