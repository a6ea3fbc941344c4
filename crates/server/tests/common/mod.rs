//! A manager on a loopback port with a real SQLite file, its simulated clock, an admin REST
//! client and device clients: what every HTTPS integration test starts from.

#![allow(dead_code)]

pub mod device_cli;
pub mod portal;
pub mod satellite;

use serde_json::{json, Value};
use smartlic_agent::client::ManagerClient;
use smartlic_agent::identity::DeviceIdentity;
use smartlic_proto::wire::Udi;
use smartlic_proto::KeyAlgorithm;
use smartlic_server::{start, Running, ServerConfig};

pub const SECRET: &str = "integration-test-secret";

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub server: Running,
    pub base: String,
    pub http: reqwest::Client,
    /// Renewed after every clock move: access tokens expire on the manager's clock.
    pub admin_token: std::sync::Mutex<String>,
    pub devices: ManagerClient,
    /// The manager's database (default: the SQLite file of its data directory), for a restart
    /// on the same one.
    pub database: smartlic_server::DatabaseConfig,
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl Harness {
    pub async fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let config = server_config(dir.path());
        Harness::start(dir, config).await
    }

    /// A harness over a manager started with `config` (its data in `dir`).
    pub async fn start(dir: tempfile::TempDir, config: ServerConfig) -> Harness {
        Harness::start_trusting(dir, config, "").await
    }

    /// Like [`start`](Self::start) for a manager serving an operator's certificate (`--tls-cert`):
    /// its clients trust `tls_ca`, the CA that issued it, besides the manager's CA. A manager
    /// listening on every interface is reached on loopback.
    pub async fn start_trusting(dir: tempfile::TempDir, config: ServerConfig, tls_ca: &str) -> Harness {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let database = config.database.clone();
        let server = start(config).await.unwrap();
        let mut addr = server.local_addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let base = format!("https://{addr}");
        let trusted = format!("{}\n{tls_ca}", server.ca_pem);
        let http = smartlic_agent::tls::https_client(&trusted).unwrap();
        let devices = ManagerClient::new(&base, &trusted).unwrap();
        let h = Harness { dir, server, base, http, admin_token: Default::default(), devices, database };
        h.relogin().await;
        h
    }

    /// Runs `sql` on the manager's database behind its back (as a damaged database would hold
    /// its data, or to count what the API does not show); answers the first column of the
    /// first row, if any, as text.
    pub fn sql(&self, sql: &str) -> Option<String> {
        let path = match &self.database.url {
            None => self.dir.path().join(smartlic_server::backup::DATABASE_FILE),
            Some(smartlic_store::DatabaseUrl::Sqlite(path)) => path.clone(),
            #[cfg(feature = "postgres")]
            Some(smartlic_store::DatabaseUrl::Postgres(url)) => {
                let cluster = smartlic_store::postgres::PrivateCluster::shared().unwrap();
                let rows = cluster.query(url, sql).unwrap();
                return rows.lines().next().map(|row| row.split('|').next().unwrap_or_default().to_string());
            }
            #[cfg(not(feature = "postgres"))]
            Some(smartlic_store::DatabaseUrl::Postgres(_)) => unreachable!("no PostgreSQL without the feature"),
        };
        let db = rusqlite::Connection::open(path).unwrap();
        db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        let mut statement = db.prepare(sql).unwrap();
        let mut rows = statement.query([]).unwrap();
        let row = rows.next().unwrap()?;
        Some(match row.get_ref(0).unwrap() {
            rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
            rusqlite::types::ValueRef::Integer(n) => n.to_string(),
            other => panic!("{sql}: {other:?}"),
        })
    }

    /// Client-credentials grant; None when refused.
    pub async fn login(&self, client_id: &str, secret: &str) -> Option<String> {
        let form = [("grant_type", "client_credentials"), ("client_id", client_id), ("client_secret", secret)];
        let r = self.http.post(format!("{}/oauth/token", self.base)).form(&form).send().await.unwrap();
        let ok = r.status().is_success();
        let v: Value = r.json().await.unwrap();
        ok.then(|| v["access_token"].as_str().unwrap().to_string())
    }

    /// Creates an API client of `domain` (`body`: name, role, virtual_account) as the operator
    /// and logs in with its generated client ID: (client ID, secret, access token).
    pub async fn client(&self, domain: &str, body: Value) -> (String, String, String) {
        let c = self.admin("POST", &format!("/api/v1/accounts/{domain}/api-clients"), Some(body)).await;
        assert_eq!(c.status, 201, "{:?}", c.body);
        let (id, secret) = (c.body["client_id"].as_str().unwrap(), c.body["client_secret"].as_str().unwrap());
        let token = self.login(id, secret).await.expect("the new client logs in");
        (id.to_string(), secret.to_string(), token)
    }

    pub async fn call(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> Answer {
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "GET" => self.http.get(url),
            "POST" => self.http.post(url),
            "DELETE" => self.http.delete(url),
            "PATCH" => self.http.patch(url),
            other => panic!("method {other}"),
        };
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        Answer { status, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
    }

    pub async fn relogin(&self) {
        let token = self.login("admin", SECRET).await.expect("admin login");
        *self.admin_token.lock().unwrap() = token;
    }

    /// The operator's current access token.
    pub fn bearer(&self) -> String {
        self.admin_token.lock().unwrap().clone()
    }

    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        self.call(&self.bearer(), method, path, body).await
    }

    /// An account with `licenses` of (tag, count) in its Default pool and a token for it.
    pub async fn account_with(&self, domain: &str, licenses: &[(&str, i64)]) -> String {
        assert_eq!(self.admin("POST", "/api/v1/accounts", Some(json!({"domain": domain}))).await.status, 201);
        for (tag, count) in licenses {
            let path = format!("/api/v1/accounts/{domain}/virtual-accounts/Default/licenses");
            let a = self.admin("POST", &path, Some(json!({"tag": tag, "count": count}))).await;
            assert_eq!(a.status, 201, "{:?}", a.body);
        }
        self.token(domain, "Default", json!({})).await
    }

    pub async fn token(&self, domain: &str, va: &str, body: Value) -> String {
        let path = format!("/api/v1/accounts/{domain}/virtual-accounts/{va}/tokens");
        let a = self.admin("POST", &path, Some(body)).await;
        assert_eq!(a.status, 201, "{:?}", a.body);
        a.body["token"].as_str().unwrap().to_string()
    }

    pub fn now_ms(&self) -> i64 {
        self.server.state.clock.now().0
    }

    pub async fn set_clock(&self, time: &str) {
        let a = self.admin("POST", "/api/v1/clock", Some(json!({"time": time}))).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        self.relogin().await;
    }

    pub async fn register(&self, sn: &str, token: &str) -> DeviceIdentity {
        let udi = Udi { pid: "C9500-32C".into(), sn: sn.into() };
        let (key, answer) = self
            .devices
            .register(&udi, Some("sw1"), token, false, KeyAlgorithm::Ed25519, self.now_ms())
            .await
            .expect("registration");
        DeviceIdentity::from_registration(udi, Some("sw1".into()), key, answer)
    }

    pub async fn licenses(&self, domain: &str, va: &str) -> Value {
        self.admin("GET", &format!("/api/v1/accounts/{domain}/virtual-accounts/{va}/licenses"), None).await.body
    }
}

