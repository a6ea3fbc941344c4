//! PAK conversion (V-2) over real HTTPS: the operator imports PAKs (all or none, a bad line
//! named), a smart account converts them in parts or whole as each PAK allows, never twice,
//! and reads the history; another account's users see nothing of it.

use crate::common;

use common::*;
use serde_json::{json, Value};

const PAKS: &str = "/api/v1/accounts/a.com/paks";

/// a.com with a "Lab" pool and b.com; two PAKs of a.com: PAK-P (partial fulfilment allowed,
/// ordered for Lab) and PAK-W (whole only, no pool).
async fn imported(h: &Harness) {
    for domain in ["a.com", "b.com"] {
        assert_eq!(h.admin("POST", "/api/v1/accounts", Some(json!({"domain": domain}))).await.status, 201);
    }
    let lab = h.admin("POST", "/api/v1/accounts/a.com/virtual-accounts", Some(json!({"name": "Lab"}))).await;
    assert_eq!(lab.status, 201);
    let a = h.admin("POST", PAKS, Some(import_body())).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    assert_eq!(a.body["paks"].as_array().unwrap().len(), 2);
}

fn import_body() -> Value {
    json!({"paks": [
        {"pak": "PAK-P", "order_number": "106386347", "order_date": "2018-05-07", "virtual_account": "Lab",
         "partial_fulfillment": true,
         "lines": [{"sku": "C9500-NW-A", "quantity": 25}, {"sku": "C9500-DNA-32C-A-10", "quantity": 2}]},
        {"pak": "PAK-W", "order_number": "106386348", "order_date": "2018-05-08",
         "lines": [{"sku": "UCM-ENH-USR-25", "quantity": 4}]},
    ]})
}

fn pak<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["paks"].as_array().unwrap().iter().find(|p| p["pak"] == name).unwrap_or_else(|| panic!("{name} in {list}"))
}

fn convert_path(pak: &str) -> String {
    format!("{PAKS}/{pak}/convert")
}

#[tokio::test]
async fn a_pak_converts_in_parts_never_beyond_what_it_holds() {
    let h = Harness::new().await;
    imported(&h).await;
    let list = h.admin("GET", PAKS, None).await.body;
    let p = pak(&list, "PAK-P");
    assert_eq!(p["status"], "Not converted");
    assert_eq!(p["skus"], "C9500-DNA-32C-A-10 (2), C9500-NW-A (25)");
    assert_eq!((p["virtual_account"].as_str(), p["order_date"].as_str()), (Some("Lab"), Some("2018-05-07")));

    // A smart account user converts part of it into the Default pool.
    let (user_id, _, user) = h.client("a.com", json!({"name": "u", "role": "smart-account-user"})).await;
    let part = json!({"virtual_account": "Default", "lines": [{"sku": "C9500-NW-A", "quantity": 10}]});
    let a = h.call(&user, "POST", &convert_path("PAK-P"), Some(part)).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    assert_eq!(a.body["pak"]["status"], "Partially converted");
    assert_eq!(a.body["licenses"][0]["sku"], "PAK:PAK-P:C9500-NW-A");
    assert_eq!(shown(&h.licenses("a.com", "Default").await, "C9500 Network Advantage"), "10");

    // More than remains is refused naming the SKU and what is left; nothing changes.
    let over = json!({"virtual_account": "Default", "lines": [{"sku": "C9500-NW-A", "quantity": 16}]});
    let a = h.call(&user, "POST", &convert_path("PAK-P"), Some(over)).await;
    assert_eq!((a.status, a.code()), (409, "CONFLICT"), "{:?}", a.body);
    let why = a.body["error"]["message"].as_str().unwrap();
    assert!(why.contains("'C9500-NW-A' has 15 left to convert") && why.contains("16 asked"), "{why}");

    // The rest, into Lab; then a further conversion is refused: what was converted is gone.
    let a = h.call(&user, "POST", &convert_path("PAK-P"), Some(json!({"virtual_account": "Lab"}))).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    assert_eq!(a.body["pak"]["status"], "Converted");
    assert_eq!(shown(&h.licenses("a.com", "Lab").await, "C9500 32C DNA Advantage"), "20");
    assert_eq!(shown(&h.licenses("a.com", "Lab").await, "C9500 Network Advantage"), "15");
    let again = h.call(&user, "POST", &convert_path("PAK-P"), Some(json!({"virtual_account": "Lab"}))).await;
    assert_eq!(again.status, 409, "{:?}", again.body);
    assert!(again.body["error"]["message"].as_str().unwrap().contains("nothing remains"));
    let list = h.admin("GET", PAKS, None).await.body;
    let lines = &pak(&list, "PAK-P")["lines"];
    assert!(lines.as_array().unwrap().iter().all(|l| l["remaining"] == 0), "{lines}");

    // The history, newest first, with who and where; one event per conversion.
    let history = h.call(&user, "GET", "/api/v1/accounts/a.com/pak-conversions", None).await.body;
    let rows: Vec<(&str, &str, usize)> = history["conversions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (c["virtual_account"].as_str().unwrap(), c["by"].as_str().unwrap(), c["lines"].as_array().unwrap().len())
        })
        .collect();
    assert_eq!(rows, [("Lab", user_id.as_str(), 2), ("Default", user_id.as_str(), 1)]);
    let events = h.admin("GET", "/api/v1/accounts/a.com/events?limit=100", None).await.body.to_string();
    assert_eq!(events.matches("pak.converted").count(), 2, "{events}");
}

