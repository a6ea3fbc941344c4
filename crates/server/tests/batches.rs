//! Requests naming several items are all or nothing (one store transaction each), even when
//! they race; and a transfer moves only available licenses (not in use, not reserved, not lent
//! to lower tiers), the same in `/api/v1` and in the original API. Real HTTPS, real SQLite.

use crate::common;

use common::*;
use serde_json::{json, Value};
use smartlic_proto::reservation::{RequestCode, ReservationKind};
use smartlic_proto::{KeyAlgorithm, SigningKey};
use std::collections::BTreeSet;

const API: &str = "/api/v1/accounts/example.com";
const LEGACY: &str = "/services/api/smart-accounts-and-licensing/v1/accounts/example.com/virtual-accounts";
const REMOVE: &str =
    "/services/api/smart-accounts-and-licensing/v2/accounts/example.com/virtual-accounts/Default/devices/remove";

async fn create_va(h: &Harness, name: &str) {
    let a = h.admin("POST", &format!("{API}/virtual-accounts"), Some(json!({ "name": name }))).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
}

/// The `field` of `tag` in a pool's /api/v1 listing (0 when the tag is not listed).
async fn count(h: &Harness, va: &str, tag: &str, field: &str) -> i64 {
    let listing = h.licenses("example.com", va).await;
    let line = listing["licenses"].as_array().unwrap().iter().find(|l| l["tag"] == tag).cloned();
    line.map_or(0, |l| l[field].as_i64().unwrap())
}

async fn api_transfer(h: &Harness, tag: &str, n: i64, to: &str) -> Answer {
    let path = format!("{API}/virtual-accounts/Default/licenses/transfer");
    h.admin("POST", &path, Some(json!({"tag": tag, "count": n, "to": to}))).await
}

/// An original-API license transfer out of Default of (license, quantity, target) items.
async fn legacy_transfer(h: &Harness, items: &[(&str, i64, &str)]) -> Answer {
    let licenses: Vec<Value> =
        items.iter().map(|(l, n, to)| json!({"license": l, "quantity": n, "targetVirtualAccount": to})).collect();
    h.admin("POST", &format!("{LEGACY}/Default/licenses/transfer"), Some(json!({ "licenses": licenses }))).await
}

#[tokio::test]
async fn reserved_licenses_cannot_be_transferred_away() {
    let h = Harness::new().await;
    h.account_with("example.com", &[("ACI Advantage", 2)]).await;
    create_va(&h, "Lab").await;
    let key = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
    let request = RequestCode::new(ReservationKind::Specific, "C9300-24UX", "FCW2134L0RN", &key.public_key()).unwrap();
    let body = json!({"request_code": request.to_string(), "licenses": [{"tag": "ACI Advantage", "count": 2}]});
    let made = h.admin("POST", &format!("{API}/virtual-accounts/Default/reservations"), Some(body)).await;
    assert_eq!(made.status, 201, "{:?}", made.body);

    let ours = api_transfer(&h, "ACI Advantage", 1, "Lab").await;
    assert_eq!(ours.status, 409, "{:?}", ours.body);
    let message = ours.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("only 0 of 'ACI Advantage'") && message.contains("nothing was transferred"), "{message}");
    let theirs = legacy_transfer(&h, &[("ACI Advantage", 1, "Lab")]).await;
    assert_eq!((theirs.status, &theirs.body["status"]), (409, &json!("ERROR")), "{:?}", theirs.body);
    assert!(theirs.body["statusMessage"].as_str().unwrap().contains("only 0 of 'ACI Advantage'"), "{:?}", theirs.body);

    assert_eq!(count(&h, "Default", "ACI Advantage", "purchased").await, 2);
    assert_eq!(count(&h, "Default", "ACI Advantage", "reserved").await, 2);
    assert_eq!(count(&h, "Lab", "ACI Advantage", "purchased").await, 0);
}

/// The seed's example: 12 Advantage lend 10 to Essentials in use, so only 2 are available.
#[tokio::test]
async fn licenses_lent_to_lower_tiers_stay() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 12)]).await;
    create_va(&h, "Lab").await;
    let dev = h.register("LEND1", &token).await;
    h.devices.authorize(&dev, &usage(&[("ACI Essentials", 10)]), h.now_ms()).await.unwrap();

    let ours = api_transfer(&h, "ACI Advantage", 3, "Lab").await;
    assert_eq!(ours.status, 409, "{:?}", ours.body);
    assert!(ours.body["error"]["message"].as_str().unwrap().contains("only 2 of 'ACI Advantage'"), "{:?}", ours.body);
    // Two items each within reach, but not together: neither moves.
    let theirs = legacy_transfer(&h, &[("ACI Advantage", 2, "Lab"), ("ACI Advantage", 1, "Lab")]).await;
    assert_eq!(theirs.status, 409, "{:?}", theirs.body);
    assert_eq!(count(&h, "Lab", "ACI Advantage", "purchased").await, 0);
    assert_eq!(shown(&h.licenses("example.com", "Default").await, "ACI Advantage"), "12 (-10)");

    let ours = api_transfer(&h, "ACI Advantage", 2, "Lab").await;
    assert_eq!(ours.status, 200, "{:?}", ours.body);
    assert_eq!(count(&h, "Lab", "ACI Advantage", "purchased").await, 2);
    let pool = h.licenses("example.com", "Default").await;
    assert_eq!((shown(&pool, "ACI Advantage"), pool["status"].as_str()), ("10 (-10)".into(), Some("In Compliance")));
}

