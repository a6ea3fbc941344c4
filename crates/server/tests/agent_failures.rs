//! The failure reasons of seed 004, reproduced by real causes against a real manager over HTTPS
//! on loopback, and the agent's transport and trust behaviour (G-4, G-5, A-5, A-11, G-2).
//!
//! Each device runs on a frozen clock (set from the manager's), so the dates `show license
//! status` prints are known to the second; `clock set` moves it as on a real device.

use crate::common;

use common::device_cli::*;
use common::*;
use serde_json::json;
use smartlic_agent::client::{new_nonce, request_bytes};
use smartlic_agent::device::Device;
use smartlic_agent::session::Session;
use smartlic_core::agent::format_device_time;
use smartlic_core::Timestamp;
use smartlic_proto::wire::{self, AuthorizationStatus};
use smartlic_proto::{CertificateAuthority, KeyAlgorithm, SigningKey};
use smartlic_server::start;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

const SEND_FAILED: &str = "Fail to send out Call Home HTTP message";
const NO_TRANSPORT: &str = "Communication transport not available";
const REGISTERING: &str = "Status: REGISTERING - REGISTRATION IN PROGRESS";
const FAILED: &str = "Status: UNREGISTERED - REGISTRATION FAILED";
/// Seed 002 (last table, `register` 400) and seed 000: a refused or expired token.
const TOKEN_TEXT: &str = "The Product Instance Registration Token you have entered is either invalid or has been expired. Ensure that you have pasted the entire token and that the token has not expired";

fn reopen(dir: &Path, clock: &Frozen) -> Session {
    Session::new(Device::open(dir, Box::new(clock.clone())).unwrap(), true)
}

/// A device in `dir` that trusts the manager's CA and points at `url`.
async fn pointed_at(h: &Harness, dir: &Path, sn: &str, clock: &Frozen, url: &str) -> Session {
    let mut s = new_device(dir, sn, clock);
    trust(&mut s, "SLA-TrustPoint", &h.server.ca_pem).await;
    run(&mut s, &format!("license smart url {url}")).await;
    s
}

fn clock_set(t: Timestamp) -> String {
    format!("clock set {}", t.to_datetime().format("%H:%M:%S %d %b %Y"))
}

fn date(t: Timestamp) -> String {
    format_device_time(t)
}

/// The Registration block of a registration that failed at `at` (the last attempt).
fn failed_block(state: &str, at: Timestamp, reason: &str, next: Option<Timestamp>) -> Vec<String> {
    let mut v = vec![
        state.to_string(),
        "Export-Controlled Functionality: Not Allowed".to_string(),
        format!("Initial Registration: FAILED on {}", date(at)),
        format!("Failure reason: {reason}"),
    ];
    v.extend(next.map(|n| format!("Next Registration Attempt: {}", date(n))));
    v
}

async fn instances(h: &Harness, domain: &str) -> Vec<serde_json::Value> {
    let a = h.admin("GET", &format!("/api/v1/accounts/{domain}/instances"), None).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    a.body["instances"].as_array().unwrap().clone()
}

// ---- seed 004 scenario 1 ------------------------------------------------------------------------

#[tokio::test]
async fn a_second_device_with_the_same_udi_is_refused_until_force() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 2)]).await;
    let clock = Frozen::at(&h);
    let root = tempfile::tempdir().unwrap();
    let mut first = pointed_at(&h, &root.path().join("a"), "FCH2001V0AB", &clock, &h.base).await;
    run(&mut first, &format!("license smart register idtoken {token}")).await;
    assert_eq!(registration(&status(&mut first).await)[0], "Status: REGISTERED");

    // Another state directory, the same PID/SN.
    let mut second = pointed_at(&h, &root.path().join("b"), "FCH2001V0AB", &clock, &h.base).await;
    let now = clock.get();
    run(&mut second, &format!("license smart register idtoken {token}")).await;
    let shown = status(&mut second).await;
    assert_eq!(
        registration(&shown),
        failed_block(FAILED, now, "Product already registered", Some(now.plus_ms(15 * MINUTE))),
        "{shown}"
    );
    assert_eq!(instances(&h, "example.com").await.len(), 1);

    // With force the second device takes the registration over.
    run(&mut second, &format!("license smart register idtoken {token} force")).await;
    let shown = status(&mut second).await;
    let reg = registration(&shown);
    assert_eq!(reg[0], "Status: REGISTERED", "{shown}");
    assert!(reg.contains(&format!("Initial Registration: SUCCEEDED on {}", date(now))), "{shown}");
    let list = instances(&h, "example.com").await;
    assert_eq!(list.len(), 1, "force replaces the instance: {list:?}");
}

// ---- seed 004 scenario 3 ------------------------------------------------------------------------

