//! The transport gateway (G-3) and the satellite forms of the device URL (G-4, S-5), over real
//! HTTPS on loopback: a manager, a gateway relaying to it, and devices driven through their CLI.
//! Every device trusts the manager's CA (`SLA-TrustPoint`, which signs answers) and, when it
//! goes through a gateway, the gateway's CA (`GW-TrustPoint`, for TLS only).

use crate::common;

use common::device_cli::*;
use common::*;
use smartlic_agent::session::Session;
use smartlic_core::agent::format_device_time;
use smartlic_core::Timestamp;
use smartlic_proto::{cert, wire, CertificateAuthority};
use smartlic_server::gateway::{self, Gateway};
use smartlic_server::{Mode, ServerConfig};
use std::path::Path;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const SEND_FAILED: &str = "Fail to send out Call Home HTTP message";
const REGISTERING: &str = "Status: REGISTERING - REGISTRATION IN PROGRESS";
const FAILED: &str = "Status: UNREGISTERED - REGISTRATION FAILED";
const SMART_TRANSPORT: &str = "/SmartTransport";
const LEGACY: &str = "/Transportgateway/services/DeviceRequestHandler";

/// A gateway configuration relaying to `upstream`, whose TLS `upstream_ca` (a file) authenticates.
fn gateway_config(data: &Path, upstream: &str, upstream_ca: &Path) -> ServerConfig {
    let mut config = server_config(data);
    config.mode = Mode::Gateway { upstream: upstream.into(), upstream_ca: upstream_ca.into() };
    config
}

/// A gateway (data in `data`) relaying to the harness's manager; returns it and its base URL.
async fn gateway_to(h: &Harness, data: &Path) -> (Gateway, String) {
    let ca = h.dir.path().join(smartlic_server::tls::CA_FILE);
    let gateway = gateway::start(gateway_config(data, &h.base, &ca)).await.unwrap();
    let base = format!("https://{}", gateway.local_addr);
    (gateway, base)
}

/// A device that trusts the manager's CA and `gateway_ca` (for TLS), configured with `config`.
async fn device(
    h: &Harness,
    dir: &Path,
    sn: &str,
    clock: &Frozen,
    gateway_ca: Option<&str>,
    config: &[String],
) -> Session {
    let mut s = new_device(dir, sn, clock);
    trust(&mut s, "SLA-TrustPoint", &h.server.ca_pem).await;
    if let Some(pem) = gateway_ca {
        trust(&mut s, "GW-TrustPoint", pem).await;
    }
    for line in config {
        run(&mut s, line).await;
    }
    s
}

/// The seeds' three ways to point a device at a satellite or gateway at `url`.
fn smart_url(url: &str) -> Vec<String> {
    vec![format!("license smart url {url}")]
}

fn satellite_mode(url: &str) -> Vec<String> {
    vec![format!("license smart transport-mode satellite url {url}")]
}

fn call_home(url: &str) -> Vec<String> {
    let ios = ["service call-home", "call-home", "profile \"CiscoTAC-1\"", "destination transport-method http"];
    ["license smart transport callhome"]
        .into_iter()
        .chain(ios)
        .map(String::from)
        .chain([format!("destination address http {url}"), "end".into()])
        .collect()
}

async fn instances(h: &Harness, domain: &str) -> usize {
    let a = h.admin("GET", &format!("/api/v1/accounts/{domain}/instances"), None).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    a.body["instances"].as_array().unwrap().len()
}

fn date(t: Timestamp) -> String {
    format_device_time(t)
}

fn clock_set(t: Timestamp) -> String {
    format!("clock set {}", t.to_datetime().format("%H:%M:%S %d %b %Y"))
}

/// Whether `signature` is the manager's over protocol `path` and `body`.
fn signed_by(ca_pem: &str, path: &str, body: &[u8], signature: Option<&str>) -> bool {
    let key = cert::public_key_of_certificate(ca_pem).unwrap();
    signature.is_some_and(|s| key.verify_b64(&wire::response_signing_input(path, body), s))
}

