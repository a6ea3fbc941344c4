//! The device protocol over real HTTPS on loopback against a real SQLite file.

use crate::common;

use common::*;
use serde_json::json;
use smartlic_agent::client::{request_bytes, ClientError};
use smartlic_proto::wire::{self, text, AuthorizationStatus, Envelope, Udi};
use smartlic_proto::{KeyAlgorithm, SigningKey};

fn refused_code(r: Result<impl std::fmt::Debug, ClientError>) -> (String, String) {
    match r {
        Err(ClientError::Refused { code, message, .. }) => (code, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn tier_lending_authorizes_then_pool_runs_short() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 12)]).await;
    let a = h.register("FOC0001", &token).await;
    assert_eq!(a.smart_account_domain, "example.com");
    assert_eq!(a.virtual_account, "Default");
    let answer = h.devices.authorize(&a, &usage(&[("ACI Essentials", 10)]), h.now_ms()).await.unwrap();
    assert_eq!(answer.status, AuthorizationStatus::Authorized);
    assert_eq!(answer.intervals.auth_renew_secs, 30 * 86_400);
    let l = h.licenses("example.com", "Default").await;
    assert_eq!(shown(&l, "ACI Advantage"), "12 (-10)");
    assert_eq!(shown(&l, "ACI Essentials"), "0 (+10)");
    // A second device pushes the pool past what Advantage can lend.
    let udi = Udi { pid: "APIC-SERVER-M3".into(), sn: "FOC0002".into() };
    let (key, reg) = h.devices.register(&udi, None, &token, false, KeyAlgorithm::EcdsaP256, h.now_ms()).await.unwrap();
    let b = smartlic_agent::identity::DeviceIdentity::from_registration(udi, None, key, reg);
    let answer = h.devices.authorize(&b, &usage(&[("ACI Essentials", 3)]), h.now_ms()).await.unwrap();
    assert_eq!(answer.status, AuthorizationStatus::OutOfCompliance);
    let l = h.licenses("example.com", "Default").await;
    assert_eq!(l["status"], "Out Of Compliance");
    // Usage back down: in compliance again, and an empty list means no licenses in use.
    let answer = h.devices.authorize(&b, &usage(&[]), h.now_ms()).await.unwrap();
    assert_eq!(answer.status, AuthorizationStatus::NoLicensesInUse);
    assert_eq!(h.licenses("example.com", "Default").await["status"], "In Compliance");
}

