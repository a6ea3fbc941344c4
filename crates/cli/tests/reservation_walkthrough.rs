//! Offline reservation end to end with the real binaries (README walk-through): a device that
//! never reaches the manager requests a code, the operator reserves licenses with the admin CLI
//! (and, for a second device, the original REST API), the device installs the authorization,
//! shows it, returns it, and the licenses are back in the pool. A registered device answers
//! "Already registered".

use crate::common;

use common::*;
use serde_json::{json, Value};
use std::path::Path;

/// A device trusting the manager's CA, with reservation enabled and no way to reach the manager.
fn offline_device(m: &Manager, dir: &Path, sn: &str) {
    agent(dir, &["init", "--pid", "C9300-24UX", "--sn", sn], None);
    let trust =
        ["-c", "crypto pki trustpoint SLA-TrustPoint", "-c", "end", "-c", "crypto pki authenticate SLA-TrustPoint"];
    assert!(agent(dir, &trust, Some(&m.ca)).contains("Certificate successfully imported"));
    agent(dir, &["-c", "license smart reservation", "-c", "license feature \"ACI Advantage\" count 2"], None);
}

/// The request code a device printed.
fn request_code(dir: &Path) -> String {
    let out = agent(dir, &["-c", "license smart reservation request local"], None);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("Enter this request code in the Cisco Smart Software Manager portal:"));
    lines.next().unwrap().to_string()
}

fn license_row(m: &Manager) -> Value {
    let listed = ok(m, &["--json", "license", "list", "--account", "example.com", "--va", "Default"]);
    let v: Value = serde_json::from_str(&listed).unwrap();
    v["licenses"].as_array().unwrap().iter().find(|l| l["tag"] == "ACI Advantage").unwrap().clone()
}