#[tokio::test]
async fn a_device_clock_a_day_off_is_refused_with_the_tolerance_message() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 1)]).await;
    let clock = Frozen::at(&h);
    let root = tempfile::tempdir().unwrap();
    let mut s = pointed_at(&h, root.path(), "FCH2001V0AB", &clock, &h.base).await;
    let off = clock.get().plus_ms(DAY);
    run(&mut s, &clock_set(off)).await;
    assert!(run(&mut s, "show clock").await.contains(&off.to_datetime().format("%H:%M:%S").to_string()));
    run(&mut s, &format!("license smart register idtoken {token}")).await;
    let shown = status(&mut s).await;
    let reason =
        format!("{{\"timestamp\":[\"The device date '{}' is offset beyond the allowed tolerance limit.\"]}}", off.0);
    // Seed 004 #3: still REGISTERING, retried on the A-5 schedule.
    assert_eq!(
        registration(&shown),
        failed_block(REGISTERING, off, &reason, Some(off.plus_ms(15 * MINUTE))),
        "{shown}"
    );
    assert!(instances(&h, "example.com").await.is_empty());

    // The clock set right, registering again succeeds.
    let right = clock.get();
    run(&mut s, &clock_set(right)).await;
    run(&mut s, &format!("license smart register idtoken {token}")).await;
    assert_eq!(registration(&status(&mut s).await)[0], "Status: REGISTERED");
}

// ---- seed 004 scenario 4 / G-5 ------------------------------------------------------------------

#[tokio::test]
async fn without_a_transport_registration_fails_at_once_and_is_not_retried() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 1)]).await;
    let clock = Frozen::at(&h);
    let root = tempfile::tempdir().unwrap();
    let now = clock.get();

    // No destination configured at all.
    let mut none = new_device(&root.path().join("none"), "FCH2001V0AA", &clock);
    trust(&mut none, "SLA-TrustPoint", &h.server.ca_pem).await;
    run(&mut none, &format!("license smart register idtoken {token}")).await;
    let shown = status(&mut none).await;
    assert_eq!(registration(&shown), failed_block(FAILED, now, NO_TRANSPORT, None), "{shown}");

    // A destination, but the transport turned off.
    let mut off = pointed_at(&h, &root.path().join("off"), "FCH2001V0AB", &clock, &h.base).await;
    run(&mut off, "license smart transport off").await;
    run(&mut off, &format!("license smart register idtoken {token}")).await;
    let shown = status(&mut off).await;
    assert_eq!(registration(&shown), failed_block(FAILED, now, NO_TRANSPORT, None), "{shown}");
    assert!(shown.contains("Transport:\n  Type: Off"), "{shown}");
    // Nothing is retried: a day later it is the same.
    run(&mut off, &clock_set(now.plus_ms(DAY))).await;
    let later = status(&mut off).await;
    assert_eq!(registration(&later), failed_block(FAILED, now, NO_TRANSPORT, None), "{later}");
    assert!(instances(&h, "example.com").await.is_empty());

    // Transport back on: the same device registers.
    clock.set(now);
    run(&mut off, &clock_set(now)).await;
    run(&mut off, "license smart transport smart").await;
    run(&mut off, &format!("license smart register idtoken {token}")).await;
    assert_eq!(registration(&status(&mut off).await)[0], "Status: REGISTERED");
}

// ---- seed 004 scenario 5 / G-4 / A-5 ------------------------------------------------------------

#[tokio::test]
async fn nothing_listening_keeps_registering_every_15_minutes_for_4_hours_then_fails_and_retries_hourly() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 1)]).await;
    let clock = Frozen::at(&h);
    let root = tempfile::tempdir().unwrap();
    let nowhere = format!("https://127.0.0.1:{}", free_port());
    let mut s = pointed_at(&h, root.path(), "FCH2001V0AB", &clock, &nowhere).await;
    let t0 = clock.get();
    run(&mut s, &format!("license smart register idtoken {token}")).await;
    let shown = status(&mut s).await;
    assert_eq!(
        registration(&shown),
        failed_block(REGISTERING, t0, SEND_FAILED, Some(t0.plus_ms(15 * MINUTE))),
        "{shown}"
    );

    // Each retry at its time: every 15 minutes, REGISTERING, up to 4 hours after the first failure...
    for k in 1..=15 {
        let at = t0.plus_ms(k * 15 * MINUTE);
        run(&mut s, &clock_set(at)).await;
        let shown = status(&mut s).await;
        let next = Some(at.plus_ms(15 * MINUTE));
        assert_eq!(registration(&shown), failed_block(REGISTERING, at, SEND_FAILED, next), "retry {k}: {shown}");
    }
    // ... where the 16th retry exhausts them: REGISTRATION FAILED, with the reason and the hourly
    // attempt (G-4) ...
    let at = t0.plus_ms(4 * HOUR);
    run(&mut s, &clock_set(at)).await;
    let shown = status(&mut s).await;
    assert_eq!(registration(&shown), failed_block(FAILED, at, SEND_FAILED, Some(at.plus_ms(HOUR))), "{shown}");
    // ... then hourly.
    for at in [t0.plus_ms(5 * HOUR), t0.plus_ms(6 * HOUR)] {
        run(&mut s, &clock_set(at)).await;
        let shown = status(&mut s).await;
        assert_eq!(registration(&shown), failed_block(FAILED, at, SEND_FAILED, Some(at.plus_ms(HOUR))), "{shown}");
    }
    // Between two attempts nothing is sent.
    let between = t0.plus_ms(6 * HOUR + 30 * MINUTE);
    run(&mut s, &clock_set(between)).await;
    let shown = status(&mut s).await;
    let last = t0.plus_ms(6 * HOUR);
    assert_eq!(registration(&shown), failed_block(FAILED, last, SEND_FAILED, Some(last.plus_ms(HOUR))), "{shown}");
}