#[tokio::test]
async fn bad_tokens_are_refused_with_the_seed_text() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[]).await;
    let udi = Udi { pid: "C9300".into(), sn: "X1".into() };
    let try_register = |t: String| {
        let udi = udi.clone();
        let h = &h;
        async move { h.devices.register(&udi, None, &t, false, KeyAlgorithm::Ed25519, h.now_ms()).await }
    };
    let (code, message) = refused_code(try_register("not-a-token".into()).await);
    assert_eq!((code.as_str(), message.as_str()), (wire::code::INVALID_TOKEN, text::INVALID_TOKEN));
    let once = h.token("example.com", "Default", json!({"max_uses": 1})).await;
    try_register(once.clone()).await.unwrap();
    let other = Udi { pid: "C9300".into(), sn: "X2".into() };
    let used_up = h.devices.register(&other, None, &once, false, KeyAlgorithm::Ed25519, h.now_ms()).await;
    assert_eq!(refused_code(used_up).0, wire::code::INVALID_TOKEN);
    let revoke = h
        .admin(
            "POST",
            "/api/v1/accounts/example.com/virtual-accounts/Default/tokens/revoke",
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(revoke.status, 200);
    let revoked = h.devices.register(&other, None, &token, false, KeyAlgorithm::Ed25519, h.now_ms()).await;
    assert_eq!(refused_code(revoked).0, wire::code::INVALID_TOKEN);
    let short = h.token("example.com", "Default", json!({"expires_days": 1})).await;
    h.set_clock(&smartlic_core::Timestamp(h.now_ms()).plus_days(2).to_rfc3339()).await;
    let expired = h.devices.register(&other, None, &short, false, KeyAlgorithm::Ed25519, h.now_ms()).await;
    assert_eq!(refused_code(expired).0, wire::code::INVALID_TOKEN);
    // Refusals created nothing.
    let list = h.admin("GET", "/api/v1/accounts/example.com/instances", None).await;
    assert_eq!(list.body["instances"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_registered_udi_needs_force_and_clock_must_agree() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[]).await;
    let first = h.register("SAME", &token).await;
    let udi = first.udi.clone();
    let again = h.devices.register(&udi, None, &token, false, KeyAlgorithm::Ed25519, h.now_ms()).await;
    let (code, message) = refused_code(again);
    assert_eq!((code.as_str(), message.as_str()), (wire::code::ALREADY_REGISTERED, text::ALREADY_REGISTERED));
    let (_, forced) = h.devices.register(&udi, None, &token, true, KeyAlgorithm::Ed25519, h.now_ms()).await.unwrap();
    assert_ne!(forced.instance_id, first.instance_id);
    // The replaced instance is gone: its next contact learns so.
    let gone = h.devices.authorize(&first, &usage(&[]), h.now_ms()).await;
    let (code, message) = refused_code(gone);
    assert_eq!(code, wire::code::UNKNOWN_INSTANCE);
    assert!(message.contains("Please re-register the instance."));
    // A device clock a day off is refused with the seed 004 text naming its date.
    let skewed = h.now_ms() - 86_400_000;
    let other = Udi { pid: "C9300".into(), sn: "SKEW".into() };
    let (code, message) =
        refused_code(h.devices.register(&other, None, &token, false, KeyAlgorithm::Ed25519, skewed).await);
    assert_eq!(code, wire::code::CLOCK_SKEW);
    assert_eq!(message, text::clock_skew(skewed));
}

/// Sends a raw signed body, returning the status and the JSON answer.
async fn raw_answer(h: &Harness, path: &str, body: Vec<u8>, signature: String) -> (u16, serde_json::Value) {
    let r = h
        .http
        .post(format!("{}{path}", h.base))
        .header(wire::SIGNATURE_HEADER, signature)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert!(r.headers().contains_key(wire::SIGNATURE_HEADER), "answers are signed, errors too");
    (status, r.json().await.unwrap())
}

/// Sends a raw signed body, returning (status, error code).
async fn raw(h: &Harness, path: &str, body: Vec<u8>, signature: String) -> (u16, String) {
    let (status, v) = raw_answer(h, path, body, signature).await;
    (status, v["error"]["code"].as_str().unwrap_or("").to_string())
}

#[tokio::test]
async fn tampered_replayed_and_malformed_requests_change_nothing() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 1)]).await;
    let dev = h.register("SIG", &token).await;
    let req = wire::AuthorizeRequest {
        envelope: Envelope { version: 1, timestamp: h.now_ms(), nonce: "nonce-0123456789abcdef".into() },
        instance_id: dev.instance_id.clone(),
        hostname: None,
        usage: usage(&[("ACI Advantage", 1)]),
    };
    // Signed by another key: refused with the seed 004 text.
    let stranger = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
    let (body, sig) = request_bytes(wire::PATH_AUTHORIZE, &stranger, &req).unwrap();
    assert_eq!(raw(&h, wire::PATH_AUTHORIZE, body, sig).await, (401, wire::code::BAD_SIGNATURE.into()));
    // Tampered after signing.
    let (body, sig) = request_bytes(wire::PATH_AUTHORIZE, dev.signing_key(), &req).unwrap();
    let tampered = String::from_utf8(body.clone()).unwrap().replace("\"count\":1", "\"count\":9").into_bytes();
    assert_eq!(raw(&h, wire::PATH_AUTHORIZE, tampered, sig.clone()).await, (401, wire::code::BAD_SIGNATURE.into()));
    // Signed for another endpoint.
    let (_, other_sig) = request_bytes(wire::PATH_DEREGISTER, dev.signing_key(), &req).unwrap();
    assert_eq!(raw(&h, wire::PATH_AUTHORIZE, body.clone(), other_sig).await.1, wire::code::BAD_SIGNATURE);
    // The genuine request passes once, then is a replay.
    assert_eq!(raw(&h, wire::PATH_AUTHORIZE, body.clone(), sig.clone()).await.0, 200);
    assert_eq!(raw(&h, wire::PATH_AUTHORIZE, body, sig).await, (409, wire::code::REPLAY.into()));
    // Malformed JSON, unknown fields, absurd counts, wrong version.
    assert_eq!(
        raw(&h, wire::PATH_AUTHORIZE, b"{not json".to_vec(), String::new()).await,
        (400, wire::code::MALFORMED.into())
    );
    let mut bad = req.clone();
    bad.envelope.nonce = "nonce-fedcba9876543210".into();
    bad.usage = usage(&[("ACI Advantage", -1)]);
    let (body, sig) = request_bytes(wire::PATH_AUTHORIZE, dev.signing_key(), &bad).unwrap();
    assert_eq!(raw(&h, wire::PATH_AUTHORIZE, body, sig).await.0, 400);
    bad.usage = usage(&[]);
    bad.envelope.version = 99;
    let (body, sig) = request_bytes(wire::PATH_AUTHORIZE, dev.signing_key(), &bad).unwrap();
    assert_eq!(raw(&h, wire::PATH_AUTHORIZE, body, sig).await.1, wire::code::UNSUPPORTED_VERSION);
    // Even an unknown device endpoint answers signed.
    assert_eq!(raw(&h, "/device/v1/nothing", b"{}".to_vec(), String::new()).await, (404, "NOT_FOUND".into()));
    // Only the genuine request counted.
    let l = h.licenses("example.com", "Default").await;
    assert_eq!(l["licenses"][0]["in_use"], 1);
}