/// Devices configured each of the seeds' ways register, authorize and renew through a gateway
/// (both URL forms, and call home) and directly at the manager's `/SmartTransport`.
#[tokio::test]
async fn devices_register_authorize_and_renew_through_a_gateway_with_the_seeds_urls() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 10)]).await;
    let clock = Frozen::at(&h);
    let root = tempfile::tempdir().unwrap();
    let (gateway, gw) = gateway_to(&h, &root.path().join("gateway")).await;
    let gateway_ca = gateway.ca_pem.clone().expect("the gateway's CA issued its certificate");
    assert!(root.path().join("gateway/ca.pem").exists());
    assert!(!root.path().join("gateway/smartlic.db").exists(), "a gateway keeps no licensing state");
    let forms = [
        ("FCH0000GW01", smart_url(&format!("{gw}{SMART_TRANSPORT}"))),
        ("FCH0000GW02", satellite_mode(&format!("{gw}{LEGACY}"))),
        ("FCH0000GW03", call_home(&format!("{gw}{LEGACY}"))),
        ("FCH0000GW04", satellite_mode(&format!("{}{SMART_TRANSPORT}/", h.base))),
    ];
    let t0 = clock.get();
    for (k, (sn, config)) in forms.iter().enumerate() {
        let mut s = device(&h, &root.path().join(sn), sn, &clock, Some(&gateway_ca), config).await;
        run(&mut s, "license feature \"ACI Essentials\" count 2").await;
        run(&mut s, &format!("license smart register idtoken {token}")).await;
        let shown = status(&mut s).await;
        assert_eq!(registration(&shown)[0], "Status: REGISTERED", "{sn}: {shown}");
        assert_eq!(authorization(&shown)[0], format!("Status: AUTHORIZED on {}", date(t0)), "{sn}: {shown}");
        assert_eq!(instances(&h, "example.com").await, k + 1);
        // Renewals go the same way: the authorization, then the ID certificate.
        run(&mut s, "license smart renew auth").await;
        run(&mut s, "license smart renew id").await;
        let shown = status(&mut s).await;
        let auth = authorization(&shown);
        assert_eq!(auth[1], format!("Last Communication Attempt: SUCCEEDED on {}", date(t0)), "{sn}: {shown}");
        let reg = registration(&shown);
        assert!(reg.contains(&format!("Last Renewal Attempt: SUCCEEDED on {}", date(t0))), "{sn}: {shown}");
    }
    let usage = h.licenses("example.com", "Default").await;
    let essentials = usage["licenses"].as_array().unwrap().iter().find(|l| l["tag"] == "ACI Essentials").unwrap();
    assert_eq!(essentials["in_use"], 8, "{usage}");
}

/// The gateway answers `/health` and relays device paths only; what it relays comes back as
/// the manager answered it, signed over the protocol path whatever the prefix.
#[tokio::test]
async fn a_gateway_relays_device_paths_only_and_answers_untouched() {
    let h = Harness::new().await;
    let root = tempfile::tempdir().unwrap();
    let (gateway, gw) = gateway_to(&h, root.path()).await;
    let http = smartlic_agent::tls::https_client(&gateway.ca_pem.clone().unwrap()).unwrap();
    let health = http.get(format!("{gw}/health")).send().await.unwrap();
    assert_eq!((health.status().as_u16(), health.text().await.unwrap()), (200, "ok".to_string()));
    for (method, path) in [
        ("GET", "/api/v1/accounts"),
        ("POST", "/oauth/token"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/services/api/smart-accounts-and-licensing/v1/accounts"),
        ("POST", "/SmartTransport/oauth/token"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let answer = http.request(method, format!("{gw}{path}")).bearer_auth(h.bearer()).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), 404, "{path}");
        let body: serde_json::Value = answer.json().await.unwrap();
        assert!(body["error"]["message"].as_str().unwrap().contains("transport gateway"), "{path}: {body}");
    }

    // A malformed message: the manager's signed refusal, the same (but for its request ID)
    // through each way in.
    let ways = [
        (&h.http, h.base.clone()),
        (&h.http, format!("{}{LEGACY}", h.base)),
        (&http, gw.clone()),
        (&http, format!("{gw}{SMART_TRANSPORT}")),
        (&http, format!("{gw}{LEGACY}")),
    ];
    for (client, base) in ways {
        let answer = client.post(format!("{base}{}", wire::PATH_REGISTER)).body("{}").send().await.unwrap();
        let status = answer.status();
        let signature = answer.headers().get(wire::SIGNATURE_HEADER).map(|v| v.to_str().unwrap().to_string());
        let body = answer.bytes().await.unwrap();
        assert!(signed_by(&h.server.ca_pem, wire::PATH_REGISTER, &body, signature.as_deref()), "{base}");
        let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!((status.as_u16(), error["error"]["code"].as_str()), (400, Some("MALFORMED_REQUEST")), "{base}");
    }
    // An unknown device path is the manager's signed 404, over the path without the prefix.
    let answer = http.post(format!("{gw}{SMART_TRANSPORT}/device/v9/nothing")).send().await.unwrap();
    assert_eq!(answer.status(), 404);
    let signature = answer.headers().get(wire::SIGNATURE_HEADER).map(|v| v.to_str().unwrap().to_string());
    let body = answer.bytes().await.unwrap();
    assert!(signed_by(&h.server.ca_pem, "/device/v9/nothing", &body, signature.as_deref()));
    // A message larger than any device sends is refused at the gateway.
    let huge = vec![b' '; 2 << 20];
    let answer = http.post(format!("{gw}{}", wire::PATH_REGISTER)).body(huge).send().await.unwrap();
    assert_eq!(answer.status(), 413);
    assert!(answer.headers().get(wire::SIGNATURE_HEADER).is_none());
}