// ---- seed 004 scenario 9 ------------------------------------------------------------------------

#[tokio::test]
async fn a_tampered_device_key_reads_data_and_signature_do_not_match() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 1)]).await;
    let clock = Frozen::at(&h);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("dev");
    let mut s = pointed_at(&h, &dir, "FCH2001V0AB", &clock, &h.base).await;
    run(&mut s, "license feature \"ACI Essentials\" count 1").await;
    let registered_at = clock.get();
    run(&mut s, &format!("license smart register idtoken {token}")).await;
    let shown = status(&mut s).await;
    assert_eq!(authorization(&shown)[0], format!("Status: AUTHORIZED on {}", date(registered_at)), "{shown}");
    let deadline = authorization(&shown).last().unwrap().clone();
    assert!(deadline.starts_with("Communication Deadline: "), "{shown}");
    drop(s);

    // Another key in identity.json, in the same format (base64 of its PKCS#8).
    let path: PathBuf = dir.join("identity.json");
    let mut identity: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let other = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
    use base64::Engine;
    identity["key"] = json!(base64::engine::general_purpose::STANDARD.encode(other.pkcs8_der()));
    std::fs::write(&path, serde_json::to_vec_pretty(&identity).unwrap()).unwrap();

    // A few minutes on (within the manager's clock tolerance).
    let later = registered_at.plus_ms(5 * MINUTE);
    clock.set(later);
    let mut s = reopen(&dir, &clock);
    run(&mut s, "license smart renew auth").await;
    let shown = status(&mut s).await;
    assert_eq!(
        authorization(&shown),
        vec![
            format!("Status: AUTHORIZED on {}", date(registered_at)),
            format!("Last Communication Attempt: FAILED on {}", date(later)),
            "Failure reason: Data and signature do not match".to_string(),
            format!("Next Communication Attempt: {}", date(later.plus_ms(23 * HOUR))),
            deadline,
        ],
        "{shown}"
    );
    assert!(run(&mut s, "show license eventlog").await.contains("Data and signature do not match"));
}

// ---- seed 000/002: an expired token --------------------------------------------------------------

#[tokio::test]
async fn an_expired_token_is_refused_with_the_seed_text() {
    let h = Harness::new().await;
    h.account_with("example.com", &[("ACI Advantage", 1)]).await;
    let token = h.token("example.com", "Default", json!({"expires_days": 1})).await;
    let clock = Frozen::at(&h);
    // Both clocks two days on: the token expired yesterday.
    let later = clock.get().plus_ms(2 * DAY);
    h.set_clock(&later.to_rfc3339()).await;
    clock.set(later);
    let root = tempfile::tempdir().unwrap();
    let mut s = pointed_at(&h, root.path(), "FCH2001V0AB", &clock, &h.base).await;
    run(&mut s, &format!("license smart register idtoken {token}")).await;
    let shown = status(&mut s).await;
    assert_eq!(
        registration(&shown),
        failed_block(FAILED, later, TOKEN_TEXT, Some(later.plus_ms(15 * MINUTE))),
        "{shown}"
    );
    assert!(instances(&h, "example.com").await.is_empty());
}

// ---- trust points -------------------------------------------------------------------------