#[tokio::test]
async fn id_renewal_moves_to_the_new_key_and_deregistration_frees_usage() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 5)]).await;
    let mut dev = h.register("REN", &token).await;
    h.devices.authorize(&dev, &usage(&[("ACI Advantage", 2)]), h.now_ms()).await.unwrap();
    let old_path = h.dir.path().join("before-renewal.json");
    dev.save(&old_path).unwrap();
    let old = smartlic_agent::identity::DeviceIdentity::load(&old_path).unwrap();
    let (key, answer) = h.devices.renew_id(&dev, h.now_ms()).await.unwrap();
    dev.apply_renewal(key, answer);
    assert_ne!(dev.certificate_serial, old.certificate_serial);
    // Once the new key has signed a request, the old one is refused.
    h.devices.authorize(&dev, &usage(&[("ACI Advantage", 2)]), h.now_ms()).await.unwrap();
    let stale = h.devices.authorize(&old, &usage(&[]), h.now_ms()).await;
    assert_eq!(refused_code(stale).0, wire::code::BAD_SIGNATURE);
    h.devices.deregister(&dev, h.now_ms()).await.unwrap();
    assert_eq!(h.licenses("example.com", "Default").await["licenses"][0]["in_use"], 0);
    let events = h.admin("GET", "/api/v1/accounts/example.com/events", None).await;
    let kinds: Vec<&str> =
        events.body["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for k in ["instance.registered", "instance.id-renewed", "instance.deregistered", "token.created"] {
        assert!(kinds.contains(&k), "{k} not in {kinds:?}");
    }
}

