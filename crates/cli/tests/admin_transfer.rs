//! `smartlic admin license transfer` against a real `smartlic server`: reserved licenses
//! cannot be transferred away (issue 10), and the refusal says how many are available.

use crate::common;

use common::*;
use smartlic_proto::reservation::{RequestCode, ReservationKind};
use smartlic_proto::{KeyAlgorithm, SigningKey};

#[test]
fn reserved_licenses_stay_in_their_pool() {
    let m = start();
    let pool = ["--account", "example.com", "--va", "Default"];
    ok(&m, &["account", "create", "--domain", "example.com"]);
    ok(&m, &["va", "create", "--account", "example.com", "--name", "Lab"]);
    ok(&m, &[&["license", "add"][..], &pool, &["--tag", "ACI Advantage", "--count", "2"]].concat());
    let key = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
    let request = RequestCode::new(ReservationKind::Specific, "C9300-24UX", "FCW2134L0RN", &key.public_key()).unwrap();
    let grant = ["--request-code", &request.to_string(), "--license", "ACI Advantage=2"];
    ok(&m, &[&["reservation", "create"][..], &pool, &grant].concat());

    let transfer = [&["license", "transfer"][..], &pool, &["--tag", "ACI Advantage", "--count", "1", "--to", "Lab"]];
    let err = fails(&m, &m.ca, &transfer.concat());
    assert!(
        err.contains("only 0 of 'ACI Advantage' can be transferred") && err.contains("(CONFLICT, HTTP 409)"),
        "{err}"
    );
    let listed = |va: &str| -> serde_json::Value {
        let args = ["--json", "license", "list", "--account", "example.com", "--va", va];
        serde_json::from_str(&ok(&m, &args)).unwrap()
    };
    let default = listed("Default");
    assert_eq!((&default["licenses"][0]["purchased"], &default["licenses"][0]["reserved"]), (&2.into(), &2.into()));
    assert_eq!(listed("Lab")["licenses"], serde_json::json!([]));
}