#[tokio::test]
async fn a_server_whose_certificate_does_not_chain_to_a_trust_point_is_refused() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 1)]).await;
    let clock = Frozen::at(&h);
    let root = tempfile::tempdir().unwrap();
    let other = CertificateAuthority::generate("another CA", clock.get().0 / 1000 - 3600).unwrap();
    let mut s = new_device(root.path(), "FCH2001V0AB", &clock);
    trust(&mut s, "SLA-TrustPoint", other.cert_pem()).await;
    run(&mut s, &format!("license smart url {}", h.base)).await;
    let now = clock.get();
    run(&mut s, &format!("license smart register idtoken {token}")).await;
    let shown = status(&mut s).await;
    let reg = registration(&shown);
    assert_eq!(reg[0], REGISTERING, "{shown}");
    assert_eq!(reg[2], format!("Initial Registration: FAILED on {}", date(now)), "{shown}");
    assert!(
        reg[3].starts_with(&format!("Failure reason: {SEND_FAILED}: the server certificate is not trusted")),
        "{shown}"
    );
    assert_eq!(reg[4], format!("Next Registration Attempt: {}", date(now.plus_ms(15 * MINUTE))), "{shown}");
    assert!(instances(&h, "example.com").await.is_empty(), "nothing reached the manager");

    // The manager's CA imported into the same trust point: the same device registers.
    trust(&mut s, "SLA-TrustPoint", &h.server.ca_pem).await;
    run(&mut s, &format!("license smart register idtoken {token}")).await;
    assert_eq!(registration(&status(&mut s).await)[0], "Status: REGISTERED");
    assert_eq!(instances(&h, "example.com").await.len(), 1);
}

/// A device may hold several trust points (the manager's, a TLS-intercepting proxy's, ...);
/// one that sorts before the manager's must not make the manager's answers unreadable.
#[tokio::test]
async fn another_trust_point_besides_the_managers_does_not_break_registration() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 1)]).await;
    let clock = Frozen::at(&h);
    let root = tempfile::tempdir().unwrap();
    let other = CertificateAuthority::generate("proxy CA", clock.get().0 / 1000 - 3600).unwrap();
    let mut s = new_device(root.path(), "FCH2001V0AB", &clock);
    trust(&mut s, "A-Proxy", other.cert_pem()).await;
    trust(&mut s, "SLA-TrustPoint", &h.server.ca_pem).await;
    run(&mut s, &format!("license smart url {}", h.base)).await;
    run(&mut s, &format!("license smart register idtoken {token}")).await;
    let shown = status(&mut s).await;
    assert_eq!(registration(&shown)[0], "Status: REGISTERED", "{shown}");
}

#[tokio::test]
async fn a_server_whose_name_does_not_match_its_certificate_is_refused() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 1)]).await;
    let clock = Frozen::at(&h);
    let ca_pem = h.server.ca_pem.clone();
    // The manager's own CA issues a certificate for another name; the manager serves it.
    let data = h.dir.path().to_path_buf();
    let (cert, key) =
        h.server.state.ca.issue_tls_certificate(&["manager.example.com".into()], clock.get().0 / 1000 - 60).unwrap();
    std::fs::write(data.join("named.pem"), cert).unwrap();
    std::fs::write(data.join("named-key.pem"), key).unwrap();
    let Harness { dir, server, .. } = h;
    server.stop();
    let mut cfg = server_config(dir.path());
    cfg.tls_cert = Some(dir.path().join("named.pem"));
    cfg.tls_key = Some(dir.path().join("named-key.pem"));
    let named = start(cfg).await.unwrap();
    let base = format!("https://{}", named.local_addr);

    let root = tempfile::tempdir().unwrap();
    let mut s = new_device(root.path(), "FCH2001V0AB", &clock);
    trust(&mut s, "SLA-TrustPoint", &ca_pem).await;
    run(&mut s, &format!("license smart url {base}")).await;
    let now = clock.get();
    run(&mut s, &format!("license smart register idtoken {token}")).await;
    let shown = status(&mut s).await;
    let reg = registration(&shown);
    assert_eq!(reg[0], REGISTERING, "{shown}");
    assert!(
        reg[3].starts_with(&format!("Failure reason: {SEND_FAILED}: the server certificate is not trusted")),
        "{shown}"
    );
    assert_eq!(reg[4], format!("Next Registration Attempt: {}", date(now.plus_ms(15 * MINUTE))), "{shown}");
    named.stop();

    // The same manager with a certificate for its address: the same device registers, and it
    // is the first registration the manager sees.
    let h = Harness::start(dir, server_config(&data)).await;
    assert!(instances(&h, "example.com").await.is_empty(), "nothing was registered through the wrong name");
    run(&mut s, &format!("license smart url {}", h.base)).await;
    run(&mut s, &format!("license smart register idtoken {token}")).await;
    assert_eq!(registration(&status(&mut s).await)[0], "Status: REGISTERED");
    assert_eq!(instances(&h, "example.com").await.len(), 1);
}

// ---- G-2 / G-4: a forward proxy from the device configuration -------------------------------------