/// A relay that changes the manager's answers (what a gateway would be if it cheated) sits
/// between the gateway and the manager: the device refuses the changed answer.
#[tokio::test]
async fn an_answer_changed_on_the_way_is_refused_by_the_device() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 1)]).await;
    let clock = Frozen::at(&h);
    let root = tempfile::tempdir().unwrap();
    // The relay: HTTPS with a certificate of its own CA, which the gateway trusts as its upstream's.
    let relay_ca = CertificateAuthority::generate("relay CA", clock.get().0 / 1000 - 3600).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_url = format!("https://{}", listener.local_addr().unwrap());
    let (cert, key) = relay_ca.issue_tls_certificate(&["127.0.0.1".into()], clock.get().0 / 1000 - 60).unwrap();
    let tls = smartlic_server::tls::server_config(&cert, &key).unwrap();
    tokio::spawn(smartlic_server::tls::serve(listener, tls, changing_relay(&h), Default::default()));
    let relay_ca_file = root.path().join("relay-ca.pem");
    std::fs::write(&relay_ca_file, relay_ca.cert_pem()).unwrap();
    let gateway = gateway::start(gateway_config(&root.path().join("gw"), &relay_url, &relay_ca_file)).await.unwrap();
    let url = format!("https://{}{SMART_TRANSPORT}", gateway.local_addr);

    let mut s =
        device(&h, &root.path().join("dev"), "FCH0000GW05", &clock, gateway.ca_pem.as_deref(), &smart_url(&url)).await;
    // 3 in use where 1 is licensed: the manager answers OUT OF COMPLIANCE, the relay says AUTHORIZED.
    run(&mut s, "license feature \"ACI Essentials\" count 3").await;
    run(&mut s, &format!("license smart register idtoken {token}")).await;
    let shown = status(&mut s).await;
    assert_eq!(registration(&shown)[0], "Status: REGISTERED", "the registration answer went unchanged: {shown}");
    let auth = authorization(&shown);
    assert!(!auth[0].contains("AUTHORIZED on"), "{shown}");
    assert!(auth.contains(&"Failure reason: Data and signature do not match".to_string()), "{shown}");
}