#[tokio::test]
async fn a_pak_without_partial_fulfilment_converts_only_whole() {
    let h = Harness::new().await;
    imported(&h).await;
    let part = json!({"virtual_account": "Default", "lines": [{"sku": "UCM-ENH-USR-25", "quantity": 1}]});
    let a = h.admin("POST", &convert_path("PAK-W"), Some(part)).await;
    assert_eq!(a.status, 409, "{:?}", a.body);
    assert!(a.body["error"]["message"].as_str().unwrap().contains("partial fulfilment is not allowed"));
    assert_eq!(pak(&h.admin("GET", PAKS, None).await.body, "PAK-W")["status"], "Not converted");
    let a = h.admin("POST", &convert_path("PAK-W"), Some(json!({"virtual_account": "Default"}))).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    // 4 packs of 25 users.
    assert_eq!(a.body["conversion"]["lines"][0]["licenses"], 100);
    assert_eq!(shown(&h.licenses("a.com", "Default").await, "CUCM Enhanced"), "100");
}

#[tokio::test]
async fn a_bad_import_names_its_line_and_imports_nothing() {
    let h = Harness::new().await;
    imported(&h).await;
    let mut body = import_body();
    body["paks"][0]["pak"] = json!("PAK-NEW");
    body["paks"][1]["pak"] = json!("PAK-NEW2");
    body["paks"][1]["lines"] = json!([{"sku": "UCM-ENH-USR-25", "quantity": 1}, {"sku": "NO-SUCH-SKU", "quantity": 3}]);
    let a = h.admin("POST", PAKS, Some(body.clone())).await;
    assert_eq!((a.status, a.code()), (400, "INVALID_INPUT"), "{:?}", a.body);
    assert_eq!(a.body["error"]["field"], "paks[1].lines[1]");
    let why = a.body["error"]["message"].as_str().unwrap();
    assert!(
        why.contains("PAK 2 ('PAK-NEW2')")
            && why.contains("line 2: SKU 'NO-SUCH-SKU' is not in the catalogue's legacy mapping"),
        "{why}"
    );
    // A PAK imported before: refused naming it, the new one in the same import not kept.
    body["paks"][1] = import_body()["paks"][1].clone();
    let a = h.admin("POST", PAKS, Some(body)).await;
    assert_eq!(a.status, 409, "{:?}", a.body);
    assert!(a.body["error"]["message"].as_str().unwrap().contains("PAK 'PAK-W' was imported already"));
    let listed = h.admin("GET", PAKS, None).await.body;
    assert_eq!(listed["paks"].as_array().unwrap().len(), 2, "{listed}");
    // A bad date and an unknown pool are named too; only the operator imports.
    let mut one = json!({"paks": [import_body()["paks"][0].clone()]});
    one["paks"][0]["order_date"] = json!("07/05/2018");
    let a = h.admin("POST", PAKS, Some(one.clone())).await;
    assert_eq!((a.status, a.body["error"]["field"].as_str()), (400, Some("paks[0].order_date")), "{:?}", a.body);
    let (_, _, admin) = h.client("a.com", json!({"name": "adm", "role": "smart-account-admin"})).await;
    let a = h.call(&admin, "POST", PAKS, Some(import_body())).await;
    assert_eq!(a.status, 403, "{:?}", a.body);
}

