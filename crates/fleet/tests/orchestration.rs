//! The orchestrator end to end (F-1..F-4): a real cloud manager, the orchestrator and agent
//! daemons as cluster nodes on loopback, through account add (with wrong credentials first),
//! sync, assignment, the seed's failure codes, unassignment and auto-registration.

use crate::common::{closed_port, Manager, Node, Orchestrator};
use serde_json::{json, Value};

/// Adds the manager's account; its add job's outcome.
async fn add_account(o: &Orchestrator, m: &Manager, secret: &str) -> Value {
    let body = json!({
        "name": "example.com", "kind": "cloud", "base_url": m.rest.base, "ca_pem": m.ca_pem,
        "client_id": m.client_id, "client_secret": secret,
    });
    let added = o.rest.expect(201, "POST", "/accounts", Some(body)).await;
    assert!(!added.to_string().contains(secret), "the secret is never returned: {added}");
    o.job_of(&added).await
}

/// A cluster of `nodes` for customer acme.
fn cluster(name: &str, app: &str, nodes: &[(&str, &str)]) -> Value {
    let nodes: Vec<Value> = nodes.iter().map(|(n, url)| json!({"name": n, "api_url": url})).collect();
    json!({"name": name, "customer": "acme", "application": app, "nodes": nodes})
}

async fn assign(o: &Orchestrator, cluster: &str, va: &str) -> Value {
    let body = json!({"account": "example.com", "virtual_account": va});
    let queued = o.rest.expect(202, "POST", &format!("/clusters/{cluster}/assign"), Some(body)).await;
    o.job_of(&queued).await
}

async fn unassign(o: &Orchestrator, cluster: &str) -> Value {
    let queued = o.rest.expect(202, "POST", &format!("/clusters/{cluster}/unassign"), None).await;
    o.job_of(&queued).await
}