#[tokio::test]
async fn silence_releases_usage_and_expiry_removes_instances() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 1)]).await;
    let dev = h.register("OLD", &token).await;
    h.devices.authorize(&dev, &usage(&[("ACI Advantage", 3)]), h.now_ms()).await.unwrap();
    h.set_clock(&smartlic_core::Timestamp(h.now_ms()).plus_days(31).to_rfc3339()).await;
    let listed = h.admin("GET", "/api/v1/accounts/example.com/alerts", None).await;
    let kinds: Vec<String> =
        listed.body["alerts"].as_array().unwrap().iter().map(|a| a["kind"].as_str().unwrap().to_string()).collect();
    assert!(
        kinds.contains(&"pool-out-of-compliance".to_string()) && kinds.contains(&"instance-silent".to_string()),
        "{kinds:?}"
    );
    assert_eq!(h.licenses("example.com", "Default").await["licenses"][0]["in_use"], 3);
    h.set_clock(&smartlic_core::Timestamp(h.now_ms()).plus_days(60).to_rfc3339()).await;
    let l = h.licenses("example.com", "Default").await;
    assert_eq!(l["licenses"][0]["in_use"], 0, "usage released after 90 silent days");
    let inst = h.admin("GET", &format!("/api/v1/accounts/example.com/instances/{}", dev.instance_id), None).await;
    assert_eq!(inst.body["usage_released"], true);
    h.set_clock(&smartlic_core::Timestamp(h.now_ms()).plus_days(275).to_rfc3339()).await;
    let inst = h.admin("GET", &format!("/api/v1/accounts/example.com/instances/{}", dev.instance_id), None).await;
    assert_eq!(inst.status, 404, "removed when its ID certificate expired");
}

#[tokio::test]
async fn term_licenses_expire_on_the_clock() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[]).await;
    let now = smartlic_core::Timestamp(h.now_ms());
    let body = json!({"tag": "ACI Advantage", "count": 2, "type": "term", "start": now.plus_days(-1).to_rfc3339(), "end": now.plus_days(10).to_rfc3339(), "subscription_id": "Sub-1"});
    assert_eq!(
        h.admin("POST", "/api/v1/accounts/example.com/virtual-accounts/Default/licenses", Some(body)).await.status,
        201
    );
    let dev = h.register("TERM", &token).await;
    let a = h.devices.authorize(&dev, &usage(&[("ACI Advantage", 2)]), h.now_ms()).await.unwrap();
    assert_eq!(a.status, AuthorizationStatus::Authorized);
    h.set_clock(&now.plus_days(11).to_rfc3339()).await;
    let a = h.devices.authorize(&dev, &usage(&[("ACI Advantage", 2)]), h.now_ms()).await.unwrap();
    assert_eq!(a.status, AuthorizationStatus::OutOfCompliance);
    let l = h.licenses("example.com", "Default").await;
    assert_eq!(l["licenses"][0]["records"][0]["status"], "EXPIRED");
}

#[tokio::test]
async fn plain_http_is_refused() {
    let h = Harness::new().await;
    let plain = reqwest::Client::new();
    let r = plain.get(format!("http://{}/health", h.server.local_addr)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("HTTPS is only supported"));
}