#[tokio::test]
async fn another_accounts_users_see_nothing_and_pool_roles_see_their_pool() {
    let h = Harness::new().await;
    imported(&h).await;
    let (_, _, outsider) = h.client("b.com", json!({"name": "b-admin", "role": "smart-account-admin"})).await;
    for (method, path, body) in [
        ("GET", PAKS.to_string(), None),
        ("GET", "/api/v1/accounts/a.com/pak-conversions".to_string(), None),
        ("POST", convert_path("PAK-P"), Some(json!({"virtual_account": "Default"}))),
    ] {
        let a = h.call(&outsider, method, &path, body).await;
        assert_eq!(a.status, 404, "{method} {path}: {:?}", a.body);
        assert!(!a.body.to_string().contains("PAK-P"), "{:?}", a.body);
    }
    // Its own account has no PAKs; converting a.com's PAK through b.com finds none.
    assert_eq!(h.call(&outsider, "GET", "/api/v1/accounts/b.com/paks", None).await.body["paks"], json!([]));
    let a = h
        .call(
            &outsider,
            "POST",
            "/api/v1/accounts/b.com/paks/PAK-P/convert",
            Some(json!({"virtual_account": "Default"})),
        )
        .await;
    assert_eq!(a.status, 404, "{:?}", a.body);

    // A virtual account admin of Lab sees Lab's PAK only and converts into Lab only.
    let (_, _, lab) =
        h.client("a.com", json!({"name": "lab", "role": "virtual-account-admin", "virtual_account": "Lab"})).await;
    let seen = h.call(&lab, "GET", PAKS, None).await.body;
    assert_eq!(
        seen["paks"].as_array().unwrap().iter().map(|p| p["pak"].as_str().unwrap()).collect::<Vec<_>>(),
        ["PAK-P"]
    );
    let a = h.call(&lab, "POST", &convert_path("PAK-P"), Some(json!({"virtual_account": "Default"}))).await;
    assert_eq!(a.status, 403, "{:?}", a.body);
    let a = h.call(&lab, "POST", &convert_path("PAK-W"), Some(json!({"virtual_account": "Lab"}))).await;
    assert_eq!(a.status, 404, "{:?}", a.body);
    // A virtual account user may not convert at all.
    let (_, _, viewer) =
        h.client("a.com", json!({"name": "v", "role": "virtual-account-user", "virtual_account": "Lab"})).await;
    let a = h.call(&viewer, "POST", &convert_path("PAK-P"), Some(json!({"virtual_account": "Lab"}))).await;
    assert_eq!(a.status, 403, "{:?}", a.body);
    assert_eq!(pak(&h.admin("GET", PAKS, None).await.body, "PAK-P")["status"], "Not converted");
}

