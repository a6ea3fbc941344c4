//! Cursors of paged listings: the `next` a page answers and the `?cursor=` of the page after.
//! Opaque to clients (base64url of a small JSON object), so a listing can change how it finds
//! its next page without changing its API. An instance listing's cursor holds the last
//! instance's sort key, an event log's the last event's id (keyset paging: a page deep in a
//! large pool or a long log costs what the first one does); the listings built in memory hold
//! an offset.

use crate::error::{ApiError, ApiResult};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use smartlic_store::InstanceKey;

/// Where the page of an in-memory listing starts.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OffsetCursor {
    #[serde(rename = "o")]
    pub(crate) offset: usize,
}

/// The event a page of the event log (newest first) starts below.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventCursor {
    #[serde(rename = "e")]
    pub(crate) before: i64,
}

/// The instance a page of an instance listing starts after.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InstanceCursor {
    #[serde(rename = "v")]
    pool: i64,
    #[serde(rename = "p")]
    pid: String,
    #[serde(rename = "s")]
    serial: String,
}

impl From<&InstanceKey> for InstanceCursor {
    fn from(k: &InstanceKey) -> Self {
        InstanceCursor { pool: k.virtual_account_id, pid: k.udi_pid.clone(), serial: k.udi_sn.clone() }
    }
}

impl From<InstanceCursor> for InstanceKey {
    fn from(c: InstanceCursor) -> Self {
        InstanceKey { virtual_account_id: c.pool, udi_pid: c.pid, udi_sn: c.serial }
    }
}

/// `position` as a cursor.
pub(crate) fn encode(position: &impl Serialize) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).unwrap_or_default())
}

/// The position `cursor` holds; a cursor this kind of listing did not answer is a 400 naming
/// the parameter (and a few of its characters: it may be long).
pub(crate) fn decode<T: DeserializeOwned>(cursor: &str) -> ApiResult<T> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor.as_bytes()).ok();
    bytes.and_then(|b| serde_json::from_slice(&b).ok()).ok_or_else(|| {
        let shown: String = cursor.chars().take(40).collect();
        let more = if shown.len() < cursor.len() { "..." } else { "" };
        ApiError::invalid(
            "cursor",
            format!("'{shown}{more}' is not a cursor of this listing: give the `next` of its previous page, unchanged"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_another_kind_is_refused() {
        let key = InstanceKey { virtual_account_id: 7, udi_pid: "C9300-24UX".into(), udi_sn: "FOC&1 é".into() };
        let cursor = encode(&InstanceCursor::from(&key));
        assert!(cursor.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{cursor}");
        assert_eq!(InstanceKey::from(decode::<InstanceCursor>(&cursor).unwrap()), key);
        assert_eq!(decode::<OffsetCursor>(&encode(&OffsetCursor { offset: 3 })).unwrap().offset, 3);
        for bad in [cursor.as_str(), "", "not base64!", &encode(&"text")] {
            assert!(decode::<OffsetCursor>(bad).is_err(), "{bad}");
        }
        assert!(decode::<InstanceCursor>(&encode(&OffsetCursor { offset: 3 })).is_err());
    }
}
