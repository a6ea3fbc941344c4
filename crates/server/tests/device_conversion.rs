//! Device-led conversion end to end (V-1, seed 000): a simulated device driven through its CLI,
//! holding legacy licenses, against a real manager over HTTPS on loopback. Conversion is off
//! until a smart account administrator enables it; it deposits once per device; unknown legacy
//! names are reported; a manager that does not answer for 10 minutes fails it with a major
//! fault, and a retry works; through a satellite it is refused.

use crate::common;

use common::device_cli::*;
use common::*;
use serde_json::{json, Value};
use smartlic_agent::session::Session;
use smartlic_core::agent::{Fault, CONVERSION_TIMED_OUT, CONVERSION_TIMEOUT_MS, SATELLITE_NOT_SUPPORTED};
use smartlic_proto::wire::text::CONVERSION_NOT_ENABLED;
use std::path::Path;

const DOMAIN: &str = "example.com";

/// A registered device of `example.com`'s Default pool holding 2 `ACI-LEAF-ADV` and one legacy
/// license no catalogue knows.
async fn registered_device(h: &Harness, dir: &Path, clock: &Frozen) -> Session {
    let token = h.account_with(DOMAIN, &[]).await;
    let mut s = new_device(dir, "FCH2001V0AB", clock);
    trust(&mut s, "SLA-TrustPoint", &h.server.ca_pem).await;
    run(&mut s, &format!("license smart url {}", h.base)).await;
    run(&mut s, "license legacy \"ACI-LEAF-ADV\" count 2").await;
    run(&mut s, "license legacy \"OLD-FEATURE-X\" count 1").await;
    // Conversion requires registration.
    let early = s.line("license smart conversion start").await.unwrap();
    assert!(early.error && early.output.contains("not registered"), "{}", early.output);
    run(&mut s, &format!("license smart register idtoken {token}")).await;
    assert!(status(&mut s).await.contains("Status: REGISTERED"));
    s
}

/// The lines of the `Smart License Conversion:` block, after its title.
fn conversion(status: &str) -> Vec<String> {
    block(status, "Smart License Conversion:")
}

async fn set_conversion(h: &Harness, token: &str, path: &str, enabled: bool) -> Answer {
    h.call(token, "PATCH", &format!("/api/v1/accounts/{DOMAIN}{path}/conversion"), Some(json!({"enabled": enabled})))
        .await
}