#[tokio::test]
async fn a_device_registers_through_the_proxy_it_is_configured_with() {
    let Some(proxy) = tinyproxy(None).await else { return };
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 1)]).await;
    let clock = Frozen::at(&h);
    let root = tempfile::tempdir().unwrap();
    let mut s = new_device(root.path(), "FCH2001V0AB", &clock);
    trust(&mut s, "SLA-TrustPoint", &h.server.ca_pem).await;
    callhome_via_proxy(&mut s, &h.base, proxy.port).await;
    let shown = status(&mut s).await;
    assert!(shown.contains(&format!("Proxy:\n    Address: 127.0.0.1\n    Port: {}", proxy.port)), "{shown}");
    run(&mut s, "license feature \"ACI Essentials\" count 1").await;
    let t0 = clock.get();
    run(&mut s, &format!("license smart register idtoken {token}")).await;
    let shown = status(&mut s).await;
    assert_eq!(registration(&shown)[0], "Status: REGISTERED", "{shown}");
    assert_eq!(authorization(&shown)[0], format!("Status: AUTHORIZED on {}", date(t0)), "{shown}");

    // The proxy really is the path: without it the next request cannot be sent.
    drop(proxy);
    let t1 = t0.plus_ms(5 * MINUTE);
    run(&mut s, &clock_set(t1)).await;
    run(&mut s, "license smart renew auth").await;
    let shown = status(&mut s).await;
    let auth = authorization(&shown);
    assert_eq!(auth[1], format!("Last Communication Attempt: FAILED on {}", date(t1)), "{shown}");
    assert_eq!(auth[2], format!("Failure reason: {SEND_FAILED}"), "{shown}");
    assert_eq!(auth[3], format!("Next Communication Attempt: {}", date(t1.plus_ms(23 * HOUR))), "{shown}");
    // Direct again (proxy disabled), the same request goes through.
    run(&mut s, "callhome").await;
    run(&mut s, "no transport http proxy enable").await;
    run(&mut s, "end").await;
    run(&mut s, "license smart renew auth").await;
    let shown = status(&mut s).await;
    assert_eq!(authorization(&shown)[1], format!("Last Communication Attempt: SUCCEEDED on {}", date(t1)), "{shown}");
}

#[tokio::test]
async fn a_wrong_proxy_port_keeps_registering_while_retries_run() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 1)]).await;
    let clock = Frozen::at(&h);
    let root = tempfile::tempdir().unwrap();
    let mut s = new_device(root.path(), "FCH2001V0AB", &clock);
    trust(&mut s, "SLA-TrustPoint", &h.server.ca_pem).await;
    callhome_via_proxy(&mut s, &h.base, free_port()).await;
    let t0 = clock.get();
    run(&mut s, &format!("license smart register idtoken {token}")).await;
    let shown = status(&mut s).await;
    assert_eq!(
        registration(&shown),
        failed_block(REGISTERING, t0, SEND_FAILED, Some(t0.plus_ms(15 * MINUTE))),
        "{shown}"
    );
    for k in 1..=2 {
        let at = t0.plus_ms(k * 15 * MINUTE);
        run(&mut s, &clock_set(at)).await;
        let shown = status(&mut s).await;
        assert_eq!(
            registration(&shown),
            failed_block(REGISTERING, at, SEND_FAILED, Some(at.plus_ms(15 * MINUTE))),
            "{shown}"
        );
    }
    assert!(instances(&h, "example.com").await.is_empty());
    // The controller form with the proxy removed (`transport-mode smart-licensing`): direct,
    // with the device clock back on the manager's.
    run(&mut s, &clock_set(t0)).await;
    run(&mut s, "license smart transport-mode smart-licensing").await;
    run(&mut s, &format!("license smart register idtoken {token}")).await;
    let shown = status(&mut s).await;
    assert_eq!(registration(&shown)[0], "Status: REGISTERED", "{shown}");
}