/// A valid token of one smart account with the PID and serial printed on a device of another,
/// even with `force`: refused as without force, disclosing nothing, and changing nothing.
#[tokio::test]
async fn force_replaces_an_instance_only_within_the_tokens_smart_account() {
    let h = Harness::new().await;
    let token_a = h.account_with("a.example.com", &[("ACI Advantage", 2)]).await;
    let token_b = h.account_with("b.example.com", &[]).await;
    let victim = h.register("VICTIM", &token_a).await;
    h.devices.authorize(&victim, &usage(&[("ACI Advantage", 2)]), h.now_ms()).await.unwrap();
    let harness = &h;
    let events = move |domain: &'static str| async move {
        harness.admin("GET", &format!("/api/v1/accounts/{domain}/events"), None).await.body["events"].clone()
    };
    let a_before = events("a.example.com").await;
    let b_before = events("b.example.com").await;
    for force in [false, true] {
        let attempt = h.devices.register(&victim.udi, None, &token_b, force, KeyAlgorithm::Ed25519, h.now_ms()).await;
        match attempt {
            Err(ClientError::Refused { status: 409, code, message, field: None }) => {
                assert_eq!(
                    (code.as_str(), message.as_str()),
                    (wire::code::ALREADY_REGISTERED, text::ALREADY_REGISTERED)
                )
            }
            other => panic!("force={force}: expected the plain refusal, got {other:?}"),
        }
    }
    // Account A's instance, usage and log are untouched; B's log gained nothing.
    assert_eq!(
        h.devices.authorize(&victim, &usage(&[("ACI Advantage", 2)]), h.now_ms()).await.unwrap().status,
        AuthorizationStatus::Authorized
    );
    assert_eq!(h.licenses("a.example.com", "Default").await["licenses"][0]["in_use"], 2);
    assert_eq!(events("a.example.com").await, a_before);
    assert_eq!(events("b.example.com").await, b_before);
    let listed = h.admin("GET", "/api/v1/accounts/b.example.com/instances", None).await;
    assert_eq!(listed.body["instances"].as_array().unwrap().len(), 0);
    // Within account A, force still replaces.
    let forced = h.devices.register(&victim.udi, None, &token_a, true, KeyAlgorithm::Ed25519, h.now_ms()).await;
    assert_ne!(forced.unwrap().1.instance_id, victim.instance_id);
}

/// A register request for `udi` signed by `key`, as the agent sends it.
fn register_request(key: &SigningKey, udi: &Udi, token: &str, envelope: Envelope) -> (Vec<u8>, String) {
    let req = wire::RegisterRequest {
        envelope,
        token: token.into(),
        udi: udi.clone(),
        hostname: None,
        force: false,
        csr: key.certificate_request(&format!("{}:{}", udi.pid, udi.sn)).unwrap(),
        evaluation_used_ms: None,
    };
    request_bytes(wire::PATH_REGISTER, key, &req).unwrap()
}

#[tokio::test]
async fn a_registration_whose_answer_was_lost_is_answered_again_for_the_same_key() {
    let h = Harness::new().await;
    h.account_with("example.com", &[]).await;
    let once = h.token("example.com", "Default", json!({"max_uses": 1})).await;
    let udi = Udi { pid: "C9500-32C".into(), sn: "LOST-REG".into() };
    let key = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
    // The manager registers the device, and its answer is dropped on the way back.
    let envelope = Envelope { version: 1, timestamp: h.now_ms(), nonce: "first-attempt-0123456789".into() };
    let (body, signature) = register_request(&key, &udi, &once, envelope);
    let (status, dropped) = raw_answer(&h, wire::PATH_REGISTER, body, signature).await;
    assert_eq!(status, 200);
    // The device retries with the same key (a fresh request): the same instance, a certificate
    // for that key, and the single-use token is not spent twice.
    let answer = h.devices.register_with_key(&key, &udi, None, &once, false, h.now_ms()).await.unwrap();
    assert_eq!(answer.instance_id, dropped["instance_id"].as_str().unwrap());
    let listed = h.admin("GET", "/api/v1/accounts/example.com/instances", None).await;
    assert_eq!(listed.body["instances"].as_array().unwrap().len(), 1);
    let tokens = h.admin("GET", "/api/v1/accounts/example.com/virtual-accounts/Default/tokens", None).await;
    let single_use = tokens.body["tokens"].as_array().unwrap().iter().find(|t| t["max_uses"] == 1).unwrap().clone();
    assert_eq!((single_use["uses"].as_i64(), single_use["status"].as_str()), (Some(1), Some("USED UP")));
    let dev = smartlic_agent::identity::DeviceIdentity::from_registration(udi.clone(), None, key, answer);
    h.devices.authorize(&dev, &usage(&[]), h.now_ms()).await.unwrap();
    // Another key for the same UDI is another device: still refused without force.
    let fresh = h.token("example.com", "Default", json!({})).await;
    let other = h.devices.register(&udi, None, &fresh, false, KeyAlgorithm::Ed25519, h.now_ms()).await;
    assert_eq!(refused_code(other).0, wire::code::ALREADY_REGISTERED);
}