/// The configuration every test manager starts from: loopback, simulated clock, the test secret.
pub fn server_config(dir: &std::path::Path) -> ServerConfig {
    ServerConfig {
        mode: smartlic_server::Mode::Cloud,
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        tls_cert: None,
        tls_key: None,
        hostnames: vec![],
        simulated_clock: true,
        catalog: None,
        admin_secret: Some(SECRET.into()),
        job_interval: std::time::Duration::from_secs(3600),
        limits: Default::default(),
        database: test_database(dir),
    }
}

/// With `SMARTLIC_TEST_DATABASE=postgres`, every test manager runs on a database of the private
/// PostgreSQL instead of a SQLite file in its data directory, one database per data directory
/// (a manager restarted on its directory finds its data): the whole suite on the second backend.
fn test_database(dir: &std::path::Path) -> smartlic_server::DatabaseConfig {
    #[cfg(feature = "postgres")]
    if std::env::var("SMARTLIC_TEST_DATABASE").as_deref() == Ok("postgres") {
        static DATABASES: std::sync::Mutex<Vec<(std::path::PathBuf, smartlic_store::PostgresUrl)>> =
            std::sync::Mutex::new(Vec::new());
        let mut databases = DATABASES.lock().unwrap();
        let url = match databases.iter().find(|(d, _)| d == dir) {
            Some((_, url)) => url.clone(),
            None => {
                let cluster = smartlic_store::postgres::PrivateCluster::shared().expect("PostgreSQL is not installed");
                let url = cluster.fresh_database().unwrap();
                databases.push((dir.to_path_buf(), url.clone()));
                url
            }
        };
        let key = smartlic_server::data_key::DataKey::from_secret("the-suite-on-postgresql-0123456789").unwrap();
        return smartlic_server::DatabaseConfig {
            url: Some(smartlic_store::DatabaseUrl::Postgres(url)),
            data_key: Some(key),
        };
    }
    let _ = dir;
    Default::default()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A real forward proxy (Debian's tinyproxy) on a loopback port, stopped when dropped.
pub struct Tinyproxy {
    child: std::process::Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts tinyproxy, requiring `auth` (user, password) when given. None when tinyproxy is not
/// installed, unless `SMARTLIC_REQUIRE_PROXY` (set by `.ci/run`) makes that a failure.
pub async fn tinyproxy(auth: Option<(&str, &str)>) -> Option<Tinyproxy> {
    let binary = ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"].into_iter().find(|p| std::path::Path::new(p).exists());
    let Some(binary) = binary else {
        assert!(std::env::var("SMARTLIC_REQUIRE_PROXY").is_err(), "tinyproxy is required but not installed");
        eprintln!("tinyproxy is not installed (apt-get install tinyproxy): proxy test skipped");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut conf =
        format!("Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 16\nAllow 127.0.0.1\nLogLevel Error\n");
    if let Some((user, password)) = auth {
        conf.push_str(&format!("BasicAuth {user} {password}\n"));
    }
    let path = dir.path().join("tinyproxy.conf");
    std::fs::write(&path, conf).unwrap();
    let child = std::process::Command::new(binary)
        .arg("-d")
        .arg("-c")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let proxy = Tinyproxy { child: child.unwrap(), port, _dir: dir };
    // Bounded wait for the proxy to listen.
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Some(proxy);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("tinyproxy did not start on port {port}");
}

/// The `purchased_display` of `tag` in a license listing.
pub fn shown(licenses: &Value, tag: &str) -> String {
    licenses["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["tag"] == tag)
        .map(|l| l["purchased_display"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

pub fn usage(pairs: &[(&str, i64)]) -> Vec<smartlic_proto::wire::Usage> {
    pairs.iter().map(|(t, c)| smartlic_proto::wire::Usage { tag: t.to_string(), count: *c }).collect()
}