async fn converted_events(h: &Harness) -> Vec<Value> {
    let a = h.admin("GET", &format!("/api/v1/accounts/{DOMAIN}/events"), None).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    a.body["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "license.converted").cloned().collect()
}

#[tokio::test]
async fn a_device_converts_once_where_enabled_and_unknown_names_are_reported() {
    let h = Harness::new().await;
    let clock = Frozen::at(&h);
    let root = tempfile::tempdir().unwrap();
    let mut s = registered_device(&h, root.path(), &clock).await;
    assert_eq!(conversion(&status(&mut s).await), ["Automatic Conversion Enabled: False", "Status: Not started"]);

    // Off by default: refused with the reason, nothing deposited.
    run(&mut s, "license smart conversion start").await;
    let refused = conversion(&status(&mut s).await);
    assert_eq!(refused[1], "Status: Failed");
    assert_eq!(refused[2], format!("Failure reason: {CONVERSION_NOT_ENABLED}"));
    assert!(s.device.agent.faults.contains(&Fault::ConversionFailed));
    assert!(h.licenses(DOMAIN, "Default").await["licenses"].as_array().unwrap().is_empty());

    // Only a smart account administrator enables it.
    let (_, _, user) = h.client(DOMAIN, json!({"name": "user", "role": "smart-account-user"})).await;
    let denied = set_conversion(&h, &user, "/virtual-accounts/Default", true).await;
    assert_eq!(denied.status, 403, "{:?}", denied.body);
    let (_, _, admin) = h.client(DOMAIN, json!({"name": "sa-admin", "role": "smart-account-admin"})).await;
    let on = set_conversion(&h, &admin, "/virtual-accounts/Default", true).await;
    assert_eq!(on.status, 200, "{:?}", on.body);
    assert_eq!(on.body, json!({"enabled": false, "virtual_accounts": ["Default"]}));

    // The retry converts: the known name deposited with its marker, the unknown one reported.
    run(&mut s, "license smart conversion start").await;
    assert_eq!(
        conversion(&status(&mut s).await),
        [
            "Automatic Conversion Enabled: False",
            "Status: Successful",
            "Legacy license \"ACI-LEAF-ADV\" count 2: converted to 2 ACI Advantage",
            "Legacy license \"OLD-FEATURE-X\" count 1: not converted: unknown legacy license",
        ]
    );
    assert!(!s.device.agent.faults.contains(&Fault::ConversionFailed), "the retry clears the fault");
    let licenses = h.licenses(DOMAIN, "Default").await;
    assert_eq!(shown(&licenses, "ACI Advantage"), "2");
    let record = &licenses["licenses"][0]["records"][0];
    assert_eq!((record["sku"].as_str(), record["type"].as_str()), (Some("DLC:ACI-LEAF-ADV"), Some("perpetual")));
    let events = converted_events(&h).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0]["detail"].as_str().unwrap().contains("unknown: OLD-FEATURE-X"), "{events:?}");

    // Once in the device's lifetime: a second conversion says so and deposits nothing.
    run(&mut s, "license smart conversion start").await;
    assert_eq!(conversion(&status(&mut s).await)[1], "Status: Already converted");
    assert_eq!(shown(&h.licenses(DOMAIN, "Default").await, "ACI Advantage"), "2");
    assert_eq!(converted_events(&h).await.len(), 1);

    // Disabled again: the setting reads back off.
    let off = set_conversion(&h, &admin, "/virtual-accounts/Default", false).await;
    assert_eq!(off.body, json!({"enabled": false, "virtual_accounts": []}));
    let shown_setting = h.admin("GET", &format!("/api/v1/accounts/{DOMAIN}/conversion"), None).await;
    assert_eq!(shown_setting.body, json!({"enabled": false, "virtual_accounts": []}));
}

#[tokio::test]
async fn no_answer_for_ten_minutes_fails_with_a_major_fault_and_a_retry_converts() {
    let h = Harness::new().await;
    let clock = Frozen::at(&h);
    let root = tempfile::tempdir().unwrap();
    let mut s = registered_device(&h, root.path(), &clock).await;
    let (_, _, admin) = h.client(DOMAIN, json!({"name": "sa-admin", "role": "smart-account-admin"})).await;
    assert_eq!(set_conversion(&h, &admin, "", true).await.status, 200);

    // The manager's address answers nothing: the conversion stays in progress, resent.
    run(&mut s, &format!("license smart url https://127.0.0.1:{}", free_port())).await;
    run(&mut s, "license smart conversion start").await;
    assert_eq!(conversion(&status(&mut s).await)[1], "Status: In progress");

    // Ten minutes later it fails, with the major fault and the syslog line.
    let later = clock.get().plus_ms(CONVERSION_TIMEOUT_MS);
    clock.set(later);
    let failed = conversion(&status(&mut s).await);
    assert_eq!(failed[1..3], ["Status: Failed".to_string(), format!("Failure reason: {CONVERSION_TIMED_OUT}")]);
    assert!(s.device.agent.faults.contains(&Fault::ConversionFailed));
    assert!(run(&mut s, "show license eventlog").await.contains("%SMART_LIC-3-CONVERSION_FAILED"));
    assert!(h.licenses(DOMAIN, "Default").await["licenses"].as_array().unwrap().is_empty());

    // The manager is back (its clock moved with the device's): the retry converts.
    h.set_clock(&later.to_rfc3339()).await;
    run(&mut s, &format!("license smart url {}", h.base)).await;
    run(&mut s, "license smart conversion start").await;
    assert_eq!(conversion(&status(&mut s).await)[1], "Status: Successful");
    assert!(!s.device.agent.faults.contains(&Fault::ConversionFailed));
    assert_eq!(shown(&h.licenses(DOMAIN, "Default").await, "ACI Advantage"), "2");
}