#[tokio::test]
async fn an_id_renewal_whose_answer_was_lost_leaves_the_device_its_key() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 5)]).await;
    let mut dev = h.register("LOST-RENEW", &token).await;
    let path = h.dir.path().join("device.json");
    dev.save(&path).unwrap();
    // The manager moves the instance to the next key; the answer is dropped on the way back.
    let lost_key = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
    let req = wire::RenewIdRequest {
        envelope: Envelope { version: 1, timestamp: h.now_ms(), nonce: "lost-renewal-0123456789".into() },
        instance_id: dev.instance_id.clone(),
        csr: lost_key.certificate_request("C9500-32C:LOST-RENEW").unwrap(),
    };
    let (body, signature) = request_bytes(wire::PATH_RENEW_ID, dev.signing_key(), &req).unwrap();
    assert_eq!(raw(&h, wire::PATH_RENEW_ID, body, signature).await.0, 200);
    // The device holds its old key only: still good to authorize and to renew again.
    h.devices.authorize(&dev, &usage(&[("ACI Advantage", 1)]), h.now_ms()).await.unwrap();
    let (key, answer) = h.devices.renew_id(&dev, h.now_ms()).await.unwrap();
    dev.apply_renewal(key, answer);
    h.devices.authorize(&dev, &usage(&[("ACI Advantage", 2)]), h.now_ms()).await.unwrap();
    // The new key has been used: the old one is refused, and the key never delivered too.
    let old = smartlic_agent::identity::DeviceIdentity::load(&path).unwrap();
    assert_eq!(refused_code(h.devices.authorize(&old, &usage(&[]), h.now_ms()).await).0, wire::code::BAD_SIGNATURE);
    let mut stray = smartlic_agent::identity::DeviceIdentity::load(&path).unwrap();
    stray.key = smartlic_agent::identity::DeviceKey(lost_key);
    assert_eq!(refused_code(h.devices.authorize(&stray, &usage(&[]), h.now_ms()).await).0, wire::code::BAD_SIGNATURE);
    assert_eq!(h.licenses("example.com", "Default").await["licenses"][0]["in_use"], 2);
}

#[tokio::test]
async fn error_answers_carry_the_nonce_of_the_request_they_answer() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[]).await;
    let dev = h.register("NONCE", &token).await;
    let nonce = "bound-error-0123456789";
    let req = wire::AuthorizeRequest {
        envelope: Envelope { version: 1, timestamp: h.now_ms(), nonce: nonce.into() },
        instance_id: "no-such-instance".into(),
        hostname: None,
        usage: vec![],
    };
    let (body, signature) = request_bytes(wire::PATH_AUTHORIZE, dev.signing_key(), &req).unwrap();
    let (status, answer) = raw_answer(&h, wire::PATH_AUTHORIZE, body, signature).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (404, Some(wire::code::UNKNOWN_INSTANCE)));
    assert_eq!(answer["request_nonce"], nonce);
    // A request with an unknown field still names its nonce; one that is not JSON has none.
    let odd = format!(r#"{{"version":1,"timestamp":0,"nonce":"{nonce}","bogus":1}}"#).into_bytes();
    let (status, answer) = raw_answer(&h, wire::PATH_DEREGISTER, odd, String::new()).await;
    assert_eq!((status, answer["request_nonce"].as_str()), (400, Some(nonce)));
    let (status, answer) = raw_answer(&h, wire::PATH_DEREGISTER, b"{not json".to_vec(), String::new()).await;
    assert_eq!((status, answer.get("request_nonce")), (400, None));
}

