//! The orchestrator's reports (F-5) over loopback: a real cloud manager with subscription
//! licenses, the orchestrator syncing them, a cluster of real agent daemons using licenses; the
//! Service Inventory, the usage CSVs, the dashboard and the subscription mapper as the REST API
//! serves them.

use crate::common::{Manager, Node, Orchestrator};
use serde_json::{json, Value};

const FOUNDATION: &str = "HCS Cisco UCM Foundation License";

/// The manager's `Lab` pool gets two subscriptions of Foundation licenses.
async fn subscriptions_in_lab(m: &Manager) {
    let path = "/api/v1/accounts/example.com/virtual-accounts/Lab/licenses";
    for (id, kind, count, end) in [("Sub-100", "subscription", 20, "2030-06-30"), ("Sub-200", "term", 5, "2031-01-31")]
    {
        let body = json!({"tag": FOUNDATION, "count": count, "type": kind, "start": "2025-01-01", "end": end,
                          "subscription_id": id});
        m.rest.expect(201, "POST", path, Some(body)).await;
    }
}

/// A text report and its `x-fleet-unreachable` header.
async fn text(o: &Orchestrator, path: &str) -> (String, Option<String>) {
    let answer = o.rest.http.get(format!("{}{path}", o.rest.base)).bearer_auth(&o.rest.token).send().await.unwrap();
    assert_eq!(answer.status(), 200, "{path}");
    let unreachable = answer.headers().get("x-fleet-unreachable").map(|h| h.to_str().unwrap().to_string());
    (answer.text().await.unwrap(), unreachable)
}

