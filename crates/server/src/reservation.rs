//! Offline reservation, manager side: the operations both REST front-ends call (`/api/v1`
//! in `api`, the original API in `legacy`), so each rule is written once.
//!
//! A device's request code becomes an authorization code signed with the CA key (the key
//! devices already trust for answers) and the licenses leave the pool: they count like usage
//! in the ledger, and a reservation may take only what nobody uses, checked again inside the
//! storing transaction. A return code signed by the device that made the request gives them
//! back, once.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use rand::RngCore;
use smartlic_core::compliance::Ledger;
use smartlic_core::role::Action;
use smartlic_core::{validate, Catalog, LicenseKind, Timestamp};
use smartlic_proto::reservation::{
    digest_hex, Authorization, CodeIdentity, RequestCode, ReservationKind, ReservedEntitlement, ReturnCode,
};
use smartlic_store::{
    Account, LicenseRecord, NewReservation, PoolCounts, Reservation, ReservationStatus, ReservedLicense, VirtualAccount,
};
use std::collections::BTreeMap;

/// One device's reservation as a caller asks for it.
#[derive(Debug, Clone)]
pub struct Ask {
    pub request_code: String,
    /// The kind the caller names; the request code decides when absent, and they must agree.
    pub kind: Option<ReservationKind>,
    /// Entitlement tags (or catalogue display names) and quantities; none for a universal one.
    pub licenses: Vec<(String, i64)>,
}

/// An ask whose code, kind and licenses were checked.
struct Checked {
    code: RequestCode,
    licenses: BTreeMap<String, i64>,
}

/// Reserves licenses for every ask, or for none: all are checked (codes, kinds, tags, one
/// reservation per device, availability of the total) before anything is signed or stored.
/// With several asks, messages start with the position of the one at fault.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    account: &Account,
    pool: &VirtualAccount,
    asks: &[Ask],
) -> ApiResult<Vec<Reservation>> {
    caller.require(Action::ReserveLicenses, account, Some(pool))?;
    if asks.is_empty() {
        return Err(ApiError::invalid("reservationRequests", "lists no reservation request"));
    }
    let now = state.clock.now();
    let counts = state.store.pool_counts(pool.id, now).await?;
    let records = state.store.licenses(pool.id).await?;
    let mut checked: Vec<Checked> = Vec::with_capacity(asks.len());
    for (i, ask) in asks.iter().enumerate() {
        let item = check(state, account, pool, &counts, &records, ask).map_err(|e| at(asks.len(), i, e))?;
        if checked.iter().any(|c| c.code.pid == item.code.pid && c.code.sn == item.code.sn) {
            return Err(at(asks.len(), i, ApiError::invalid("request_code", "this device is listed twice")));
        }
        checked.push(item);
    }
    let mut asked = BTreeMap::new();
    for (tag, n) in checked.iter().flat_map(|c| &c.licenses) {
        *asked.entry(tag.clone()).or_insert(0) += n;
    }
    fits(&state.catalog, &counts, &asked, &pool.name).map_err(ApiError::conflict)?;

    // What active reservations draw from each record stays theirs; this batch draws after them.
    let mut drawn = state.store.drawn(pool.id).await?;
    let mut new = Vec::with_capacity(checked.len());
    for c in checked {
        let mut licenses = Vec::new();
        for (tag, &quantity) in &c.licenses {
            licenses.extend(chunks(&state.catalog, &records, &mut drawn, tag, quantity, now)?);
        }
        new.push(sign(state, &c.code, licenses, now)?);
    }
    // The same rule, again inside the transaction: a concurrent reservation cannot over-commit.
    let (shared, pool_name) = (state.clone(), pool.name.clone());
    let recheck = Box::new(move |counts: &PoolCounts, asked: &BTreeMap<String, i64>| {
        fits(&shared.catalog, counts, asked, &pool_name)
    });
    Ok(state.store.create_reservations(pool.id, new, recheck, caller.login(), now).await?)
}

/// Longest request or return code accepted: real ones are far shorter (a return code is under
/// 200 characters), and refusals quote parts of what they got.
const MAX_CODE: usize = 1024;