#[tokio::test]
async fn a_proxy_asking_for_credentials_gets_the_configured_ones() {
    let Some(proxy) = tinyproxy(Some(("device", "proxy-secret"))).await else { return };
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 1)]).await;
    let clock = Frozen::at(&h);
    let root = tempfile::tempdir().unwrap();
    let mut s = new_device(root.path(), "FCH2001V0AC", &clock);
    trust(&mut s, "SLA-TrustPoint", &h.server.ca_pem).await;
    callhome_via_proxy(&mut s, &h.base, proxy.port).await;
    // Wrong credentials: the proxy refuses the tunnel, the device keeps trying (G-4).
    run(&mut s, "callhome").await;
    run(&mut s, "transport http proxy username device password wrong").await;
    run(&mut s, "end").await;
    run(&mut s, &format!("license smart register idtoken {token}")).await;
    let shown = status(&mut s).await;
    assert_eq!(registration(&shown)[0], "Status: REGISTERING - REGISTRATION IN PROGRESS", "{shown}");
    assert!(!shown.contains("proxy-secret") && !shown.contains("wrong"), "no password is shown: {shown}");
    // The right ones: the next retry registers.
    run(&mut s, "callhome").await;
    run(&mut s, "transport http proxy username device password proxy-secret").await;
    run(&mut s, "end").await;
    let retry = clock.get().plus_ms(15 * MINUTE);
    h.set_clock(&retry.to_rfc3339()).await;
    run(&mut s, &clock_set(retry)).await;
    let shown = status(&mut s).await;
    assert_eq!(registration(&shown)[0], "Status: REGISTERED", "{shown}");
    assert_eq!(instances(&h, "example.com").await.len(), 1);
}

// ---- Trust in the manager's answers: proxies, replays, lost answers (issue 10) --------------------

/// A TLS-inspecting proxy (G-2): an HTTPS server on loopback whose certificate is issued by
/// `proxy_ca`, a CA the device imported as a trust point, serving `app`. Returns its URL.
async fn inspecting_proxy(proxy_ca: &CertificateAuthority, now: Timestamp, app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let (cert, key) = proxy_ca.issue_tls_certificate(&["127.0.0.1".into()], now.0 / 1000 - 60).unwrap();
    let config = smartlic_server::tls::server_config(&cert, &key).unwrap();
    tokio::spawn(smartlic_server::tls::serve(listener, config, app, Default::default()));
    url
}

fn proxy_ca(clock: &Frozen) -> Arc<CertificateAuthority> {
    Arc::new(CertificateAuthority::generate("inspecting proxy CA", clock.get().0 / 1000 - 3600).unwrap())
}

/// A device that trusts the proxy's CA (`A-Proxy`, for TLS) and the manager's, as
/// `manager_trustpoint`, pointed at `url`.
async fn behind_proxy(
    h: &Harness,
    dir: &Path,
    sn: &str,
    clock: &Frozen,
    proxy: &CertificateAuthority,
    manager_trustpoint: &str,
    url: &str,
) -> Session {
    let mut s = new_device(dir, sn, clock);
    trust(&mut s, "A-Proxy", proxy.cert_pem()).await;
    trust(&mut s, manager_trustpoint, &h.server.ca_pem).await;
    run(&mut s, &format!("license smart url {url}")).await;
    s
}

/// An answer body that breaks off at once: the connection drops, the device never reads it.
struct Lost;

impl axum::body::HttpBody for Lost {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Ready(Some(Err(std::io::Error::other("the answer is lost on its way"))))
    }
}

/// Passes device requests on to the manager and its answers back, except that the answer to
/// the next request at each path in `lose` is lost on its way back, after the manager acted.
fn relay(h: &Harness, lose: Arc<std::sync::Mutex<Vec<&'static str>>>) -> axum::Router {
    use axum::response::IntoResponse;
    let (http, base) = (h.http.clone(), h.base.clone());
    axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let (http, base, lose) = (http.clone(), base.clone(), lose.clone());
            async move {
                let mut request = http.post(format!("{base}{}", uri.path())).body(body);
                if let Some(signature) = headers.get(wire::SIGNATURE_HEADER) {
                    request = request.header(wire::SIGNATURE_HEADER, signature.clone());
                }
                let answer = request.send().await.unwrap();
                let status = answer.status();
                let signature = answer.headers().get(wire::SIGNATURE_HEADER).cloned();
                let bytes = answer.bytes().await.unwrap();
                let lost = {
                    let mut lose = lose.lock().unwrap();
                    lose.iter().position(|p| *p == uri.path()).map(|i| lose.remove(i)).is_some()
                };
                let mut response =
                    if lost { axum::body::Body::new(Lost).into_response() } else { bytes.into_response() };
                *response.status_mut() = status;
                if let Some(signature) = signature {
                    response.headers_mut().insert(wire::SIGNATURE_HEADER, signature);
                }
                response
            }
        },
    )
}

/// Answers like the manager at `path`, with `status`, `body` and `signature`.
fn answering(path: &str, status: u16, signature: String, body: Vec<u8>) -> axum::Router {
    let status = axum::http::StatusCode::from_u16(status).unwrap();
    axum::Router::new()
        .route(path, axum::routing::post(move || async move { (status, [(wire::SIGNATURE_HEADER, signature)], body) }))
}