fn failed_with(job: &Value, status: &str, code: &str) {
    assert_eq!((job["status"].as_str(), job["error_code"].as_str()), (Some(status), Some(code)), "{job:#}");
    assert!(job["recommended_action"].as_str().is_some_and(|r| !r.is_empty()) || code == "CAA1049", "{job:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assign_and_unassign_clusters_with_the_seeds_codes() {
    let m = Manager::start().await;
    let o = Orchestrator::start().await;

    // Wrong credentials: the add job fails with CSSM1011 and its recommendation.
    let job = add_account(&o, &m, "not-the-secret").await;
    failed_with(&job, "Failed", "CSSM1011");
    assert_eq!(job["recommended_action"], "Reconfigure client ID and Secret, and perform Smart Account Sync");
    // Reconfigured: the sync it queues pulls the virtual accounts and licenses.
    let creds = json!({"client_id": m.client_id, "client_secret": m.client_secret});
    let queued = o.rest.expect(202, "PUT", "/accounts/example.com/credentials", Some(creds)).await;
    let job = o.job_of(&queued).await;
    assert_eq!(job["status"], "Completed", "{job:#}");
    let vas = o.rest.expect(200, "GET", "/accounts/example.com/virtual-accounts", None).await;
    let names: Vec<&str> =
        vas["virtual_accounts"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Default", "Lab", "Ops"]);
    let licenses = o.rest.expect(200, "GET", "/accounts/example.com/licenses", None).await;
    assert_eq!(licenses["licenses"][0]["quantity"], 10, "{licenses}");

    o.rest.expect(201, "POST", "/customers", Some(json!({"name": "acme", "account": "example.com"}))).await;
    let (n1, n2) = (Node::start("NODE0001", &m.ca_pem).await, Node::start("NODE0002", &m.ca_pem).await);
    o.rest
        .expect(201, "POST", "/clusters", Some(cluster("cucm1", "call-control", &[("n1", &n1.url), ("n2", &n2.url)])))
        .await;
    assert_eq!(o.cluster("cucm1").await["status"], "Deregistered");

    // A virtual account the manager does not have; one without a license mode.
    failed_with(&assign(&o, "cucm1", "Nope").await, "Failed", "SLMCT1001");
    failed_with(&assign(&o, "cucm1", "Lab").await, "Failed", "SLM1014");
    let mode = json!({"license_mode": "hcs"});
    o.rest.expect(200, "PUT", "/accounts/example.com/virtual-accounts/Lab/license-mode", Some(mode.clone())).await;

    // Assigned: both nodes registered, as the manager's own API shows.
    let job = assign(&o, "cucm1", "Lab").await;
    assert_eq!(job["status"], "Completed", "{job:#}");
    assert_eq!(job["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(m.serials("Lab").await, ["NODE0001", "NODE0002"]);
    assert_eq!(n1.registration().await, "COMPLETED");
    let shown = o.cluster("cucm1").await;
    assert_eq!(
        (shown["status"].as_str(), shown["virtual_account"].as_str()),
        (Some("Manually Registered"), Some("Lab"))
    );
    failed_with(&assign(&o, "cucm1", "Lab").await, "Failed", "SLMCT1007");
    // The license mode cannot change while a cluster is assigned to the virtual account.
    let (status, _) = o.rest.call("PUT", "/accounts/example.com/virtual-accounts/Lab/license-mode", Some(mode)).await;
    assert_eq!(status, 409);

    // A node that does not answer: the others register, the job is partial with CAA1046.
    let n3 = Node::start("NODE0003", &m.ca_pem).await;
    let dead = format!("http://127.0.0.1:{}", closed_port());
    o.rest
        .expect(201, "POST", "/clusters", Some(cluster("cuc1", "voicemail", &[("n3", &n3.url), ("gone", &dead)])))
        .await;
    let job = assign(&o, "cuc1", "Lab").await;
    failed_with(&job, "Partially completed", "CAA1046");
    let gone = job["nodes"].as_array().unwrap().iter().find(|n| n["node"] == "gone").unwrap().clone();
    assert_eq!((gone["ok"].as_bool(), gone["code"].as_str()), (Some(false), Some("CAA1046")), "{gone}");
    assert_eq!(o.cluster("cuc1").await["status"], "Manual Registration Failed");

    // The manager refuses the registration: the token the orchestrator keeps was revoked there.
    let tokens = m.rest.expect(200, "GET", "/api/v1/accounts/example.com/virtual-accounts/Lab/tokens", None).await;
    for t in tokens["tokens"].as_array().unwrap() {
        let body = json!({"token": t["prefix"]});
        m.rest.expect(200, "POST", "/api/v1/accounts/example.com/virtual-accounts/Lab/tokens/revoke", Some(body)).await;
    }
    let n4 = Node::start("NODE0004", &m.ca_pem).await;
    o.rest.expect(201, "POST", "/clusters", Some(cluster("cer1", "emergency-responder", &[("n4", &n4.url)]))).await;
    let job = assign(&o, "cer1", "Lab").await;
    failed_with(&job, "Failed", "CAA1048");
    assert_eq!(job["recommended_action"], "Perform Smart Account Sync with CSSM.");
    // The refused token is forgotten: the next assignment creates a new one and succeeds.
    assert_eq!(assign(&o, "cer1", "Lab").await["status"], "Completed");
    assert_eq!(m.serials("Lab").await, ["NODE0001", "NODE0002", "NODE0003", "NODE0004"]);

    // Unassigned: every node deregistered, on the node and on the manager.
    let job = unassign(&o, "cucm1").await;
    assert_eq!(job["status"], "Completed", "{job:#}");
    assert_eq!(n1.registration().await, "NOT_REGISTERED");
    assert_eq!(m.serials("Lab").await, ["NODE0003", "NODE0004"]);
    let shown = o.cluster("cucm1").await;
    assert_eq!((shown["status"].as_str(), shown["virtual_account"].as_str()), (Some("Deregistered"), None));
    failed_with(&unassign(&o, "cucm1").await, "Failed", "SLMCT1011");

    // Every job is listed with its outcome; a cluster's jobs are found by its name.
    let jobs = o.rest.expect(200, "GET", "/jobs?entity=cucm1", None).await;
    let kinds: Vec<&str> = jobs["jobs"].as_array().unwrap().iter().map(|j| j["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["unassign", "unassign", "assign", "assign", "assign", "assign"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_clusters_auto_register_and_accounts_sync_every_day() {
    let m = Manager::start().await;
    let o = Orchestrator::start().await;
    assert_eq!(add_account(&o, &m, &m.client_secret).await["status"], "Completed");
    let mode = json!({"license_mode": "hcs"});
    o.rest.expect(200, "PUT", "/accounts/example.com/virtual-accounts/Ops/license-mode", Some(mode)).await;
    // Only a virtual account the sync found can be the operational one.
    let (status, body) =
        o.rest.call("PUT", "/accounts/example.com/operational-va", Some(json!({"virtual_account": "Nope"}))).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("virtual_account")), "{body}");
    o.rest.expect(200, "PUT", "/accounts/example.com/operational-va", Some(json!({"virtual_account": "Ops"}))).await;
    o.rest.expect(201, "POST", "/customers", Some(json!({"name": "acme", "account": "example.com"}))).await;

    let n1 = Node::start("EDGE0001", &m.ca_pem).await;
    let added =
        o.rest.expect(201, "POST", "/clusters", Some(cluster("exp1", "expressway-e", &[("e1", &n1.url)]))).await;
    let job = o.job_of(&added).await;
    assert_eq!((job["kind"].as_str(), job["status"].as_str()), (Some("auto_register"), Some("Completed")), "{job:#}");
    assert_eq!(m.serials("Ops").await, ["EDGE0001"]);
    assert_eq!(o.cluster("exp1").await["status"], "Auto Registered");

    // A day later on the orchestrator's clock, the account syncs by itself.
    let syncs = |jobs: &Value| jobs["jobs"].as_array().unwrap().iter().filter(|j| j["kind"] == "sync").count();
    assert_eq!(syncs(&o.rest.expect(200, "GET", "/jobs", None).await), 0);
    o.clock.advance(smartlic_core::time::DAY_MS);
    o.running.fleet.wake();
    let mut found = None;
    for _ in 0..200 {
        let jobs = o.rest.expect(200, "GET", "/jobs?entity=example.com", None).await;
        if let Some(sync) =
            jobs["jobs"].as_array().unwrap().iter().find(|j| j["kind"] == "sync" && j["status"] == "Completed")
        {
            found = Some(sync.clone());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(found.is_some(), "no sync a day after the last");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_wants_the_administrators_token_and_refuses_bad_input() {
    let o = Orchestrator::start().await;
    let anonymous = crate::common::Rest { token: "wrong".into(), base: o.rest.base.clone(), http: o.rest.http.clone() };
    assert_eq!(anonymous.call("GET", "/jobs", None).await.0, 401);
    // The OpenAPI document is open, and names every operation.
    let (status, doc) = anonymous.call("GET", "/openapi.json", None).await;
    assert_eq!(status, 200);
    assert!(doc["paths"]["/api/v1/fleet/clusters/{name}/assign"]["post"].is_object(), "{doc}");
    let bad = json!({"name": "x", "kind": "cloud", "base_url": "http://plain", "ca_pem": "x", "client_id": "i", "client_secret": "s"});
    let (status, body) = o.rest.call("POST", "/accounts", Some(bad)).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("base_url")), "{body}");
    assert_eq!(o.rest.expect(200, "GET", "/accounts", None).await["accounts"], json!([]));
    let (status, _) =
        o.rest.call("POST", "/clusters/none/assign", Some(json!({"account": "a", "virtual_account": "v"}))).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_cannot_tell_its_manager_is_removed_there_through_the_api() {
    let m = Manager::start().await;
    let o = Orchestrator::start().await;
    assert_eq!(add_account(&o, &m, &m.client_secret).await["status"], "Completed");
    let mode = json!({"license_mode": "enterprise"});
    o.rest.expect(200, "PUT", "/accounts/example.com/virtual-accounts/Lab/license-mode", Some(mode)).await;
    o.rest.expect(201, "POST", "/customers", Some(json!({"name": "acme", "account": "example.com"}))).await;

    // The cluster's nodes reach the manager through a proxy (the cluster's own transport).
    let proxy = crate::common::ConnectProxy::start().await;
    let n1 = Node::start("NODE0009", &m.ca_pem).await;
    let mut body = cluster("cucm2", "call-control", &[("n1", &n1.url)]);
    body["transport"] = json!({"mode": "proxy", "host": "127.0.0.1", "port": proxy.port});
    o.rest.expect(201, "POST", "/clusters", Some(body)).await;
    assert_eq!(assign(&o, "cucm2", "Lab").await["status"], "Completed");
    assert_eq!(m.serials("Lab").await, ["NODE0009"]);

    // The proxy is gone: the node drops its registration without telling the manager, and the
    // orchestrator removes the instance there through the manager's API.
    proxy.stop();
    let job = unassign(&o, "cucm2").await;
    assert_eq!(job["status"], "Completed", "{job:#}");
    assert!(job["nodes"][0]["message"].as_str().unwrap().contains("removed on the manager through its API"), "{job:#}");
    assert_eq!(n1.registration().await, "NOT_REGISTERED");
    assert!(m.serials("Lab").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_credentials_are_used_and_the_orchestrator_keeps_its_data_across_a_restart() {
    let m = Manager::start().await;
    let o = Orchestrator::start().await;
    assert_eq!(add_account(&o, &m, &m.client_secret).await["status"], "Completed");
    let mode = json!({"license_mode": "hcs"});
    o.rest.expect(200, "PUT", "/accounts/example.com/virtual-accounts/Lab/license-mode", Some(mode)).await;
    o.rest.expect(201, "POST", "/customers", Some(json!({"name": "acme", "account": "example.com"}))).await;

    // A node whose API wants a bearer token: the wrong one is CAA1035, the right one registers.
    let credentials =
        smartlic_agent::daemon::ApiCredentials { basic: None, bearer: Some("node-token-0123456789".into()) };
    let n1 = Node::start_with("NODE0021", &m.ca_pem, &[], credentials).await;
    let mut body = cluster("cuc2", "voicemail", &[]);
    body["nodes"] = json!([{"name": "n1", "api_url": n1.url, "api_token": "not-the-token"}]);
    o.rest.expect(201, "POST", "/clusters", Some(body)).await;
    failed_with(&assign(&o, "cuc2", "Lab").await, "Failed", "CAA1035");
    let node = json!({"name": "n1b", "api_url": n1.url, "api_token": "node-token-0123456789"});
    let mut body = cluster("cuc3", "voicemail", &[]);
    body["nodes"] = json!([node]);
    o.rest.expect(201, "POST", "/clusters", Some(body)).await;
    assert_eq!(assign(&o, "cuc3", "Lab").await["status"], "Completed");
    let shown = o.cluster("cuc3").await;
    assert!(!shown.to_string().contains("node-token"), "a node's token is never shown: {shown}");

    // One orchestrator per data directory; a restart finds everything it had.
    let dir = o.dir.path().to_path_buf();
    let again = smartlic_fleet::server::start(
        crate::common::config(&dir, smartlic_server::Mode::Fleet),
        std::sync::Arc::new(smartlic_core::SystemClock),
    )
    .await;
    assert!(again.err().unwrap().to_string().contains("in use"));
    o.running.stop();
    let Orchestrator { dir, .. } = o;
    let o = Orchestrator::start_in(dir).await;
    assert_eq!(o.cluster("cuc3").await["status"], "Manually Registered");
    let jobs = o.rest.expect(200, "GET", "/jobs", None).await;
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 3, "{jobs}");
}

/// A satellite of `m`'s cloud serving Lab through local account Plant (approved by files), and
/// an API client of it: (satellite, client id, secret).
async fn satellite_of(m: &Manager) -> (smartlic_server::Running, String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let sat =
        smartlic_server::start(crate::common::config(dir.path(), smartlic_server::Mode::Satellite)).await.unwrap();
    let http = smartlic_agent::tls::https_client(&sat.ca_pem).unwrap();
    let base = format!("https://{}", sat.local_addr);
    let form = [("grant_type", "client_credentials"), ("client_id", "admin"), ("client_secret", crate::common::SECRET)];
    let answer: Value =
        http.post(format!("{base}/oauth/token")).form(&form).send().await.unwrap().json().await.unwrap();
    let rest = crate::common::Rest { base, http, token: answer["access_token"].as_str().unwrap().to_string() };
    let local = json!({"name": "Plant", "smart_account": "example.com"});
    rest.expect(201, "POST", "/api/v1/local-accounts", Some(local)).await;
    let request = rest.expect(200, "GET", "/api/v1/local-accounts/Plant/registration", None).await;
    let body = json!({"registration": request, "virtual_accounts": ["Lab"]});
    let answer = m.rest.expect(200, "POST", "/api/v1/satellites/answer", Some(body)).await;
    rest.expect(200, "POST", "/api/v1/local-accounts/Plant/approval", Some(answer)).await;
    let client = json!({"name": "fleet", "role": "smart-account-admin"});
    let c = rest.expect(201, "POST", "/api/v1/accounts/example.com/api-clients", Some(client)).await;
    let (id, secret) = (c["client_id"].as_str().unwrap().to_string(), c["client_secret"].as_str().unwrap().to_string());
    (sat, id, secret, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_satellite_local_account_syncs_and_its_clusters_register_there() {
    let m = Manager::start().await;
    let (sat, id, secret, _dir) = satellite_of(&m).await;
    let o = Orchestrator::start().await;
    let body = json!({
        "name": "Plant", "kind": "satellite", "base_url": format!("https://{}", sat.local_addr), "ca_pem": sat.ca_pem,
        "client_id": id, "client_secret": secret,
    });
    let added = o.rest.expect(201, "POST", "/accounts", Some(body)).await;
    let job = o.job_of(&added).await;
    assert_eq!(job["status"], "Completed", "{job:#}");
    let vas = o.rest.expect(200, "GET", "/accounts/Plant/virtual-accounts", None).await;
    assert!(vas["virtual_accounts"].as_array().unwrap().iter().any(|v| v["name"] == "Lab"), "{vas}");
    let mode = json!({"license_mode": "hcs"});
    o.rest.expect(200, "PUT", "/accounts/Plant/virtual-accounts/Lab/license-mode", Some(mode)).await;
    o.rest.expect(201, "POST", "/customers", Some(json!({"name": "acme", "account": "Plant"}))).await;
    // The node trusts the satellite's CA for TLS and the cloud's for the signed answers.
    let n1 = Node::start("SATNODE01", &format!("{}\n{}", sat.ca_pem, m.ca_pem)).await;
    o.rest.expect(201, "POST", "/clusters", Some(cluster("cucm9", "call-control", &[("n1", &n1.url)]))).await;
    let body = json!({"account": "Plant", "virtual_account": "Lab"});
    let queued = o.rest.expect(202, "POST", "/clusters/cucm9/assign", Some(body)).await;
    let job = o.job_of(&queued).await;
    assert_eq!(job["status"], "Completed", "{job:#}");
    assert_eq!(n1.registration().await, "COMPLETED");
    assert_eq!(unassign(&o, "cucm9").await["status"], "Completed");
    assert_eq!(n1.registration().await, "NOT_REGISTERED");
}
