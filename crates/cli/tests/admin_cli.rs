//! `smartlic admin` against a real `smartlic server` (simulated clock, temporary data
//! directory, a port chosen by the OS): what an operator types and what a script captures.

mod common;

use common::*;

#[test]
fn operator_session() {
    let m = start();
    let pool = ["--account", "example.com", "--va", "Lab East"];
    ok(&m, &["account", "create", "--domain", "example.com"]);
    let err = fails(&m, &m.ca, &["account", "create", "--domain", "example.com"]);
    assert!(err.starts_with("error: ") && err.contains("(CONFLICT, HTTP 409)"), "{err}");
    ok(&m, &["va", "create", "--account", "example.com", "--name", "Lab East"]);
    assert!(ok(&m, &["va", "list", "--account", "example.com"]).contains("\nLab East "));

    let tag = "C9500 Network Advantage";
    ok(&m, &[&["license", "add"][..], &pool, &["--tag", tag, "--count", "12"]].concat());
    let licenses = ok(&m, &[&["license", "list"][..], &pool].concat());
    assert!(licenses.starts_with("example.com / Lab East: In Compliance\nTAG "), "{licenses}");
    assert!(licenses.contains(&format!("\n{tag}  12 ")), "{licenses}");

    // Only the token on stdout, so that TOKEN=$(...) works.
    let token = ok(&m, &[&["token", "create"][..], &pool, &["--max-uses", "2"]].concat());
    let token = token.strip_suffix('\n').unwrap();
    assert!(!token.is_empty() && !token.contains(char::is_whitespace), "{token:?}");
    let listed: serde_json::Value =
        serde_json::from_str(&ok(&m, &[&["--json", "token", "list"][..], &pool].concat())).unwrap();
    assert_eq!(listed["tokens"][0]["token"], token);

    let clock = ok(&m, &["clock", "set", "2030-01-01"]);
    assert!(clock.contains("2030-01-01T00:00:00Z"), "{clock}");
    let csv = ok(&m, &["report", "usage", "--account", "example.com", "--csv"]);
    assert!(csv.lines().nth(1).is_some_and(|row| row.contains(tag)), "{csv}");

    let missing = m.ca.with_file_name("nowhere.pem");
    let err = fails(&m, &missing, &["account", "list"]);
    assert!(err.contains("cannot read the CA certificate") && err.contains("--ca"), "{err}");
}

/// R-1 from the operator's side: a request code a device would print, the authorization code
/// alone on stdout, its confirmation code on stderr, the list, the return code and a replay.
#[test]
fn offline_reservation_session() {
    use smartlic_proto::reservation::{Authorization, RequestCode, ReservationKind, ReturnCode};
    use smartlic_proto::{cert::public_key_of_certificate, KeyAlgorithm, SigningKey};

    let m = start();
    let pool = ["--account", "example.com", "--va", "Default"];
    ok(&m, &["account", "create", "--domain", "example.com"]);
    ok(&m, &[&["license", "add"][..], &pool, &["--tag", "ACI Advantage", "--count", "3"]].concat());
    let key = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
    let request = RequestCode::new(ReservationKind::Specific, "C9300-24UX", "FCW2134L0RN", &key.public_key()).unwrap();
    let request = request.to_string();

    let create = |code: &str, grant: &[&str]| {
        admin(&m, &m.ca, &[&["reservation", "create"][..], &pool, &["--request-code", code], grant].concat())
    };
    let out = create(&request, &["--license", "ACI Advantage=2"]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    // Only the code on stdout, so that CODE=$(...) works.
    let stdout = String::from_utf8(out.stdout).unwrap();
    let code = stdout.strip_suffix('\n').unwrap();
    assert!(code.starts_with("<specificPLR>") && !code.contains('\n'), "{stdout}");
    let ca = public_key_of_certificate(&std::fs::read_to_string(&m.ca).unwrap()).unwrap();
    let installed = Authorization::verify(code, &[ca]).unwrap();
    assert_eq!(stderr, format!("Confirmation code: {}\n", installed.identity.confirmation_code));

    let listed = ok(&m, &["reservation", "list", "--account", "example.com"]);
    assert!(listed.starts_with("ID  VIRTUAL ACCOUNT  UDI "), "{listed}");
    assert!(listed.contains("PID:C9300-24UX,SN:FCW2134L0RN  specific  reserved  ACI Advantage=2"), "{listed}");
    let licenses: serde_json::Value =
        serde_json::from_str(&ok(&m, &[&["--json", "license", "list"][..], &pool].concat())).unwrap();
    assert_eq!((&licenses["licenses"][0]["reserved"], &licenses["licenses"][0]["available"]), (&2.into(), &1.into()));

    let other = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
    let second = RequestCode::new(ReservationKind::Specific, "C9300-24UX", "FCW2134L0RM", &other.public_key()).unwrap();
    let err = String::from_utf8(create(&second.to_string(), &["--license", "ACI Advantage=2"]).stderr).unwrap();
    assert!(err.contains("more licenses than available") && err.contains("(CONFLICT, HTTP 409)"), "{err}");
    let universal = RequestCode::new(ReservationKind::Universal, "C9300-24UX", "FCW2134L0RM", &other.public_key());
    let universal = universal.unwrap().to_string();
    let err = String::from_utf8(create(&universal, &["--universal"]).stderr).unwrap();
    assert!(err.contains("universal reservation is not allowed for this smart account"), "{err}");
    ok(&m, &["account", "set", "--domain", "example.com", "--allow-universal-reservation", "true"]);
    assert!(create(&universal, &["--universal"]).status.success());

    let returned = ReturnCode::create(&installed, true, &key).unwrap();
    let back = ok(&m, &[&["reservation", "return"][..], &pool, &["--return-code", &returned]].concat());
    assert!(back.contains("status:") && back.contains("returned"), "{back}");
    let again = fails(&m, &m.ca, &[&["reservation", "return"][..], &pool, &["--return-code", &returned]].concat());
    assert!(again.contains("already returned") && again.contains("HTTP 409"), "{again}");
    let listed = ok(&m, &["reservation", "list", "--account", "example.com", "--va", "Default"]);
    assert_eq!(listed.lines().count(), 3, "{listed}");

    ok(&m, &["va", "create", "--account", "example.com", "--name", "Lab"]);
    ok(&m, &["va", "delete", "--account", "example.com", "--name", "Lab"]);
    assert!(!ok(&m, &["va", "list", "--account", "example.com"]).contains("Lab"));
    let err = fails(&m, &m.ca, &["va", "delete", "--account", "example.com", "--name", "Default"]);
    assert!(err.contains("default virtual account"), "{err}");
}
