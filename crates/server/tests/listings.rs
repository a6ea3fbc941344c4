//! Instance listings over real HTTPS read one page at a time (its instances, then their usage
//! together): each page holds the instances the caller may see, in order, each with its own usage,
//! and its `next` cursor leads to the next page (keyset paging: no offset).

use crate::common;

use common::*;
use serde_json::{json, Value};

/// Every page of `path` with `limit` items, followed by `next`: (serial, usage) of each
/// instance, page by page.
async fn pages(h: &Harness, path: &str, limit: usize) -> Vec<Vec<(String, Vec<(String, i64)>)>> {
    let mut cursor = Some(String::new());
    let mut found = Vec::new();
    while let Some(at) = cursor {
        let after = if at.is_empty() { String::new() } else { format!("&cursor={at}") };
        let page = h.admin("GET", &format!("{path}?limit={limit}{after}"), None).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let rows = page.body["instances"].as_array().unwrap().iter().map(|i| {
            let usage = i["usage"].as_array().unwrap();
            let usage = usage.iter().map(|u| (u["tag"].as_str().unwrap().to_string(), u["count"].as_i64().unwrap()));
            (i["udi_serial_number"].as_str().unwrap().to_string(), usage.collect())
        });
        found.push(rows.collect());
        assert!(page.body.get("next_offset").is_none(), "{}", page.body);
        cursor = page.body["next"].as_str().map(str::to_string);
    }
    found
}

#[tokio::test]
async fn each_page_of_instances_shows_each_ones_own_usage() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 20), ("ACI Essentials", 20)]).await;
    let reported: [(&str, &[(&str, i64)]); 5] = [
        ("FOC0001", &[("ACI Advantage", 1)]),
        ("FOC0002", &[("ACI Essentials", 2)]),
        ("FOC0003", &[]),
        ("FOC0004", &[("ACI Advantage", 3), ("ACI Essentials", 4)]),
        ("FOC0005", &[("ACI Essentials", 5)]),
    ];
    for (sn, used) in reported {
        let device = h.register(sn, &token).await;
        h.devices.authorize(&device, &usage(used), h.now_ms()).await.unwrap();
    }
    let expected: Vec<(String, Vec<(String, i64)>)> = reported
        .iter()
        .map(|(sn, used)| (sn.to_string(), used.iter().map(|(t, c)| (t.to_string(), *c)).collect()))
        .collect();
    for path in
        ["/api/v1/accounts/example.com/instances", "/api/v1/accounts/example.com/virtual-accounts/Default/instances"]
    {
        let by_two = pages(&h, path, 2).await;
        assert_eq!(by_two.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1], "{path}");
        assert_eq!(by_two.concat(), expected, "{path}");
        assert_eq!(pages(&h, path, 1000).await, std::slice::from_ref(&expected), "{path}");
    }
    // A cursor the listing did not answer, or an offset, is refused naming the parameter.
    let last = h.admin("GET", "/api/v1/accounts/example.com/instances?limit=4", None).await.body;
    let cursor = last["next"].as_str().unwrap();
    for (query, field, words) in [
        (format!("cursor={}x", &cursor[..cursor.len() - 1]), "cursor", "is not a cursor of this listing"),
        ("cursor=bm90IGEgY3Vyc29y".to_string(), "cursor", "is not a cursor of this listing"),
        ("cursor=%00".to_string(), "cursor", "is not a cursor of this listing"),
        ("offset=5".to_string(), "", "offset"),
        ("limit=10001".to_string(), "limit", "between 1 and 10000"),
    ] {
        let r = h.admin("GET", &format!("/api/v1/accounts/example.com/instances?{query}"), None).await;
        assert_eq!(r.status, 400, "{query}: {}", r.body);
        assert!(r.body["error"]["message"].as_str().unwrap().contains(words), "{query}: {}", r.body);
        if !field.is_empty() {
            assert_eq!(r.body["error"]["field"], field, "{query}: {}", r.body);
        }
    }
    // The cursor of another kind of listing (an offset) is refused too.
    let offset_cursor = "eyJvIjozfQ"; // {"o":3}
    let r = h.admin("GET", &format!("/api/v1/accounts/example.com/instances?cursor={offset_cursor}"), None).await;
    assert_eq!((r.status, &r.body["error"]["field"]), (400, &json!("cursor")), "{}", r.body);

    // A caller bound to one pool pages through that pool's instances only.
    let lab = h.admin("POST", "/api/v1/accounts/example.com/virtual-accounts", Some(json!({"name": "Lab"}))).await;
    assert_eq!(lab.status, 201, "{}", lab.body);
    let listed = h.admin("GET", "/api/v1/accounts/example.com/instances", None).await.body;
    for sn in ["FOC0002", "FOC0004"] {
        let id = listed["instances"].as_array().unwrap().iter().find(|i| i["udi_serial_number"] == sn).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let path = format!("/api/v1/accounts/example.com/instances/{id}/move");
        assert_eq!(h.admin("POST", &path, Some(json!({"to": "Lab"}))).await.status, 200);
    }
    let (_, _, lab_user) =
        h.client("example.com", json!({"name": "lab", "role": "virtual-account-user", "virtual_account": "Lab"})).await;
    let first = h.call(&lab_user, "GET", "/api/v1/accounts/example.com/instances?limit=1", None).await;
    let next = first.body["next"].as_str().unwrap();
    let second =
        h.call(&lab_user, "GET", &format!("/api/v1/accounts/example.com/instances?limit=1&cursor={next}"), None).await;
    let serials = |page: &Value| {
        page["instances"].as_array().unwrap().iter().map(|i| i["udi_serial_number"].clone()).collect::<Vec<_>>()
    };
    assert_eq!(serials(&first.body), vec![json!("FOC0002")]);
    assert_eq!((serials(&second.body), &second.body["next"]), (vec![json!("FOC0004")], &Value::Null));
    assert_eq!(
        second.body["instances"][0]["usage"],
        json!([{"tag": "ACI Advantage", "count": 3}, {"tag": "ACI Essentials", "count": 4}])
    );
}