/// `POST reserve-licenses` of the original REST API, as its clients send it.
async fn reserve_by_original_api(m: &Manager, request: &str) -> Value {
    let http = smartlic_agent::tls::https_client_via(&std::fs::read_to_string(&m.ca).unwrap(), None).unwrap();
    let token: Value = http
        .post(format!("{}/as/token.oauth2", m.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=client_credentials&client_id=admin&client_secret={SECRET}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = token["access_token"].as_str().expect("a token");
    let url = format!(
        "{}/services/api/smart-accounts-and-licensing/v2/accounts/example.com/virtual-accounts/Default/reserve-licenses",
        m.url
    );
    let body = json!({"reservationRequests": [{
        "reservationCode": request,
        "reservationType": "SPECIFIC",
        "licenses": [{"entitlementTag": "ACI Advantage", "quantity": 2, "precedence": "LONGEST_TERM_FIRST"}],
    }]});
    http.post(url).bearer_auth(bearer).json(&body).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_reservation_walkthrough() {
    let m = start();
    ok(&m, &["account", "create", "--domain", "example.com"]);
    ok(
        &m,
        &["license", "add", "--account", "example.com", "--va", "Default", "--tag", "ACI Advantage", "--count", "5"],
    );
    let state = tempfile::tempdir().unwrap();
    let dev = state.path().join("switch1");
    offline_device(&m, &dev, "FCW2134L0RN");

    // Request → reserve with the admin CLI → install.
    let request = request_code(&dev);
    assert!(request.starts_with("CB-ZC9300-24UX:FCW2134L0RN-"), "{request}");
    let pool = ["--account", "example.com", "--va", "Default"];
    let garbled = request.replacen("FCW", "FCV", 1);
    let refused = fails(
        &m,
        &m.ca,
        &[&["reservation", "create"][..], &pool, &["--request-code", &garbled, "--license", "ACI Advantage=2"]]
            .concat(),
    );
    assert!(refused.contains("check characters"), "{refused}");
    let too_many = fails(
        &m,
        &m.ca,
        &[&["reservation", "create"][..], &pool, &["--request-code", &request, "--license", "ACI Advantage=6"]]
            .concat(),
    );
    assert!(too_many.contains("more licenses than available"), "{too_many}");
    assert_eq!(license_row(&m)["reserved"], 0, "a refusal reserves nothing");
    let code = ok(
        &m,
        &[&["reservation", "create"][..], &pool, &["--request-code", &request, "--license", "ACI Advantage=2"]]
            .concat(),
    );
    let code = code.trim();
    assert_eq!((license_row(&m)["reserved"].as_i64(), license_row(&m)["available"].as_i64()), (Some(2), Some(3)));

    let file = state.path().join("AC_FCW2134L0RN.xml");
    std::fs::write(&file, code).unwrap();
    let install = format!("license smart reservation install file {}", file.display());
    let out = agent(&dev, &["-c", &install], None);
    assert!(out.starts_with("Reservation install file successful\nLast Confirmation code "), "{out}");
    let status = agent(&dev, &["-c", "show license status"], None);
    assert!(status.contains("Status: REGISTERED - SPECIFIC LICENSE RESERVATION"), "{status}");
    assert!(status.contains("Status: AUTHORIZED - RESERVED on"), "{status}");
    assert!(status.contains("ACI Advantage (ACI Advantage): 2, PERPETUAL"), "{status}");
    let summary = agent(&dev, &["-c", "show license summary"], None);
    assert!(summary.lines().any(|l| l.contains("(ACI Advantage)") && l.ends_with("2 AUTHORIZED")), "{summary}");

    // Return → the manager takes the licenses back, once.
    let (succeeded, out) = agent_run(&dev, &["-c", "license smart reservation return local"], None);
    assert!(!succeeded && out.contains("force"), "{out}");
    let out = agent(&dev, &["-c", "license smart reservation return local force"], None);
    let return_code = out.lines().nth(1).unwrap().to_string();
    assert!(return_code.split('-').all(|g| (1..=6).contains(&g.len())), "{return_code}");
    ok(&m, &[&["reservation", "return"][..], &pool, &["--return-code", &return_code]].concat());
    assert_eq!((license_row(&m)["reserved"].as_i64(), license_row(&m)["available"].as_i64()), (Some(0), Some(5)));
    let replay = fails(&m, &m.ca, &[&["reservation", "return"][..], &pool, &["--return-code", &return_code]].concat());
    assert!(replay.contains("already returned"), "{replay}");
    assert!(agent(&dev, &["-c", "show license status"], None).contains("Status: UNREGISTERED"));

    // A second device through the original REST API, then returned with the same device key.
    let dev2 = state.path().join("switch2");
    offline_device(&m, &dev2, "FCW2134L0RM");
    let request2 = request_code(&dev2);
    let answer = reserve_by_original_api(&m, &request2).await;
    assert_eq!(answer["status"], "SUCCESS", "{answer}");
    let code2 = answer["authorizationCodes"][0]["authorizationCode"].as_str().unwrap().to_string();
    // The first device cannot install a code made for the second.
    let (_, foreign) = agent_run(
        &dev,
        &[
            "-c",
            "license smart reservation request local",
            "-c",
            &format!("license smart reservation install \"{code2}\""),
        ],
        None,
    );
    assert!(
        foreign.contains("The Reservation Authorization Code does not match the Reservation Request Code"),
        "{foreign}"
    );
    agent(&dev, &["-c", "license smart reservation cancel"], None);
    agent(&dev2, &["-c", &format!("license smart reservation install \"{code2}\"")], None);
    assert_eq!(license_row(&m)["reserved"].as_i64(), Some(2));
    let out = agent(&dev2, &["-c", "license smart reservation return local force"], None);
    ok(&m, &[&["reservation", "return"][..], &pool, &["--return-code", out.lines().nth(1).unwrap()]].concat());
    assert_eq!(license_row(&m)["reserved"].as_i64(), Some(0));

    // A registered device answers as the original does.
    let token = ok(&m, &["token", "create", "--account", "example.com", "--va", "Default"]).trim().to_string();
    let url = format!("license smart url {}", m.url);
    let register = format!("license smart register idtoken {token}");
    agent(&dev, &["-c", &url, "-c", &register], None);
    let (succeeded, out) = agent_run(&dev, &["-c", "license smart reservation request local"], None);
    assert!(!succeeded && out.trim() == "Already registered", "{out}");
}
