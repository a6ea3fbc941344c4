//! A real cloud and a real satellite on loopback (issue 12; S-2, S-4, S-6): a local account
//! registered and approved online and by files, devices registered and authorized at the
//! satellite with its answers verified against the cloud CA, one manager per pool, tokens per
//! manager, and a satellite certificate past its end refused by the device.

use crate::common;

use common::satellite::{cloud, device_at, refusal_text, refused, satellite, try_register_at as register, DOMAIN};
use common::{usage, Harness};
use serde_json::{json, Value};
use smartlic_agent::client::{ClientError, ManagerClient};
use smartlic_core::Timestamp;
use smartlic_proto::wire::{self, AuthorizationStatus};

async fn local_account(sat: &Harness, name: &str) -> Value {
    let body = json!({"name": name, "smart_account": DOMAIN});
    let a = sat.admin("POST", "/api/v1/local-accounts", Some(body)).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let r = sat.admin("GET", &format!("/api/v1/local-accounts/{name}/registration?satellite=plant-1"), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

#[tokio::test]
async fn online_approval_then_devices_at_the_satellite_trust_it_through_the_cloud_ca() {
    let cloud = cloud().await;
    let sat = satellite().await;
    let registration = local_account(&sat, "Plant").await;

    // Not approved: the satellite knows no smart account, so no token and no device.
    let early =
        sat.admin("POST", &format!("/api/v1/accounts/{DOMAIN}/virtual-accounts/Lab/tokens"), Some(json!({}))).await;
    assert_eq!(early.status, 404, "{:?}", early.body);

    // Sent by an API client of the smart account; the cloud's operator sees it pending.
    let (_, _, client) = cloud.client(DOMAIN, json!({"name": "sat-bot", "role": "smart-account-admin"})).await;
    let sent = cloud.call(&client, "POST", "/api/v1/satellites", Some(registration.clone())).await;
    assert_eq!(sent.status, 201, "{:?}", sent.body);
    let id = sent.body["id"].as_i64().unwrap();
    assert_eq!(sent.body["status"], "pending");
    let noted = json!({"cloud_satellite_id": id, "cloud_url": cloud.base});
    assert_eq!(sat.admin("POST", "/api/v1/local-accounts/Plant/sent", Some(noted)).await.status, 200);
    let again = cloud.call(&client, "POST", "/api/v1/satellites", Some(registration)).await;
    assert_eq!(again.body["id"].as_i64(), Some(id), "sending again finds the same registration");
    let waiting = cloud.call(&client, "GET", &format!("/api/v1/satellites/{id}/answer"), None).await;
    assert_eq!((waiting.status, waiting.code()), (409, "NOT_APPROVED"));
    refused(&cloud.call(&client, "GET", "/api/v1/satellites", None).await, 403, "only the operator");

    // A token of Lab the cloud issued while it still served Lab.
    let lab_at_cloud = cloud.token(DOMAIN, "Lab", json!({})).await;

    // Approval: unknown pools are refused naming them, then Lab goes to the satellite.
    let approve = format!("/api/v1/satellites/{id}/approve");
    refused(&cloud.admin("POST", &approve, Some(json!({"virtual_accounts": ["Nope"]}))).await, 404, "'Nope'");
    let approved = cloud.admin("POST", &approve, Some(json!({"virtual_accounts": ["Lab"]}))).await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    assert_eq!(
        (approved.body["status"].as_str(), approved.body["virtual_accounts"].clone()),
        (Some("approved"), json!(["Lab"]))
    );
    refused(
        &cloud.admin("POST", &approve, Some(json!({"virtual_accounts": ["Default"]}))).await,
        409,
        "approved already",
    );
    let answer = cloud.call(&client, "GET", &format!("/api/v1/satellites/{id}/answer"), None).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let imported = sat.admin("POST", "/api/v1/local-accounts/Plant/approval", Some(answer.body.clone())).await;
    assert_eq!((imported.status, imported.body["status"].as_str()), (200, Some("approved")), "{:?}", imported.body);
    refused(
        &sat.admin("POST", "/api/v1/local-accounts/Plant/approval", Some(answer.body)).await,
        409,
        "approved already",
    );

    // The satellite's pool holds the licenses of Lab at approval: a device is authorized
    // before any sync, and every answer checks out against the cloud CA only.
    let sat_token = sat.token(DOMAIN, "Lab", json!({})).await;
    let device = device_at(&sat, &cloud);
    let (identity, ca) = register(&device, "FCH0001", &sat_token, sat.now_ms()).await.unwrap();
    assert_eq!(ca, cloud.server.ca_pem, "the registration answer chains to the cloud CA");
    let auth = device.authorize(&identity, &usage(&[("ACI Advantage", 5)]), sat.now_ms()).await.unwrap();
    assert_eq!(auth.status, AuthorizationStatus::Authorized);
    let over = device.authorize(&identity, &usage(&[("ACI Advantage", 6)]), sat.now_ms()).await.unwrap();
    assert_eq!(over.status, AuthorizationStatus::OutOfCompliance);
    // A device trusting the satellite's own CA for answers instead refuses them: only the chain counts.
    let own_ca = ManagerClient::new(&sat.base, &sat.server.ca_pem).unwrap();
    let spoofed = register(&own_ca, "FCH0002", &sat_token, sat.now_ms()).await.unwrap_err();
    assert!(matches!(spoofed, ClientError::SatelliteCertificate), "{spoofed:?}");

    // Tokens are per manager (S-4), both ways, in seed 000's words.
    let cloud_token = cloud.token(DOMAIN, "Default", json!({})).await;
    let e = register(&device, "FCH0003", &cloud_token, sat.now_ms()).await.unwrap_err();
    assert_eq!(refusal_text(&e), wire::text::TOKEN_OF_ANOTHER_MANAGER);
    let e = register(&cloud.devices, "FCH0003", &sat_token, cloud.now_ms()).await.unwrap_err();
    assert!(refusal_text(&e).contains("use the token from the satellite manager"), "{e}");
    // An unknown token still reads as seed 002's.
    let e = register(&device, "FCH0003", "bm9wZQ==", sat.now_ms()).await.unwrap_err();
    assert_eq!(refusal_text(&e), wire::text::INVALID_TOKEN);

    // Tokens come from the manager serving the pool: the cloud issues none for Lab now, and
    // cannot revoke the satellite's (it never learns of them), saying where to revoke it.
    let lab_tokens = format!("/api/v1/accounts/{DOMAIN}/virtual-accounts/Lab/tokens");
    refused(&cloud.admin("POST", &lab_tokens, Some(json!({}))).await, 409, "created and revoked at the satellite");
    let revoke = cloud.admin("POST", &format!("{lab_tokens}/revoke"), Some(json!({"token": sat_token}))).await;
    refused(&revoke, 409, "revoke it at the satellite 'plant-1'");
    assert_eq!(revoke.body["error"]["field"], "token", "{:?}", revoke.body);

    // One manager per pool: the cloud refuses Lab's devices, its other pools still serve.
    let e = register(&cloud.devices, "FCH0004", &lab_at_cloud, cloud.now_ms()).await.unwrap_err();
    assert!(matches!(&e, ClientError::Refused { code, .. } if code == wire::code::SERVED_BY_SATELLITE), "{e:?}");
    assert!(refusal_text(&e).contains("served by the satellite 'plant-1'"), "{e}");
    register(&cloud.devices, "FCH0005", &cloud_token, cloud.now_ms()).await.unwrap();

    // A year and a day on, satellite and device alike: the satellite certificate has ended and
    // the device refuses the satellite's answer with seed 004 scenario 6's reason.
    let later = Timestamp(sat.now_ms()).plus_days(366);
    sat.set_clock(&later.to_rfc3339()).await;
    let e = device.authorize(&identity, &usage(&[("ACI Advantage", 1)]), later.0).await.unwrap_err();
    assert!(matches!(e, ClientError::SatelliteCertificate), "{e:?}");
    assert_eq!(e.to_string(), wire::text::SATELLITE_CERTIFICATE_INVALID);
}

#[tokio::test]
async fn offline_approval_by_files_and_every_bad_file_refused() {
    let cloud = cloud().await;
    let sat = satellite().await;
    let request = local_account(&sat, "Plant").await;

    // A tampered request and a file that is no registration are refused, naming why.
    let mut tampered = request.clone();
    tampered["payload"] = json!(request["payload"].as_str().unwrap().replace("plant-1", "plant-9"));
    let answer_of =
        |registration: Value, pools: Value| json!({"registration": registration, "virtual_accounts": pools});
    let tamper = cloud.admin("POST", "/api/v1/satellites/answer", Some(answer_of(tampered, json!(["Default"])))).await;
    refused(&tamper, 400, "altered after it was signed");
    let not_registration = json!({"kind": "smartlic-satellite-approval", "payload": "{}", "signature": ""});
    let wrong =
        cloud.admin("POST", "/api/v1/satellites/answer", Some(answer_of(not_registration, json!(["Default"])))).await;
    refused(&wrong, 400, "not a smartlic-satellite-registration");
    assert!(cloud.admin("GET", "/api/v1/satellites", None).await.body["satellites"].as_array().unwrap().is_empty());

    // The answer: approval in the same step, with the pools --va names.
    let answer = cloud.admin("POST", "/api/v1/satellites/answer", Some(answer_of(request, json!(["Default"])))).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);

    // Another satellite's answer is refused by this one: it certifies another key.
    let other = satellite().await;
    let other_request = local_account(&other, "Plant").await;
    let taken = cloud
        .admin("POST", "/api/v1/satellites/answer", Some(answer_of(other_request.clone(), json!(["Default"]))))
        .await;
    refused(&taken, 409, "is served by satellite plant-1 already");
    let listed = cloud.admin("GET", "/api/v1/satellites", None).await.body;
    let pending = &listed["satellites"][1];
    assert_eq!(
        (pending["status"].as_str(), pending["virtual_accounts"].clone()),
        (Some("pending"), json!([])),
        "{listed}"
    );
    let other_answer =
        cloud.admin("POST", "/api/v1/satellites/answer", Some(answer_of(other_request, json!(["Lab"])))).await;
    assert_eq!(other_answer.status, 200, "{:?}", other_answer.body);
    let foreign = sat.admin("POST", "/api/v1/local-accounts/Plant/approval", Some(other_answer.body)).await;
    refused(&foreign, 400, "for another satellite");
    let mut forged = answer.body.clone();
    forged["payload"] = json!(answer.body["payload"].as_str().unwrap().replace("\"quantity\":12", "\"quantity\":999"));
    refused(&sat.admin("POST", "/api/v1/local-accounts/Plant/approval", Some(forged)).await, 400, "altered");
    assert_eq!(sat.admin("GET", "/api/v1/accounts", None).await.body["accounts"].as_array().map(Vec::len), Some(0));

    let imported = sat.admin("POST", "/api/v1/local-accounts/Plant/approval", Some(answer.body)).await;
    assert_eq!((imported.status, imported.body["status"].as_str()), (200, Some("approved")), "{:?}", imported.body);
    let token = sat.token(DOMAIN, "Default", json!({})).await;
    let device = device_at(&sat, &cloud);
    let (identity, _) = register(&device, "FCH0010", &token, sat.now_ms()).await.unwrap();
    let auth = device.authorize(&identity, &usage(&[("ACI Advantage", 12)]), sat.now_ms()).await.unwrap();
    assert_eq!(auth.status, AuthorizationStatus::Authorized);

    // Local accounts are the satellite's, satellites the cloud's.
    refused(
        &sat.admin("POST", "/api/v1/accounts", Some(json!({"domain": "other.com"}))).await,
        409,
        "this manager is a satellite",
    );
    refused(
        &cloud.admin("POST", "/api/v1/local-accounts", Some(json!({"name": "x", "smart_account": DOMAIN}))).await,
        409,
        "--mode satellite",
    );
    let on_sat = sat
        .admin(
            "POST",
            "/api/v1/satellites/answer",
            Some(answer_of(json!({"kind": "x", "payload": "", "signature": ""}), json!(["Default"]))),
        )
        .await;
    refused(&on_sat, 409, "this manager is a satellite");

    let openapi = cloud.call("", "GET", "/api/v1/openapi.json", None).await.body;
    for (method, path) in [
        ("post", "/api/v1/satellites"),
        ("get", "/api/v1/satellites"),
        ("post", "/api/v1/satellites/{id}/approve"),
        ("get", "/api/v1/satellites/{id}/answer"),
        ("post", "/api/v1/satellites/answer"),
        ("get", "/api/v1/local-accounts"),
        ("post", "/api/v1/local-accounts"),
        ("get", "/api/v1/local-accounts/{name}/registration"),
        ("post", "/api/v1/local-accounts/{name}/sent"),
        ("post", "/api/v1/local-accounts/{name}/approval"),
    ] {
        assert!(openapi["paths"][path][method].is_object(), "{method} {path} missing from the OpenAPI document");
    }
}
