//! The device daemon's product REST API against a real manager on loopback: register,
//! renewals, refusals and deregistration, each answered from the state the exchange left.

use crate::common;

use common::*;
use serde_json::{json, Value};
use smartlic_agent::config::Trustpoint;
use smartlic_agent::daemon::{self, api, Options};
use smartlic_agent::device::Device;
use smartlic_core::{Catalog, Clock, SimulatedClock, Timestamp};
use std::sync::Arc;
use std::time::Duration;

/// The device clock: the manager's simulated clock, shared.
struct Shared(Arc<SimulatedClock>);

impl Clock for Shared {
    fn now(&self) -> Timestamp {
        self.0.now()
    }
}

async fn call(http: &reqwest::Client, base: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("{base}/{path}");
    let mut req = if method == "GET" { http.get(url) } else { http.post(url) };
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn the_product_api_drives_a_device_against_a_real_manager() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 1)]).await;
    let clock = h.server.state.simulated.clone().expect("simulated clock");
    let dir = tempfile::tempdir().unwrap();
    let tags = Catalog::builtin().tags().iter().map(|t| (t.name.clone(), t.display_name.clone())).collect();
    let mut device =
        Device::init(dir.path(), "APIC-SERVER-M3", "FCH2001V0AB", Some("apic1"), tags, Box::new(Shared(clock)))
            .unwrap();
    device.config.trustpoints.insert(
        "SMARTLIC".into(),
        Trustpoint { certificate: Some(h.server.ca_pem.clone()), revocation_check_none: true, ..Trustpoint::default() },
    );
    device.apply(smartlic_core::agent::Event::SetUsage { tag: "ACI Essentials".into(), count: 1 }).await.unwrap();
    // A tag the pool does not hold: the device is out of compliance, its Essentials row is not.
    device.apply(smartlic_core::agent::Event::SetUsage { tag: "ACI Premier".into(), count: 1 }).await.unwrap();
    let lock = daemon::lock(dir.path()).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let options =
        Options { min_sleep: Duration::from_millis(5), max_sleep: Duration::from_millis(200), ..Options::default() };
    let (addr, serve) = daemon::bind(device, lock, "127.0.0.1:0".parse().unwrap(), options, async {
        let _ = rx.await;
    })
    .await
    .unwrap();
    let task = tokio::spawn(serve);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://{addr}{}", api::BASE);
    let b = base.as_str();

    // Direct to the manager.
    let (status, v) =
        call(&http, b, "POST", "transportsettings", Some(json!({"transport_mode": 0, "url": h.base}))).await;
    assert_eq!(status, 200, "{v}");

    // A token the manager refuses: 400 with the seed's token text.
    let (status, v) = call(&http, b, "POST", "register", Some(json!({"token": "bm90IGEgdG9rZW4"}))).await;
    assert_eq!((status, v["code"].as_str()), (400, Some("INVALID_PARAMETER")), "{v}");
    assert_eq!(v["message"], smartlic_proto::wire::text::INVALID_TOKEN);

    // The real token: registered and authorized when the call returns.
    let (status, v) = call(&http, b, "POST", "register", Some(json!({"token": token, "force": false}))).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["registration"]["status"], "COMPLETED");
    assert_eq!(v["registration"]["display"], "REGISTERED");
    assert_eq!(v["registration"]["virtual_account"], "Default");
    assert_eq!(v["authorization"]["status"], "OUT_OF_COMPLIANCE");
    assert_eq!(v["authorization"]["renew_time"]["status"], "SUCCEEDED");
    assert_eq!(
        (&v["features"][0]["tag"], &v["features"][0]["status"]),
        (&json!("ACI Essentials"), &json!("IN_COMPLIANCE"))
    );
    assert_eq!(
        (&v["features"][1]["tag"], &v["features"][1]["status"]),
        (&json!("ACI Premier"), &json!("OUT_OF_COMPLIANCE"))
    );
    assert!(v["authorization"]["expires"].is_string());

    // Registered: no second registration without force, no transport change.
    let (status, v) = call(&http, b, "POST", "register", Some(json!({"token": token}))).await;
    assert_eq!((status, v["message"].as_str()), (405, Some(api::text::ALREADY_REGISTERED)));
    let (status, v) = call(&http, b, "POST", "transportsettings", Some(json!({"transport_mode": 0}))).await;
    assert_eq!((status, v["message"].as_str()), (405, Some(api::text::TRANSPORT_REGISTERED)));

    // Renewals on demand.
    let (status, v) = call(&http, b, "POST", "renewAuth", None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["authorization"]["renew_time"]["status"], "SUCCEEDED");
    let (status, v) = call(&http, b, "POST", "renewID", None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["registration"]["renew_time"]["status"], "SUCCEEDED");

    // Deregistration, then the refusals of an unregistered device.
    let (status, v) = call(&http, b, "POST", "deregister", None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["registration"]["status"], "NOT_REGISTERED");
    assert_eq!(v["authorization"]["status"], "EVAL");
    let (status, v) = call(&http, b, "POST", "renewAuth", None).await;
    assert_eq!((status, v["message"].as_str()), (405, Some(api::text::RENEW_AUTH_UNREGISTERED)));

    // Nothing listening at the manager's address: 500 with the send-error text, retries scheduled.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("https://{}", closed.local_addr().unwrap());
    drop(closed);
    let (status, _) =
        call(&http, b, "POST", "transportsettings", Some(json!({"transport_mode": 0, "url": nowhere}))).await;
    assert_eq!(status, 200);
    let (status, v) = call(&http, b, "POST", "register", Some(json!({"token": token}))).await;
    assert_eq!((status, v["code"].as_str()), (500, Some("INTERNAL_SERVER_ERROR")), "{v}");
    assert_eq!(v["message"], api::text::SEND_ERROR);
    assert_eq!(v["reason"], smartlic_agent::device::SEND_FAILED);
    let (_, v) = call(&http, b, "GET", "licensedetails", None).await;
    assert_eq!(v["registration"]["status"], "RETRY_IN_PROGRESS");
    assert!(v["registration"]["register_time"]["scheduled"].is_string());

    let _ = tx.send(());
    task.await.unwrap().unwrap();
}