/// Passes messages to the manager and its answers back, with OUT_OF_COMPLIANCE made AUTHORIZED.
fn changing_relay(h: &Harness) -> axum::Router {
    let (http, base) = (h.http.clone(), h.base.clone());
    axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let mut request = http.post(format!("{base}{}", uri.path())).body(body);
                for name in [wire::SIGNATURE_HEADER, "content-type"] {
                    if let Some(value) = headers.get(name) {
                        request = request.header(name, value.clone());
                    }
                }
                let answer = request.send().await.unwrap();
                let status = answer.status();
                let signature = answer.headers().get(wire::SIGNATURE_HEADER).cloned();
                let text = answer.text().await.unwrap().replace("OUT_OF_COMPLIANCE", "AUTHORIZED");
                let mut response = axum::response::IntoResponse::into_response(text);
                *response.status_mut() = status;
                if let Some(signature) = signature {
                    response.headers_mut().insert(wire::SIGNATURE_HEADER, signature);
                }
                response
            }
        },
    )
}

/// With the manager down, the gateway answers an unsigned 502: the device records the
/// communication failure it would record without a gateway and keeps REGISTERING; when the
/// manager is back, the next retry registers.
#[tokio::test]
async fn with_the_manager_down_devices_fail_to_communicate_and_retry() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = server_config(dir.path());
    config.listen = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let h = Harness::start(dir, config.clone()).await;
    let token = h.account_with("example.com", &[("ACI Advantage", 1)]).await;
    let clock = Frozen::at(&h);
    let root = tempfile::tempdir().unwrap();
    let (gateway, gw) = gateway_to(&h, &root.path().join("gw")).await;
    let Harness { dir, server, .. } = h;
    server.stop();

    let http = smartlic_agent::tls::https_client(&gateway.ca_pem.clone().unwrap()).unwrap();
    let answer = http.post(format!("{gw}{LEGACY}{}", wire::PATH_REGISTER)).body("{}").send().await.unwrap();
    assert_eq!(answer.status(), 502);
    assert!(answer.headers().get(wire::SIGNATURE_HEADER).is_none(), "not an answer of the manager");
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "UPSTREAM_UNREACHABLE", "{body}");

    let manager_ca = std::fs::read_to_string(dir.path().join(smartlic_server::tls::CA_FILE)).unwrap();
    let mut s = new_device(&root.path().join("dev"), "FCH0000GW06", &clock);
    trust(&mut s, "SLA-TrustPoint", &manager_ca).await;
    trust(&mut s, "GW-TrustPoint", &gateway.ca_pem.clone().unwrap()).await;
    run(&mut s, &format!("license smart transport-mode satellite url {gw}{LEGACY}")).await;
    let t0 = clock.get();
    run(&mut s, &format!("license smart register idtoken {token}")).await;
    let reg = registration(&status(&mut s).await);
    assert_eq!(reg[0], REGISTERING);
    assert_eq!(
        reg[2..],
        [
            format!("Initial Registration: FAILED on {}", date(t0)),
            format!("Failure reason: {SEND_FAILED}"),
            format!("Next Registration Attempt: {}", date(t0.plus_ms(15 * MINUTE))),
        ]
    );

    // The manager back on its port, its clock at the retry's time: the retry registers.
    let h = Harness::start(dir, config).await;
    let retry = t0.plus_ms(15 * MINUTE);
    h.set_clock(&retry.to_rfc3339()).await;
    run(&mut s, &clock_set(retry)).await;
    assert_eq!(registration(&status(&mut s).await)[0], "Status: REGISTERED");
    assert_eq!(instances(&h, "example.com").await, 1);
}