#[tokio::test]
async fn conversion_through_a_satellite_transport_is_refused_and_sends_nothing() {
    let h = Harness::new().await;
    let clock = Frozen::at(&h);
    let root = tempfile::tempdir().unwrap();
    let mut s = registered_device(&h, root.path(), &clock).await;
    let (_, _, admin) = h.client(DOMAIN, json!({"name": "sa-admin", "role": "smart-account-admin"})).await;
    assert_eq!(set_conversion(&h, &admin, "", true).await.status, 200);

    run(&mut s, &format!("license smart transport-mode satellite url {}", h.base)).await;
    run(&mut s, "license smart conversion start").await;
    let refused = conversion(&status(&mut s).await);
    assert_eq!(refused[1..3], ["Status: Failed".to_string(), format!("Failure reason: {SATELLITE_NOT_SUPPORTED}")]);
    assert!(h.licenses(DOMAIN, "Default").await["licenses"].as_array().unwrap().is_empty());
    assert!(converted_events(&h).await.is_empty());
}

/// The portal's Administration page: a smart account administrator enables conversion for the
/// pool on screen; a smart account user neither sees the form nor can post it; a malformed
/// value changes nothing.
#[tokio::test]
async fn a_smart_account_admin_enables_conversion_in_the_portal() {
    use common::portal::*;
    const ADMIN: &str = "/portal/acme.example/Default/admin";
    const SAVE: &str = "/portal/acme.example/Default/admin/conversion";
    let (h, alice, _) = signed_in().await;
    let setting = || async { h.admin("GET", "/api/v1/accounts/acme.example/conversion", None).await.body };

    let page = alice.get(ADMIN).await;
    assert!(page.body.contains("Device-led conversion"), "{}", page.body);
    let saved = alice.submit(ADMIN, SAVE, &[("account", "false"), ("pool", "true")]).await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(saved.body.contains("Conversion settings saved."), "{}", saved.body);
    assert_eq!(setting().await, json!({"enabled": false, "virtual_accounts": ["Default"]}));
    let bad = alice.submit(ADMIN, SAVE, &[("account", "maybe"), ("pool", "false")]).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(setting().await, json!({"enabled": false, "virtual_accounts": ["Default"]}), "nothing changed");

    let login = portal_user(&h, "acme.example", "bob", "smart-account-user", None).await;
    let bob = Browser::new(&h);
    assert_eq!(bob.sign_in(&login, PASSWORD).await.status, 303);
    let csrf = bob.get("/portal/acme.example/Default/general").await.csrf();
    assert!(!bob.get(ADMIN).await.body.contains("Device-led conversion"));
    let refused = bob.post(SAVE, &[("csrf", &csrf), ("account", "false"), ("pool", "true")]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(setting().await, json!({"enabled": false, "virtual_accounts": ["Default"]}));
}

/// A satellite asked directly (a device pointed at it with the smart transport) answers why it
/// does not convert, signed as its other answers, and nothing changes on either side.
#[tokio::test]
async fn a_satellite_refuses_conversion_naming_why() {
    use common::satellite::{approved, cloud, device, satellite};
    let cloud = cloud().await;
    let sat = satellite().await;
    approved(&cloud, &sat, "Lab").await;
    let (client, identity) = device(&sat, &cloud, "FCH0001", 1).await;
    let legacy = [smartlic_proto::wire::LegacyLicense { name: "ACI-LEAF-ADV".into(), count: 2 }];
    let refused = client.convert(&identity, &legacy, sat.now_ms()).await.unwrap_err();
    match refused {
        smartlic_agent::client::ClientError::Refused { code, message, .. } => {
            assert_eq!((code.as_str(), message.as_str()), ("CONVERSION_NOT_SUPPORTED", SATELLITE_NOT_SUPPORTED));
        }
        other => panic!("expected a signed refusal, got {other:?}"),
    }
    let lab = sat.licenses(DOMAIN, "Lab").await;
    assert!(lab["licenses"].as_array().unwrap().iter().all(|l| l["tag"] != "ACI Advantage"
        || l["records"].as_array().unwrap().iter().all(|r| r["sku"] != "DLC:ACI-LEAF-ADV")));
}