fn bounded<'a>(field: &'static str, what: &str, code: &'a str) -> ApiResult<&'a str> {
    match code.trim() {
        "" => Err(ApiError::invalid(field, format!("the {what} is empty; paste what the device printed"))),
        c if c.len() > MAX_CODE => Err(ApiError::invalid(
            field,
            format!("the {what} is {} characters long, more than any device prints ({MAX_CODE})", c.len()),
        )),
        c => Ok(c),
    }
}

/// Prefixes the message of the `i`th of `n` asks with its position when there are several.
pub(crate) fn at(n: usize, i: usize, mut e: ApiError) -> ApiError {
    if n > 1 {
        e.message = format!("reservation request {}: {}", i + 1, e.message);
    }
    e
}

fn check(
    state: &AppState,
    account: &Account,
    pool: &VirtualAccount,
    counts: &PoolCounts,
    records: &[LicenseRecord],
    ask: &Ask,
) -> ApiResult<Checked> {
    let text = bounded("request_code", "request code", &ask.request_code)?;
    let code = RequestCode::parse(text).map_err(|e| ApiError::invalid("request_code", e.to_string()))?;
    if let Some(kind) = ask.kind.filter(|k| *k != code.kind) {
        return Err(ApiError::invalid(
            "request_code",
            format!("the request code asks for a {} reservation, not a {} one", code.kind.as_str(), kind.as_str()),
        ));
    }
    match code.kind {
        ReservationKind::Universal if !account.universal_reservation => {
            return Err(ApiError::forbidden("universal reservation is not allowed for this smart account"));
        }
        ReservationKind::Universal if !ask.licenses.is_empty() => {
            return Err(ApiError::invalid("licenses", "a universal reservation grants every license; list none"));
        }
        ReservationKind::Specific if ask.licenses.is_empty() => {
            return Err(ApiError::invalid("licenses", "a specific reservation needs at least one license"));
        }
        _ => {}
    }
    let mut licenses = BTreeMap::new();
    for (text, quantity) in &ask.licenses {
        let tag = resolve_tag(&state.catalog, pool, counts, records, text)?;
        let quantity = validate::count("quantity", *quantity)?;
        *licenses.entry(tag).or_insert(0) += quantity;
    }
    Ok(Checked { code, licenses })
}

/// The tag `text` names: a catalogue tag, a tag the pool holds or uses, or a unique catalogue
/// display name.
fn resolve_tag(
    catalog: &Catalog,
    pool: &VirtualAccount,
    counts: &PoolCounts,
    records: &[LicenseRecord],
    text: &str,
) -> ApiResult<String> {
    let text = validate::text("tag", text, validate::MAX_NAME)?;
    let text = text.as_str();
    if catalog.contains(text) || counts.in_use.contains_key(text) || records.iter().any(|r| r.tag == text) {
        return Ok(text.to_string());
    }
    let named: Vec<&str> = catalog.tags().iter().filter(|t| t.display_name == text).map(|t| t.name.as_str()).collect();
    match named.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(ApiError::invalid(
            "licenses",
            format!(
                "unknown product/entitlement '{text}': not a tag of the catalogue (GET /api/v1/catalog) nor held in \
                 virtual account '{}'",
                pool.name
            ),
        )),
        _ => Err(ApiError::invalid("licenses", format!("'{text}' names several entitlement tags; use the tag"))),
    }
}

/// Whether `asked` more licenses fit in the pool (the ledger's rule, tier lending included).
fn fits(catalog: &Catalog, counts: &PoolCounts, asked: &BTreeMap<String, i64>, pool: &str) -> Result<(), String> {
    Ledger::check_reservation(catalog, &counts.purchased, &counts.in_use, &counts.reserved, asked).map_err(|s| {
        format!(
            "more licenses than available: {} of '{}' asked, {} available in virtual account '{pool}'; nothing was \
             reserved",
            s.requested, s.tag, s.available
        )
    })
}

