//! `smartlic admin` against a real `smartlic server` (simulated clock, temporary data
//! directory, a port chosen by the OS): what an operator types and what a script captures.

use crate::common;

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
    // Listed by its first characters only: the manager keeps a hash of it.
    assert_eq!(listed["tokens"][0]["prefix"], token[..12]);
    assert!(listed["tokens"][0].get("token").is_none());

    let clock = ok(&m, &["clock", "set", "2030-01-01"]);
    assert!(clock.contains("2030-01-01T00:00:00Z"), "{clock}");
    let csv = ok(&m, &["report", "usage", "--account", "example.com", "--csv"]);
    assert!(csv.lines().nth(1).is_some_and(|row| row.contains(tag)), "{csv}");

    let missing = m.ca.with_file_name("nowhere.pem");
    let err = fails(&m, &missing, &["account", "list"]);
    assert!(err.contains("cannot read the CA certificate") && err.contains("--ca"), "{err}");
}

/// `smartlic admin` logged in as the API client `id`.
fn as_client(m: &Manager, id: &str, secret: &str, args: &[&str]) -> std::process::Output {
    let mut command = smartlic();
    command.args(["admin", "--server", &m.url, "--ca"]).arg(&m.ca).args(["--client-id", id, "--secret", secret]);
    command.args(args).output().unwrap()
}

/// Users and API clients through their life cycle: rotate, disable, delete, with the access
/// tokens listed by prefix and every change in the event log.
#[test]
fn credential_life_cycle_session() {
    let m = start();
    let json = |text: String| -> serde_json::Value { serde_json::from_str(&text).unwrap() };
    let client = ["--account", "example.com", "--name", "ci-bot"];
    let user = ["--account", "example.com", "--name", "bob"];
    let vas = ["va", "list", "--account", "example.com"];
    ok(&m, &["account", "create", "--domain", "example.com"]);
    let made =
        json(ok(&m, &[&["--json", "client", "create"][..], &client, &["--role", "smart-account-user"]].concat()));
    let id = made["client_id"].as_str().unwrap();
    let secret = made["client_secret"].as_str().unwrap();
    assert!(as_client(&m, id, secret, &vas).status.success());
    let tokens = ok(&m, &["access-token", "list", "--account", "example.com"]);
    assert!(tokens.starts_with("ID  PREFIX ") && tokens.contains(id), "{tokens}");
    let operators = ok(&m, &["access-token", "list"]);
    assert!(operators.contains("  admin  ") && !operators.contains(id), "{operators}");

    let rotated = json(ok(&m, &[&["--json", "client", "rotate"][..], &client].concat()));
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert_eq!(rotated["client_id"], id);
    assert!(!as_client(&m, id, secret, &vas).status.success(), "the old secret is refused");
    assert!(as_client(&m, id, new_secret, &vas).status.success());
    ok(&m, &[&["client", "disable"][..], &client].concat());
    let refused = String::from_utf8(as_client(&m, id, new_secret, &vas).stderr).unwrap();
    assert!(refused.contains("disabled"), "{refused}");
    ok(&m, &[&["client", "delete"][..], &client].concat());
    assert!(!as_client(&m, id, new_secret, &vas).status.success());
    let err = fails(&m, &m.ca, &[&["client", "delete"][..], &client].concat());
    assert!(err.contains("(NOT_FOUND, HTTP 404)"), "{err}");

    ok(&m, &[&["user", "create"][..], &user, &["--role", "smart-account-user"]].concat());
    assert!(ok(&m, &[&["user", "disable"][..], &user].concat()).contains("disabled"));
    let listed = ok(&m, &["user", "list", "--account", "example.com"]);
    assert!(listed.contains("bob@example.com") && listed.contains("disabled"), "{listed}");
    ok(&m, &[&["user", "delete"][..], &user].concat());
    assert!(!ok(&m, &["user", "list", "--account", "example.com"]).contains("bob"));
    let events = ok(&m, &["event", "list", "--account", "example.com"]);
    for kind in
        ["api-client.secret-rotated", "api-client.disabled", "api-client.deleted", "user.disabled", "user.deleted"]
    {
        assert!(events.contains(kind), "{kind} missing from {events}");
    }
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

/// Issue 10: `admin check` lists every counter that drifted from the records and fails.
#[test]
fn check_reports_drifted_counters_and_fails() {
    let m = start();
    ok(&m, &["account", "create", "--domain", "example.com"]);
    let clean = admin(&m, &m.ca, &["check"]);
    assert!(clean.status.success());
    assert!(String::from_utf8_lossy(&clean.stderr).contains("every counter matches the records"));

    let db = rusqlite::Connection::open(m.data.path().join("smartlic.db")).unwrap();
    db.execute("INSERT INTO pool_usage (virtual_account_id, tag, in_use) VALUES (1, 'ACI Essentials', 2)", []).unwrap();
    let drifted = admin(&m, &m.ca, &["check"]);
    assert_eq!(drifted.status.code(), Some(1));
    let table = String::from_utf8(drifted.stdout).unwrap();
    assert!(table.starts_with("ACCOUNT      VIRTUAL ACCOUNT  TAG "), "{table}");
    assert!(table.contains("\nexample.com  Default          ACI Essentials  in use   2       0"), "{table}");
    let err = String::from_utf8(drifted.stderr).unwrap();
    assert!(err.contains("error: 1 counter(s) differ from the records"), "{err}");

    let repaired = admin(&m, &m.ca, &["check", "--repair"]);
    assert!(repaired.status.success(), "{}", String::from_utf8_lossy(&repaired.stderr));
    let table = String::from_utf8(repaired.stdout).unwrap();
    assert!(table.contains("\nexample.com  Default          ACI Essentials  in use   2       0"), "{table}");
    let err = String::from_utf8(repaired.stderr).unwrap();
    assert!(err.contains("1 in-use counter(s) set to the count of the records"), "{err}");
    assert!(admin(&m, &m.ca, &["check"]).status.success());
}