/// POSTs every body to `path` at once, each from its own task; the answers' statuses in order.
async fn race(h: &Harness, path: &str, bodies: Vec<Value>) -> Vec<u16> {
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let (http, url, bearer) = (h.http.clone(), format!("{}{path}", h.base), h.bearer());
            tokio::spawn(async move { http.post(url).bearer_auth(bearer).json(&body).send().await.unwrap().status() })
        })
        .collect();
    let mut statuses = Vec::with_capacity(tasks.len());
    for t in tasks {
        statuses.push(t.await.unwrap().as_u16());
    }
    statuses
}

/// Request `j` of a race named items `j` and `j + 1`: those answered 2xx named disjoint
/// items, the others were refused (4xx), and `changed` (read back from the records) is
/// exactly what the 2xx requests named. A half-applied request breaks one of these.
fn whole_or_nothing(what: &str, statuses: &[u16], changed: &BTreeSet<usize>) {
    let mut applied = BTreeSet::new();
    for (j, &status) in statuses.iter().enumerate() {
        match status {
            200..=299 => assert!(applied.insert(j) && applied.insert(j + 1), "{what}: {j} overlaps: {statuses:?}"),
            400..=499 => {}
            other => panic!("{what}: request {j} answered {other}"),
        }
    }
    assert_eq!(changed, &applied, "{what}: the records differ from the answers {statuses:?}");
    // Neighbours overlap, so not all can be served: some were refused.
    assert!(!applied.is_empty() && statuses.iter().any(|s| *s >= 400), "{what}: {statuses:?}");
}

const RACERS: usize = 40;
/// Licenses for the transfer race: enough for a quarter of the two-item requests, and one over.
const SERVED: i64 = RACERS as i64 / 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_multi_item_requests_are_never_half_applied() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 2 * SERVED + 1)]).await;
    for va in ["B", "C"] {
        create_va(&h, va).await;
    }

    // License transfers: each asks 1 to B and 1 to C; exactly SERVED can be served whole.
    let body = json!({"licenses": [
        {"license": "ACI Advantage", "quantity": 1, "targetVirtualAccount": "B"},
        {"license": "ACI Advantage", "quantity": 1, "targetVirtualAccount": "C"}]});
    let statuses = race(&h, &format!("{LEGACY}/Default/licenses/transfer"), vec![body; RACERS]).await;
    assert!(statuses.iter().all(|s| [200, 409].contains(s)), "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 200).count() as i64, SERVED, "{statuses:?}");
    for va in ["B", "C"] {
        assert_eq!(count(&h, va, "ACI Advantage", "purchased").await, SERVED, "{va}");
    }
    assert_eq!(count(&h, "Default", "ACI Advantage", "purchased").await, 1);

    // Device transfers and removals: request j names devices j and j + 1.
    let sudi = |prefix: &str, j: usize| json!({"udiPid": "C9500-32C", "udiSerialNumber": format!("{prefix}{j:02}")});
    for j in 0..=RACERS {
        h.register(&format!("MV{j:02}"), &token).await;
        h.register(&format!("RM{j:02}"), &token).await;
    }
    let moves = (0..RACERS)
        .map(|j| {
            let items = [j, j + 1].map(|k| json!({"sudi": sudi("MV", k), "targetVirtualAccount": "B"}));
            json!({ "productInstances": items })
        })
        .collect();
    let statuses = race(&h, &format!("{LEGACY}/Default/devices/transfer"), moves).await;
    let in_b = h.admin("GET", &format!("{API}/virtual-accounts/B/instances"), None).await.body;
    let moved = serials(&in_b["instances"], "MV");
    whole_or_nothing("device transfer", &statuses, &moved);

    let removals = (0..RACERS)
        .map(|j| {
            let items = [j, j + 1].map(|k| json!({ "sudi": sudi("RM", k) }));
            json!({ "productInstacesRemoveRequests": items })
        })
        .collect();
    let statuses = race(&h, REMOVE, removals).await;
    let left = h.admin("GET", &format!("{API}/virtual-accounts/Default/instances"), None).await.body;
    let left = serials(&left["instances"], "RM");
    let removed = (0..=RACERS).filter(|j| !left.contains(j)).collect();
    whole_or_nothing("device removal", &statuses, &removed);

    // Token revocations: request j names tokens j and j + 1.
    let mut tokens = Vec::new();
    for _ in 0..=RACERS {
        tokens.push(h.token("example.com", "B", json!({})).await);
    }
    let revokes = (0..RACERS).map(|j| json!({ "tokens": [&tokens[j], &tokens[j + 1]] })).collect();
    let statuses = race(&h, &format!("{LEGACY}/B/tokens/revoke"), revokes).await;
    let listed = h.admin("GET", &format!("{API}/virtual-accounts/B/tokens"), None).await.body;
    let revoked = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "REVOKED")
        .map(|t| tokens.iter().position(|whole| whole.starts_with(t["prefix"].as_str().unwrap())).unwrap())
        .collect();
    whole_or_nothing("token revocation", &statuses, &revoked);
}

/// The numbers of the listed instances whose serial number is `prefix` and a number.
fn serials(instances: &Value, prefix: &str) -> BTreeSet<usize> {
    instances
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["udi_serial_number"].as_str().unwrap().strip_prefix(prefix)?.parse().ok())
        .collect()
}