/// The portal's License Conversion tab: the seed's PAK table, a partial conversion through a
/// PAK's form (a quantity over what remains refused, naming it), then the history.
#[tokio::test]
async fn the_portal_converts_a_pak_and_shows_the_history() {
    use common::portal::{portal_user, Browser, PASSWORD};
    let h = Harness::new().await;
    imported(&h).await;
    let login = portal_user(&h, "a.com", "alice", "smart-account-admin", None).await;
    let b = Browser::new(&h);
    assert_eq!(b.sign_in(&login, PASSWORD).await.status, 303);
    let tab = "/portal/a.com/Default/conversion";
    let page = b.get(tab).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for words in [
        "License Conversion",
        "Convert PAKs",
        "Conversion History",
        "PAK-P",
        "C9500-DNA-32C-A-10 (2), C9500-NW-A (25)",
        "Not converted",
    ] {
        assert!(page.body.contains(words), "{words} in {}", page.body);
    }
    assert!(page.body.contains("Partial fulfilment: not allowed"), "PAK-W's form says it converts whole");

    let form = "/portal/a.com/Default/conversion/paks/PAK-P";
    let over = b
        .submit(tab, form, &[("virtual_account", "Lab"), ("qty:C9500-NW-A", "26"), ("qty:C9500-DNA-32C-A-10", "0")])
        .await;
    assert_eq!(over.status, 409, "{}", over.body);
    assert!(over.body.contains("SKU 'C9500-NW-A' has 25 left to convert; 26 asked"), "{}", over.body);
    let done = b
        .submit(tab, form, &[("virtual_account", "Lab"), ("qty:C9500-NW-A", "5"), ("qty:C9500-DNA-32C-A-10", "")])
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("C9500-NW-A (5) of PAK PAK-P converted into Lab"), "{}", done.body);
    assert!(done.body.contains("Partially converted"), "{}", done.body);
    assert_eq!(shown(&h.licenses("a.com", "Lab").await, "C9500 Network Advantage"), "5");

    let history = b.get("/portal/a.com/Default/conversion/history").await;
    assert_eq!(history.status, 200);
    assert!(history.body.contains("C9500-NW-A (5)") && history.body.contains(&login), "{}", history.body);
}

/// Conversions of one PAK racing over HTTPS: 25 units, eight asks of 4 at once; six fit, the
/// others are refused naming what remains, and the pool holds exactly what was converted.
#[tokio::test]
async fn racing_conversions_never_convert_more_than_the_pak_holds() {
    let h = Harness::new().await;
    imported(&h).await;
    let ask = json!({"virtual_account": "Default", "lines": [{"sku": "C9500-NW-A", "quantity": 4}]});
    let path = convert_path("PAK-P");
    let one = || h.admin("POST", &path, Some(ask.clone()));
    let all = tokio::join!(one(), one(), one(), one(), one(), one(), one(), one());
    let answers = [all.0, all.1, all.2, all.3, all.4, all.5, all.6, all.7];
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 6, "{statuses:?}");
    for refused in answers.iter().filter(|a| a.status != 201) {
        assert_eq!(refused.status, 409, "{:?}", refused.body);
        assert!(
            refused.body["error"]["message"].as_str().unwrap().contains("has 1 left to convert"),
            "{:?}",
            refused.body
        );
    }
    assert_eq!(shown(&h.licenses("a.com", "Default").await, "C9500 Network Advantage"), "24");
}

#[tokio::test]
async fn a_satellite_neither_imports_nor_converts_paks() {
    use common::satellite::{approved, cloud, refused, satellite};
    let (cloud, sat) = (cloud().await, satellite().await);
    approved(&cloud, &sat, "Lab").await;
    let paks = "/api/v1/accounts/example.com/paks";
    let body = json!({"paks": [{"pak": "PAK-S", "order_number": "1", "order_date": "2018-05-07",
        "lines": [{"sku": "C9500-NW-A", "quantity": 1}]}]});
    for (path, body) in [(paks.to_string(), body), (format!("{paks}/PAK-S/convert"), json!({"virtual_account": "Lab"}))]
    {
        refused(
            &sat.admin("POST", &path, Some(body)).await,
            409,
            "PAKs are imported and converted in the cloud manager",
        );
    }
    assert_eq!(sat.admin("GET", paks, None).await.body["paks"], json!([]));
}