/// A proxy whose CA the operator imported is trusted for TLS only: AUTHORIZED answers it signs
/// itself are refused, whether the manager's CA is in the designated trust point or in another
/// one, recorded at registration because it signed the registration answer.
#[tokio::test]
async fn answers_signed_by_an_imported_proxy_ca_are_refused() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 1)]).await;
    let clock = Frozen::at(&h);
    let root = tempfile::tempdir().unwrap();
    let proxy = proxy_ca(&clock);
    let forger = {
        let proxy = proxy.clone();
        axum::Router::new().route(
            wire::PATH_AUTHORIZE,
            axum::routing::post(move |body: axum::body::Bytes| async move {
                let req: wire::AuthorizeRequest = serde_json::from_slice(&body).unwrap();
                let days = |d: i64| d * 86_400;
                let forged = wire::AuthorizeResponse {
                    request_nonce: req.envelope.nonce,
                    timestamp: req.envelope.timestamp,
                    status: AuthorizationStatus::Authorized,
                    entitlements: req
                        .usage
                        .iter()
                        .map(|u| wire::EntitlementStatus {
                            tag: u.tag.clone(),
                            display_name: u.tag.clone(),
                            count: u.count,
                            status: AuthorizationStatus::Authorized,
                        })
                        .collect(),
                    valid_until: req.envelope.timestamp + 90 * DAY,
                    intervals: wire::Intervals {
                        id_renew_secs: days(180),
                        auth_renew_secs: days(30),
                        auth_validity_secs: days(90),
                    },
                };
                let bytes = serde_json::to_vec(&forged).unwrap();
                let signature =
                    proxy.signer().sign_b64(&wire::response_signing_input(wire::PATH_AUTHORIZE, &bytes)).unwrap();
                ([(wire::SIGNATURE_HEADER, signature)], bytes)
            }),
        )
    };
    let forger = inspecting_proxy(&proxy, clock.get(), forger).await;
    for (sn, manager_trustpoint) in [("FCH2001V0AB", "SLA-TrustPoint"), ("FCH2001V0AC", "LicRoot")] {
        let mut s = behind_proxy(&h, &root.path().join(sn), sn, &clock, &proxy, manager_trustpoint, &h.base).await;
        // More than the pool holds: the manager says out of compliance.
        run(&mut s, "license feature \"ACI Essentials\" count 5").await;
        let at = clock.get();
        run(&mut s, &format!("license smart register idtoken {token}")).await;
        let out_of_compliance = format!("Status: OUT OF COMPLIANCE on {}", date(at));
        let shown = status(&mut s).await;
        assert_eq!(authorization(&shown)[0], out_of_compliance, "{shown}");
        // The proxy answers in the manager's place, signing with its own CA.
        run(&mut s, &format!("license smart url {forger}")).await;
        run(&mut s, "license smart renew auth").await;
        let shown = status(&mut s).await;
        let auth = authorization(&shown);
        assert_eq!(auth[0], out_of_compliance, "{manager_trustpoint}: {shown}");
        assert!(auth.contains(&"Failure reason: Data and signature do not match".to_string()), "{shown}");
    }
}

/// A refusal the manager signed for one request, recorded and replayed as the answer to
/// another, cannot make a device drop its registration.
#[tokio::test]
async fn a_recorded_signed_error_replayed_to_a_device_is_ignored() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 1)]).await;
    let clock = Frozen::at(&h);
    let root = tempfile::tempdir().unwrap();
    // A genuine signed "re-register the instance" refusal, recorded on its way.
    let req = wire::AuthorizeRequest {
        envelope: wire::Envelope { version: 1, timestamp: h.now_ms(), nonce: new_nonce() },
        instance_id: "8c1e5d2a-0000-4000-8000-000000000001".into(),
        hostname: None,
        usage: vec![],
    };
    let stranger = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
    let (body, signature) = request_bytes(wire::PATH_AUTHORIZE, &stranger, &req).unwrap();
    let answer = h
        .http
        .post(format!("{}{}", h.base, wire::PATH_AUTHORIZE))
        .header(wire::SIGNATURE_HEADER, signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 404);
    let signature = answer.headers()[wire::SIGNATURE_HEADER].to_str().unwrap().to_string();
    let recorded = answer.bytes().await.unwrap().to_vec();
    assert!(String::from_utf8_lossy(&recorded).contains(wire::code::UNKNOWN_INSTANCE));

    let proxy = proxy_ca(&clock);
    let replayer =
        inspecting_proxy(&proxy, clock.get(), answering(wire::PATH_AUTHORIZE, 404, signature, recorded)).await;
    let mut s = behind_proxy(&h, root.path(), "FCH2001V0AB", &clock, &proxy, "SLA-TrustPoint", &h.base).await;
    run(&mut s, "license feature \"ACI Essentials\" count 1").await;
    let at = clock.get();
    run(&mut s, &format!("license smart register idtoken {token}")).await;
    run(&mut s, &format!("license smart url {replayer}")).await;
    run(&mut s, "license smart renew auth").await;
    let shown = status(&mut s).await;
    assert_eq!(registration(&shown)[0], "Status: REGISTERED", "{shown}");
    let auth = authorization(&shown);
    assert_eq!(auth[0], format!("Status: AUTHORIZED on {}", date(at)), "{shown}");
    assert!(auth.iter().any(|l| l.starts_with("Failure reason:") && l.contains("another request")), "{shown}");
    // Back at the manager, the same identity is still good.
    run(&mut s, &format!("license smart url {}", h.base)).await;
    run(&mut s, "license smart renew auth").await;
    let shown = status(&mut s).await;
    assert_eq!(authorization(&shown)[1], format!("Last Communication Attempt: SUCCEEDED on {}", date(at)), "{shown}");
}