/// Device times near the integer limits are refused as skewed, never wrapped into tolerance.
#[tokio::test]
async fn timestamps_at_the_integer_limits_are_bad_requests() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 1)]).await;
    let dev = h.register("LIMITS", &token).await;
    let udi = Udi { pid: "C9500-32C".into(), sn: "LIMITS-2".into() };
    for (i, timestamp) in
        [i64::MIN, i64::MIN + 1, i64::MIN + h.now_ms(), i64::MAX, i64::MAX - 1].into_iter().enumerate()
    {
        let envelope = Envelope { version: 1, timestamp, nonce: format!("limit-nonce-{i}-0123456789") };
        let req = wire::AuthorizeRequest {
            envelope: envelope.clone(),
            instance_id: dev.instance_id.clone(),
            hostname: None,
            usage: usage(&[("ACI Advantage", 1)]),
        };
        let (body, signature) = request_bytes(wire::PATH_AUTHORIZE, dev.signing_key(), &req).unwrap();
        assert_eq!(
            raw(&h, wire::PATH_AUTHORIZE, body, signature).await,
            (400, wire::code::CLOCK_SKEW.into()),
            "{timestamp}"
        );
        let key = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
        let (body, signature) = register_request(&key, &udi, &token, envelope);
        assert_eq!(
            raw(&h, wire::PATH_REGISTER, body, signature).await,
            (400, wire::code::CLOCK_SKEW.into()),
            "{timestamp}"
        );
    }
    assert_eq!(h.licenses("example.com", "Default").await["licenses"][0]["in_use"], 0);
    let listed = h.admin("GET", "/api/v1/accounts/example.com/instances", None).await;
    assert_eq!(listed.body["instances"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_registration_reports_the_evaluation_used_and_the_instance_view_shows_it() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[]).await;
    let udi = Udi { pid: "C9500-32C".into(), sn: "EVAL-USED".into() };
    let now = h.now_ms();
    let register = |client: smartlic_agent::client::ManagerClient, udi: Udi| {
        let token = token.clone();
        async move { client.register(&udi, None, &token, false, KeyAlgorithm::Ed25519, now).await }
    };
    // More than 90 days, or less than none, is refused naming the field, and nothing changes.
    for bad in [-1, 90 * 86_400_000 + 1] {
        let refused = register(h.devices.clone().reporting_evaluation(bad), udi.clone()).await;
        let (code, message) = refused_code(refused);
        assert_eq!(code, wire::code::MALFORMED);
        assert!(message.starts_with(&format!("evaluation_used_ms is {bad}: it must be between 0 and")), "{message}");
    }
    let listed = h.admin("GET", "/api/v1/accounts/example.com/instances", None).await;
    assert_eq!(listed.body["instances"].as_array().unwrap().len(), 0);

    let (_, answer) = register(h.devices.clone().reporting_evaluation(3 * 86_400_000 + 5_000), udi).await.unwrap();
    let path = format!("/api/v1/accounts/example.com/instances/{}", answer.instance_id);
    let shown = h.admin("GET", &path, None).await.body;
    assert_eq!(shown["evaluation_used_seconds"], 3 * 86_400 + 5);
    assert_eq!(shown["evaluation_used"], "3 days, 0 hours, 0 minutes, 5 seconds");
    // A device that predates the report shows none.
    let old = Udi { pid: "C9500-32C".into(), sn: "EVAL-OLD".into() };
    let (_, answer) = register(h.devices.clone(), old).await.unwrap();
    let path = format!("/api/v1/accounts/example.com/instances/{}", answer.instance_id);
    let shown = h.admin("GET", &path, None).await.body;
    assert!(shown["evaluation_used_seconds"].is_null() && shown["evaluation_used"].is_null(), "{shown}");
}