/// Syncs until the manager's count of Foundation licenses in use is `in_use` (the nodes report
/// their use after registering, on their own schedule); the per-virtual-account CSV then.
async fn synced_with(o: &Orchestrator, in_use: i64) -> String {
    let want = format!("Lab@example.com,CSSM,{FOUNDATION},25,{in_use},");
    for _ in 0..100 {
        let queued = o.rest.expect(202, "POST", "/accounts/example.com/sync", None).await;
        assert_eq!(o.job_of(&queued).await["status"], "Completed");
        let (csv, _) = text(o, "/reports/usage/virtual-accounts").await;
        if csv.contains(&want) {
            return csv;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the manager never counted {in_use} in use");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_show_synced_licenses_and_what_clusters_use() {
    let m = Manager::start().await;
    subscriptions_in_lab(&m).await;
    let o = Orchestrator::start().await;
    let account = json!({"name": "example.com", "kind": "cloud", "base_url": m.rest.base, "ca_pem": m.ca_pem,
                         "client_id": m.client_id, "client_secret": m.client_secret});
    let added = o.rest.expect(201, "POST", "/accounts", Some(account)).await;
    assert_eq!(o.job_of(&added).await["status"], "Completed");
    let mode = json!({"license_mode": "hcs"});
    o.rest.expect(200, "PUT", "/accounts/example.com/virtual-accounts/Lab/license-mode", Some(mode)).await;
    for customer in ["acme", "globex"] {
        o.rest.expect(201, "POST", "/customers", Some(json!({"name": customer, "account": "example.com"}))).await;
    }
    let n1 = Node::start_using("NODE0101", &m.ca_pem, &[(FOUNDATION, 3)]).await;
    let n2 = Node::start_using("NODE0102", &m.ca_pem, &[(FOUNDATION, 2)]).await;
    let nodes = json!([{"name": "n1", "api_url": n1.url}, {"name": "n2", "api_url": n2.url}]);
    let cluster = json!({"name": "cucm1", "customer": "acme", "application": "call-control", "nodes": nodes});
    o.rest.expect(201, "POST", "/clusters", Some(cluster)).await;
    let idle = json!({"name": "cuc9", "customer": "globex", "application": "voicemail", "nodes": []});
    o.rest.expect(201, "POST", "/clusters", Some(idle)).await;
    let assign = json!({"account": "example.com", "virtual_account": "Lab"});
    let queued = o.rest.expect(202, "POST", "/clusters/cucm1/assign", Some(assign)).await;
    assert_eq!(o.job_of(&queued).await["status"], "Completed");

    // Per virtual account: both subscriptions summed, the nodes' 5 counted by the manager.
    let csv = synced_with(&o, 5).await;
    assert_eq!(
        csv,
        format!(
            "Virtual Account,Manager,License,Installed,In Use,Available,Status\r\n\
             Default@example.com,CSSM,ACI Essentials,10,0,10,In Compliance\r\n\
             Lab@example.com,CSSM,{FOUNDATION},25,5,20,In Compliance\r\n"
        )
    );

    // The Service Inventory: one PLMINFO line per subscription (the use on the one ending first),
    // the cluster's use as its nodes report it, and the customer's total.
    let (report, unreachable) = text(&o, "/reports/service-inventory").await;
    assert_eq!(unreachable, None);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(
        lines,
        [
            "|LICENSESUMMARYSTART|".to_string(),
            "|SUMMARY|PLMINFO|Default@example.com,CSSM,~,~,PERPETUAL|~|~|ACI Essentials|10|0|10|In Compliance|".into(),
            format!("|SUMMARY|PLMINFO|Lab@example.com,CSSM,Sub-100,2030-06-30,SUBSCRIPTION|~|~|{FOUNDATION}|20|5|15|In Compliance|"),
            format!("|SUMMARY|PLMINFO|Lab@example.com,CSSM,Sub-200,2031-01-31,TERM|~|~|{FOUNDATION}|5|0|5|In Compliance|"),
            format!("|SUMMARY|CUSTLICENSEINFO|Lab@example.com,CSSM|~|~|acme|Unified CM|127.0.0.1|{FOUNDATION}|5|"),
            format!("|SUMMARY|SITELICENSEINFO|~|~|acme|~|{FOUNDATION}|5|"),
            "|LICENSESUMMARYEND|".into(),
        ]
    );
    let (csv, _) = text(&o, "/reports/usage/customers").await;
    assert_eq!(
        csv,
        format!("Customer,Virtual Account,Manager,License,In Use,Clusters\r\nacme,Lab@example.com,CSSM,{FOUNDATION},5,1\r\n")
    );

    let d = o.rest.expect(200, "GET", "/reports/dashboard", None).await;
    assert_eq!((d["customers"].as_i64(), d["clusters"].as_i64()), (Some(2), Some(2)), "{d:#}");
    assert_eq!((d["installed"].as_i64(), d["in_use"].as_i64()), (Some(35), Some(5)), "{d:#}");
    let statuses: Vec<(&str, i64)> = d["cluster_statuses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["clusters"] != 0)
        .map(|s| (s["text"].as_str().unwrap(), s["clusters"].as_i64().unwrap()))
        .collect();
    assert_eq!(statuses, [("Deregistered", 1), ("Manually Registered", 1)]);
    assert_eq!(
        d["customer_usage"],
        json!([{"customer": "acme", "clusters": 1, "in_use": 5},
                                           {"customer": "globex", "clusters": 1, "in_use": 0}])
    );
    assert_eq!(d["unreachable_nodes"], json!([]));

    // A node that stops answering is left out of the use, and named.
    let gone = n2.url.trim_start_matches("http://").to_string();
    drop(n2);
    // The daemon stops on its own task: wait (bounded) until its port refuses connections.
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(&gone).await.is_err() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (report, unreachable) = text(&o, "/reports/service-inventory").await;
    assert_eq!(unreachable.as_deref(), Some("cucm1/n2"));
    assert!(report.contains(&format!("|SUMMARY|SITELICENSEINFO|~|~|acme|~|{FOUNDATION}|3|")), "{report}");
    let d = o.rest.expect(200, "GET", "/reports/dashboard", None).await;
    assert_eq!(d["unreachable_nodes"], json!(["cucm1/n2"]));

    // Reports are the administrator's, like every call.
    let anonymous = o.rest.http.get(format!("{}/reports/dashboard", o.rest.base)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscription_mapper_maps_synced_subscriptions_to_customers() {
    let m = Manager::start().await;
    subscriptions_in_lab(&m).await;
    let o = Orchestrator::start().await;
    let account = json!({"name": "example.com", "kind": "cloud", "base_url": m.rest.base, "ca_pem": m.ca_pem,
                         "client_id": m.client_id, "client_secret": m.client_secret});
    let added = o.rest.expect(201, "POST", "/accounts", Some(account)).await;
    assert_eq!(o.job_of(&added).await["status"], "Completed");
    o.rest.expect(201, "POST", "/customers", Some(json!({"name": "acme", "account": "example.com"}))).await;

    let rows = |answer: &Value| -> Vec<(Value, Value, Value, Value)> {
        answer["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (r["subscription_id"].clone(), r["end_date"].clone(), r["customer"].clone(), r["license_model"].clone())
            })
            .collect()
    };
    // Soonest end first; the perpetual licenses (no subscription id) belong to the provider.
    let before = o.rest.expect(200, "GET", "/subscriptions", None).await;
    assert_eq!(
        rows(&before),
        [
            (json!("Sub-100"), json!("2030-06-30"), Value::Null, Value::Null),
            (json!("Sub-200"), json!("2031-01-31"), Value::Null, Value::Null),
            (Value::Null, Value::Null, json!("Provider"), json!("perpetual")),
        ]
    );

    // Bad requests name the field and change nothing.
    let refused = [
        ("Sub-999", json!({"customer": "acme", "license_model": "Named User"}), "subscription_id"),
        ("Sub-100", json!({"customer": "initech", "license_model": "Named User"}), "customer"),
        ("Sub-100", json!({"customer": "acme", "license_model": "Flex"}), "license_model"),
    ];
    for (id, body, field) in refused {
        let (status, answer) = o.rest.call("PUT", &format!("/subscriptions/{id}"), Some(body)).await;
        assert_eq!((status, answer["error"]["field"].as_str()), (400, Some(field)), "{answer}");
    }
    assert_eq!(o.rest.expect(200, "GET", "/subscriptions", None).await, before);

    // Mapped, then mapped again: one customer per subscription, the last mapping kept.
    let named = json!({"customer": "acme", "license_model": "Named User"});
    let mapped = o.rest.expect(200, "PUT", "/subscriptions/Sub-100", Some(named)).await;
    assert_eq!(mapped, json!({"subscription_id": "Sub-100", "customer": "acme", "license_model": "named_user"}));
    let ea = json!({"customer": "acme", "license_model": "enterprise_agreement"});
    o.rest.expect(200, "PUT", "/subscriptions/Sub-100", Some(ea)).await;
    let after = o.rest.expect(200, "GET", "/subscriptions", None).await;
    assert_eq!(rows(&after)[0], (json!("Sub-100"), json!("2030-06-30"), json!("acme"), json!("enterprise_agreement")));
    assert_eq!(after["subscriptions"][0]["license_details"], json!([{"license": FOUNDATION, "count": 0}]));
}