/// The device's identity file, as JSON.
fn identity_of(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("identity.json")).unwrap()).unwrap()
}

#[tokio::test]
async fn a_registration_whose_answer_was_lost_succeeds_at_the_next_attempt() {
    let h = Harness::new().await;
    h.account_with("example.com", &[("ACI Advantage", 1)]).await;
    let once = h.token("example.com", "Default", json!({"max_uses": 1})).await;
    let clock = Frozen::at(&h);
    let root = tempfile::tempdir().unwrap();
    let proxy = proxy_ca(&clock);
    let lose = Arc::new(std::sync::Mutex::new(vec![wire::PATH_REGISTER]));
    let url = inspecting_proxy(&proxy, clock.get(), relay(&h, lose.clone())).await;
    let mut s = behind_proxy(&h, root.path(), "FCH2001V0AB", &clock, &proxy, "SLA-TrustPoint", &url).await;
    let t0 = clock.get();
    run(&mut s, &format!("license smart register idtoken {once}")).await;
    let shown = status(&mut s).await;
    assert_eq!(
        registration(&shown),
        failed_block(REGISTERING, t0, SEND_FAILED, Some(t0.plus_ms(15 * MINUTE))),
        "{shown}"
    );
    let registered = instances(&h, "example.com").await;
    assert_eq!(registered.len(), 1, "the manager registered the device; only its answer was lost");
    // The retry, on the device and on the manager clock, is the same registration.
    let retry = t0.plus_ms(15 * MINUTE);
    h.set_clock(&retry.to_rfc3339()).await;
    run(&mut s, &clock_set(retry)).await;
    let shown = status(&mut s).await;
    assert_eq!(registration(&shown)[0], "Status: REGISTERED", "{shown}");
    assert_eq!(instances(&h, "example.com").await.len(), 1);
    assert_eq!(identity_of(root.path())["instance_id"], registered[0]["id"]);
}

#[tokio::test]
async fn an_id_renewal_whose_answer_was_lost_succeeds_when_retried() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 1)]).await;
    let clock = Frozen::at(&h);
    let root = tempfile::tempdir().unwrap();
    let proxy = proxy_ca(&clock);
    let lose = Arc::new(std::sync::Mutex::new(vec![]));
    let url = inspecting_proxy(&proxy, clock.get(), relay(&h, lose.clone())).await;
    let mut s = behind_proxy(&h, root.path(), "FCH2001V0AB", &clock, &proxy, "SLA-TrustPoint", &url).await;
    run(&mut s, "license feature \"ACI Essentials\" count 1").await;
    run(&mut s, &format!("license smart register idtoken {token}")).await;
    // The registration ran in the background; the next command takes its outcome.
    assert_eq!(registration(&status(&mut s).await)[0], "Status: REGISTERED");
    let before = identity_of(root.path());
    // The manager renews the certificate for the device's next key; the answer is lost.
    lose.lock().unwrap().push(wire::PATH_RENEW_ID);
    run(&mut s, "license smart renew id").await;
    assert_eq!(identity_of(root.path())["key"], before["key"], "the device still holds its old key");
    let shown = status(&mut s).await;
    assert!(shown.contains(&format!("Failure reason: {SEND_FAILED}")), "{shown}");
    // Signed with the old key, the retry and the authorization go through.
    run(&mut s, "license smart renew id").await;
    let at = clock.get();
    run(&mut s, "license smart renew auth").await;
    let shown = status(&mut s).await;
    assert_eq!(registration(&shown)[0], "Status: REGISTERED", "{shown}");
    assert_eq!(authorization(&shown)[1], format!("Last Communication Attempt: SUCCEEDED on {}", date(at)), "{shown}");
    let after = identity_of(root.path());
    assert_ne!(after["key"], before["key"]);
    let listed = instances(&h, "example.com").await;
    assert_eq!(listed[0]["certificate_serial"], after["certificate_serial"]);
}