/// Fills `quantity` of `tag` from the undrawn licenses of purchase records valid now,
/// LONGEST_TERM_FIRST: the tag's own records, then those of the tags that fulfil it in catalogue
/// order; within each, perpetual first, then the latest end. `drawn` (per record id) is what
/// reservations draw already, and grows by what this one takes. One chunk per record, naming
/// it, with its term and subscription.
fn chunks(
    catalog: &Catalog,
    records: &[LicenseRecord],
    drawn: &mut BTreeMap<i64, i64>,
    tag: &str,
    quantity: i64,
    now: Timestamp,
) -> ApiResult<Vec<ReservedLicense>> {
    let owners: Vec<&str> = std::iter::once(tag).chain(catalog.fulfilled_by(tag).iter().map(String::as_str)).collect();
    let mut candidates: Vec<(usize, &LicenseRecord)> = records
        .iter()
        .filter(|r| r.term.active_at(now))
        .filter_map(|r| owners.iter().position(|o| *o == r.tag).map(|owner| (owner, r)))
        .collect();
    candidates.sort_by_key(|(owner, r)| {
        (*owner, r.term.kind != LicenseKind::Perpetual, std::cmp::Reverse(r.term.end.map_or(i64::MAX, |e| e.0)), r.id)
    });
    let undrawn =
        |r: &LicenseRecord, drawn: &BTreeMap<i64, i64>| (r.quantity - drawn.get(&r.id).copied().unwrap_or(0)).max(0);
    let total: i64 = candidates.iter().map(|(_, r)| undrawn(r, drawn)).sum();
    if total < quantity {
        return Err(ApiError::conflict(format!(
            "the purchase records that can serve '{tag}' have {total} undrawn license(s) left, {quantity} asked: \
             other reservations draw the rest; nothing was reserved"
        )));
    }
    let (mut left, mut out) = (quantity, Vec::new());
    for (_, r) in candidates {
        let take = undrawn(r, drawn).min(left);
        if take > 0 {
            out.push(ReservedLicense {
                tag: tag.to_string(),
                quantity: take,
                term: r.term.clone(),
                subscription_id: r.subscription_id.clone(),
                license_id: Some(r.id),
            });
            *drawn.entry(r.id).or_default() += take;
            left -= take;
        }
    }
    Ok(out)
}

/// A fresh product instance identifier in UUID (version 4) form, as authorization codes carry.
fn new_piid() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// Signs the authorization code of a reservation, with the digest and confirmation code to store.
fn sign(
    state: &AppState,
    code: &RequestCode,
    licenses: Vec<ReservedLicense>,
    now: Timestamp,
) -> ApiResult<NewReservation> {
    let entitlements = licenses
        .iter()
        .map(|l| ReservedEntitlement {
            tag: l.tag.clone(),
            count: l.quantity,
            start: l.term.start.map(Timestamp::millis),
            end: l.term.end.map(Timestamp::millis),
            license_type: l.term.kind.as_str().to_ascii_uppercase(),
            display_name: state.catalog.display_name(&l.tag).to_string(),
            subscription_id: l.subscription_id.clone().unwrap_or_default(),
        })
        .collect();
    let authorization = Authorization {
        kind: code.kind,
        piid: new_piid(),
        timestamp: now.0,
        request_code: code.to_string(),
        entitlements,
    };
    let signer = state.ca.signer();
    let text = authorization.to_code(signer, &code.udi()).map_err(ApiError::internal)?;
    let identity = CodeIdentity::of(&text).map_err(ApiError::internal)?;
    Ok(NewReservation {
        request_code: authorization.request_code,
        kind: code.kind,
        udi_pid: code.pid.clone(),
        udi_sn: code.sn.clone(),
        piid: authorization.piid,
        authorization_code: text,
        authorization_digest: digest_hex(&identity.digest),
        confirmation_code: identity.confirmation_code,
        licenses,
    })
}

