//! A request of many parts, sent as the YAML file itself: the cloud checks it whole, then
//! applies its parts in one import that is all-or-nothing: a part refused late leaves the
//! cloud as it was.

use crate::common;

use common::satellite::{approved, cloud, device, in_use, key_of, refused, satellite};
use common::{Answer, Harness};
use smartlic_proto::sync::stream::{RequestHead, RequestPart, RequestWriter, PART_SIZE};
use smartlic_proto::sync::{ReportedInstance, SignedBy};
use smartlic_proto::CertificateAuthority;

/// A full request `sequence` of satellite `id` signed by `key`, with these parts.
fn request(key: &CertificateAuthority, id: i64, sequence: i64, parts: &[RequestPart]) -> Vec<u8> {
    let head = RequestHead {
        satellite_id: id,
        local_account: "Plant".into(),
        smart_account: common::satellite::DOMAIN.into(),
        sequence,
        acknowledges: 0,
        full: true,
        interval_days: 30,
        created_at: 1_800_000_000_000,
        signed_by: SignedBy::of(key.signer()),
    };
    let mut file = RequestWriter::begin(Vec::new(), &head).unwrap();
    for p in parts {
        file.part(p).unwrap();
    }
    file.finish(key.signer()).unwrap()
}

/// `n` instances of `pool` from serial `from` on, each using `count` licenses.
fn part(pool: &str, from: usize, n: usize, count: i64) -> RequestPart {
    let instance = |i: usize| ReportedInstance {
        pid: "C9300-48P".into(),
        sn: format!("FCW{i:06}"),
        hostname: format!("sw{i}"),
        last_contact_at: 1_800_000_000_000,
        usage: [(common::satellite::TAG.to_string(), count)].into(),
    };
    RequestPart { pool: pool.into(), instances: (from..from + n).map(instance).collect(), removed: Vec::new() }
}

/// The cloud's File Sync of a request file posted as YAML.
async fn file_sync(cloud: &Harness, file: Vec<u8>) -> Answer {
    let posted = cloud
        .http
        .post(format!("{}/api/v1/satellites/file-sync", cloud.base))
        .bearer_auth(cloud.bearer())
        .header("content-type", "application/yaml")
        .body(file)
        .send()
        .await
        .unwrap();
    let status = posted.status().as_u16();
    Answer { status, body: posted.json().await.unwrap_or_default() }
}

async fn mirrored(cloud: &Harness, id: i64) -> usize {
    let body = cloud.admin("GET", &format!("/api/v1/satellites/{id}/instances"), None).await.body;
    body["instances"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn a_request_of_many_parts_is_applied_whole_or_not_at_all() {
    let cloud = cloud().await;
    let sat = satellite().await;
    let id = approved(&cloud, &sat, "Lab").await;
    device(&sat, &cloud, "FCH0001", 3).await;
    common::satellite::sync_now(&sat, &cloud, true).await;
    assert_eq!((in_use(&cloud, "Lab").await, mirrored(&cloud, id).await), (3, 1));
    let key = key_of(&sat);

    // Refused in its last part, after a whole part was applied: nothing of it stays.
    let negative = request(&key, id, 2, &[part("Lab", 0, PART_SIZE, 1), part("Lab", PART_SIZE, 1, -1)]);
    refused(&file_sync(&cloud, negative).await, 400, "reports a negative usage count");
    let elsewhere = request(&key, id, 2, &[part("Lab", 0, PART_SIZE, 1), part("Nope", 0, 1, 1)]);
    refused(&file_sync(&cloud, elsewhere).await, 409, "does not serve virtual account 'Nope'");
    let mut cut = request(&key, id, 2, &[part("Lab", 0, PART_SIZE, 1), part("Lab", PART_SIZE, 1, 1)]);
    cut.truncate(cut.len() - 20);
    refused(&file_sync(&cloud, cut).await, 400, "truncated");
    assert_eq!((in_use(&cloud, "Lab").await, mirrored(&cloud, id).await), (3, 1));

    // Whole, its parts replace the cloud's copy.
    let good = request(&key, id, 2, &[part("Lab", 0, PART_SIZE, 1), part("Lab", PART_SIZE, 1, 2)]);
    let answered = file_sync(&cloud, good).await;
    assert_eq!(answered.status, 200, "{:?}", answered.body);
    let in_lab = i64::try_from(PART_SIZE).unwrap() + 2;
    assert_eq!((in_use(&cloud, "Lab").await, mirrored(&cloud, id).await), (in_lab, PART_SIZE + 1));
}