/// G-4: a satellite URL with a wrong port keeps REGISTERING through the 15-minute retries, then
/// fails with the seed's reason 4 hours after the first failure; a wrong host fails the same way.
#[tokio::test]
async fn a_wrong_host_or_port_keeps_registering_then_fails() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 1)]).await;
    let clock = Frozen::at(&h);
    let root = tempfile::tempdir().unwrap();
    let wrong_port = format!("https://127.0.0.1:{}{LEGACY}", free_port());
    let mut s = device(&h, &root.path().join("port"), "FCH0000GW07", &clock, None, &satellite_mode(&wrong_port)).await;
    let t0 = clock.get();
    run(&mut s, &format!("license smart register idtoken {token}")).await;
    for k in 0..16 {
        let at = t0.plus_ms(k * 15 * MINUTE);
        run(&mut s, &clock_set(at)).await;
        let reg = registration(&status(&mut s).await);
        assert_eq!(
            (reg[0].as_str(), reg[3].as_str()),
            (REGISTERING, format!("Failure reason: {SEND_FAILED}").as_str())
        );
        assert_eq!(reg[2], format!("Initial Registration: FAILED on {}", date(at)), "retry {k}");
    }
    let at = t0.plus_ms(4 * HOUR);
    run(&mut s, &clock_set(at)).await;
    let reg = registration(&status(&mut s).await);
    assert_eq!(reg[0], FAILED);
    assert_eq!(reg[3], format!("Failure reason: {SEND_FAILED}"));
    assert_eq!(reg[4], format!("Next Registration Attempt: {}", date(at.plus_ms(HOUR))));

    let wrong_host = format!("https://no-such-host.invalid{SMART_TRANSPORT}");
    let mut s = device(&h, &root.path().join("host"), "FCH0000GW08", &clock, None, &smart_url(&wrong_host)).await;
    run(&mut s, &format!("license smart register idtoken {token}")).await;
    let reg = registration(&status(&mut s).await);
    assert_eq!((reg[0].as_str(), reg[3].as_str()), (REGISTERING, format!("Failure reason: {SEND_FAILED}").as_str()));
    assert_eq!(instances(&h, "example.com").await, 0);
}

/// Seed 000: the gateway's certificate must name the host of the device's URL. One issued for
/// another name fails with the seed's communication failure, saying the certificate is why.
#[tokio::test]
async fn a_gateway_certificate_for_another_name_is_refused() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 1)]).await;
    let clock = Frozen::at(&h);
    let root = tempfile::tempdir().unwrap();
    let gateway_ca = CertificateAuthority::generate("gateway CA", clock.get().0 / 1000 - 3600).unwrap();
    let (cert, key) =
        gateway_ca.issue_tls_certificate(&["gateway.example.com".into()], clock.get().0 / 1000 - 60).unwrap();
    std::fs::write(root.path().join("gw.pem"), cert).unwrap();
    std::fs::write(root.path().join("gw-key.pem"), key).unwrap();
    let ca_file = h.dir.path().join(smartlic_server::tls::CA_FILE);
    let mut config = gateway_config(&root.path().join("gw"), &h.base, &ca_file);
    config.tls_cert = Some(root.path().join("gw.pem"));
    config.tls_key = Some(root.path().join("gw-key.pem"));
    let gateway = gateway::start(config).await.unwrap();
    assert!(gateway.ca_pem.is_none() && !root.path().join("gw").exists(), "no CA is made with --tls-cert");

    let url = format!("https://{}{SMART_TRANSPORT}", gateway.local_addr);
    let mut s =
        device(&h, &root.path().join("dev"), "FCH0000GW09", &clock, Some(gateway_ca.cert_pem()), &smart_url(&url))
            .await;
    run(&mut s, &format!("license smart register idtoken {token}")).await;
    let shown = status(&mut s).await;
    let reg = registration(&shown);
    assert_eq!(reg[0], REGISTERING, "{shown}");
    let expected = format!("Failure reason: {SEND_FAILED}: the server certificate is not trusted");
    assert!(reg[3].starts_with(&expected) && reg[3].contains("not valid for name"), "{shown}");
    assert_eq!(instances(&h, "example.com").await, 0);
}

#[tokio::test]
async fn a_gateway_refuses_a_bad_upstream_at_start() {
    let h = Harness::new().await;
    let root = tempfile::tempdir().unwrap();
    let ca_file = h.dir.path().join(smartlic_server::tls::CA_FILE);
    let not_pem = root.path().join("not-a-certificate.txt");
    std::fs::write(&not_pem, "junk").unwrap();
    let cases = [
        ("http://127.0.0.1:8443", ca_file.clone(), "must be an https:// URL"),
        (h.base.as_str(), root.path().join("missing.pem"), "cannot read"),
        (h.base.as_str(), not_pem, "no certificate found"),
    ];
    for (upstream, ca, why) in cases {
        let data = root.path().join("gw");
        let error = format!("{:#}", gateway::start(gateway_config(&data, upstream, &ca)).await.err().unwrap());
        assert!(error.contains(why), "{upstream} {}: {error}", ca.display());
        assert!(!data.exists(), "a refused start creates nothing");
    }
}