/// Checks a return code against the reservation it names in `pool`, without changing anything:
/// it must be the device's own signature over that authorization, for a reservation not yet
/// returned, and for `device` (PID, serial number) when the caller names one.
pub async fn check_return(
    state: &AppState,
    caller: &Caller,
    account: &Account,
    pool: &VirtualAccount,
    return_code: &str,
    device: Option<(&str, &str)>,
) -> ApiResult<Reservation> {
    caller.require(Action::ReserveLicenses, account, Some(pool))?;
    let text = bounded("return_code", "return code", return_code)?;
    let parsed = ReturnCode::parse(text).map_err(|e| ApiError::invalid("return_code", e.to_string()))?;
    let found = state
        .store
        .reservation_by_digest(&digest_hex(&parsed.authorization_digest))
        .await?
        .filter(|r| r.virtual_account_id == pool.id)
        .ok_or_else(|| {
            ApiError::not_found(format!("no reservation in virtual account '{}' matches this return code", pool.name))
                .with_field("return_code")
        })?;
    let request = RequestCode::parse(&found.request_code).map_err(ApiError::internal)?;
    parsed.verify(&request).map_err(|e| ApiError::invalid("return_code", e.to_string()))?;
    if found.status == ReservationStatus::Returned {
        let on = found.returned_at.map(|t| format!(" on {t}")).unwrap_or_default();
        return Err(ApiError::conflict(format!(
            "the reservation of {} was already returned{on}; a return code counts once",
            found.udi()
        ))
        .with_field("return_code"));
    }
    if let Some((pid, sn)) = device.filter(|(pid, sn)| (*pid, *sn) != (found.udi_pid.as_str(), found.udi_sn.as_str())) {
        return Err(ApiError::invalid(
            "sudi",
            format!("the return code is for {}, not for PID:{pid},SN:{sn}", found.udi()),
        ));
    }
    Ok(found)
}

/// Takes back the licenses of the reservation a return code names ([`check_return`]).
pub async fn give_back(
    state: &AppState,
    caller: &Caller,
    account: &Account,
    pool: &VirtualAccount,
    return_code: &str,
    device: Option<(&str, &str)>,
) -> ApiResult<Reservation> {
    let found = check_return(state, caller, account, pool, return_code, device).await?;
    Ok(state.store.return_reservation(found.id, caller.login(), state.clock.now()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smartlic_core::LicenseTerm;

    fn record(id: i64, tag: &str, quantity: i64, kind: LicenseKind, end: Option<i64>) -> LicenseRecord {
        LicenseRecord {
            id,
            virtual_account_id: 1,
            tag: tag.into(),
            sku: String::new(),
            quantity,
            term: LicenseTerm { kind, start: None, end: end.map(Timestamp) },
            subscription_id: end.map(|e| format!("Sub-{e}")),
            created_at: Timestamp(0),
        }
    }

    #[test]
    fn chunks_come_longest_term_first_then_from_higher_tiers() {
        let c = Catalog::builtin();
        let records = [
            record(1, "ACI Essentials", 2, LicenseKind::Term, Some(5_000)),
            record(2, "ACI Essentials", 3, LicenseKind::Term, Some(9_000)),
            record(3, "ACI Essentials", 1, LicenseKind::Perpetual, None),
            record(4, "ACI Essentials", 4, LicenseKind::Term, Some(50)),
            record(5, "ACI Advantage", 10, LicenseKind::Perpetual, None),
        ];
        let mut drawn = BTreeMap::new();
        let mut got = |quantity| -> Vec<(i64, Option<i64>)> {
            chunks(&c, &records, &mut drawn, "ACI Essentials", quantity, Timestamp(100))
                .unwrap()
                .into_iter()
                .map(|l| (l.quantity, l.license_id))
                .collect()
        };
        // Perpetual first, then the latest end; the expired record is never drawn; each chunk
        // names its record, and what is drawn is never drawn again.
        assert_eq!(got(5), [(1, Some(3)), (3, Some(2)), (1, Some(1))]);
        assert_eq!(got(3), [(1, Some(1)), (2, Some(5))]);
        assert_eq!(drawn, BTreeMap::from([(1, 2), (2, 3), (3, 1), (5, 2)]));
        let all = chunks(&c, &records, &mut drawn, "ACI Essentials", 9, Timestamp(100));
        assert!(all.unwrap_err().message.contains("8 undrawn license(s) left, 9 asked"));
        // The tag is the one asked for, even when a higher tier's record fills it.
        assert!(chunks(&c, &records, &mut drawn, "ACI Essentials", 8, Timestamp(100))
            .unwrap()
            .iter()
            .all(|l| l.tag == "ACI Essentials"));
    }

    #[test]
    fn piids_look_like_uuids() {
        let p = new_piid();
        assert_eq!(p.len(), 36);
        assert_eq!(&p[14..15], "4");
        assert_ne!(p, new_piid());
    }
}
