//! The store's rules that are not SQL, shared by both backends so that neither holds its own
//! copy: each backend reads the rows, these decide.

use crate::*;

pub(crate) mod sync;

/// Reserved quantities of a reservation's licenses, per tag.
pub(crate) fn reserved_per_tag<'a>(licenses: impl IntoIterator<Item = &'a ReservedLicense>) -> BTreeMap<String, i64> {
    let mut per_tag = BTreeMap::new();
    for l in licenses {
        *per_tag.entry(l.tag.clone()).or_default() += l.quantity;
    }
    per_tag
}

/// How a new reservation is described in its event.
pub(crate) fn reservation_detail(n: &NewReservation) -> String {
    let listed: Vec<String> = reserved_per_tag(&n.licenses).iter().map(|(t, q)| format!("{t}={q}")).collect();
    match listed.is_empty() {
        true => format!("{}, PIID {}", n.kind.as_str(), n.piid),
        false => format!("{} {}, PIID {}", n.kind.as_str(), listed.join(", "), n.piid),
    }
}

/// What chunks take from each purchase record (by id); a chunk naming no record is refused.
pub(crate) fn taken_per_record(licenses: &[ReservedLicense]) -> Result<BTreeMap<i64, i64>> {
    let mut taking: BTreeMap<i64, i64> = BTreeMap::new();
    for l in licenses {
        let Some(id) = l.license_id else {
            return Err(StoreError::Conflict(format!("a reserved chunk of '{}' names no purchase record", l.tag)));
        };
        *taking.entry(id).or_default() += l.quantity;
    }
    Ok(taking)
}

/// Refuses taking `take` licenses from purchase record `id` (`record`, when it is the pool's)
/// unless it is valid at `now` and has that many not `drawn` already: the record choice was made
/// on an earlier read.
pub(crate) fn refuse_overdrawn_record(
    id: i64,
    record: Option<&LicenseRecord>,
    drawn: &BTreeMap<i64, i64>,
    take: i64,
    now: Timestamp,
) -> Result<()> {
    let free =
        record.filter(|r| r.term.active_at(now)).map_or(0, |r| r.quantity - drawn.get(&id).copied().unwrap_or(0));
    if free < take {
        return Err(StoreError::Conflict(format!(
            "purchase record {id} has {} undrawn license(s) left, {take} asked (a concurrent change); nothing was reserved",
            free.max(0)
        )));
    }
    Ok(())
}

/// Why a device may not be reserved for, given the (smart account, pool name) of its active
/// reservation and of its registration, if any: a device is licensed once, and in another smart
/// account the refusal names nothing of that account. None: it may.
pub(crate) fn held_udi_refusal(
    account_id: i64,
    pid: &str,
    sn: &str,
    reserved: Option<(i64, String)>,
    registered: Option<(i64, String)>,
) -> Option<String> {
    let udi = format!("PID:{pid},SN:{sn}");
    Some(match (reserved, registered) {
        (Some((a, _)), _) | (_, Some((a, _))) if a != account_id => {
            format!("{udi} is registered or reserved in another smart account; it cannot be reserved here")
        }
        (Some((_, pool)), _) => {
            format!("{udi} already holds an active reservation (in virtual account '{pool}'); return it first")
        }
        (None, Some((_, pool))) => format!(
            "{udi} is a registered product instance (in virtual account '{pool}'); a device is licensed once: \
             remove the instance first"
        ),
        (None, None) => return None,
    })
}

/// Each (pool, tag) whose `stored` count differs from the `recomputed` one (a missing entry
/// counts 0), in key order, with both counts.
/// The `counters.repaired` event's detail for `d`.
pub(crate) fn repaired_detail(d: &CounterDrift) -> String {
    format!("in-use count set from {} to {}, the count of the records", d.stored, d.recomputed)
}

pub(crate) fn differences(
    stored: &BTreeMap<(i64, String), i64>,
    recomputed: &BTreeMap<(i64, String), i64>,
) -> Vec<((i64, String), i64, i64)> {
    let mut keys: Vec<&(i64, String)> = stored.keys().chain(recomputed.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|key| (key.clone(), stored.get(key).copied().unwrap_or(0), recomputed.get(key).copied().unwrap_or(0)))
        .filter(|(_, s, r)| s != r)
        .collect()
}

/// What one item of a transfer takes from each record (`records`: the pool's records of the
/// tag valid now, in the order they go: perpetual ones first, then those whose term ends last),
/// as (record, how many); only what reservations do not draw from a record may go. Refused,
/// naming what is left, when they hold too few.
pub(crate) fn transfer_plan(
    records: Vec<LicenseRecord>,
    drawn: &BTreeMap<i64, i64>,
    t: &Transfer,
    from: &VirtualAccount,
) -> Result<Vec<(LicenseRecord, i64)>> {
    let records: Vec<LicenseRecord> = records.into_iter().filter(|r| t.kind.is_none_or(|k| r.term.kind == k)).collect();
    let free = |r: &LicenseRecord| r.quantity - drawn.get(&r.id).copied().unwrap_or(0).min(r.quantity);
    let held: i64 = records.iter().map(free).sum();
    if held < t.quantity {
        let kind = t.kind.map(|k| format!(" {}", k.as_str())).unwrap_or_default();
        return Err(StoreError::Conflict(format!(
            "only {held}{kind} license(s) of '{}' valid now and not reserved are left in virtual account '{}' for \
             this item, {} requested; nothing was transferred",
            t.tag, from.name, t.quantity
        )));
    }
    let mut left = t.quantity;
    let mut plan = Vec::new();
    for r in records {
        let take = left.min(free(&r));
        left -= take;
        if take > 0 {
            plan.push((r, take));
        }
    }
    Ok(plan)
}

/// "N what" for each count that is not zero, in order: what a refusal or an event lists.
pub(crate) fn counted(items: &[(u64, &str)]) -> Vec<String> {
    items.iter().filter(|(n, _)| *n > 0).map(|(n, what)| format!("{n} {what}")).collect()
}

/// Why a virtual account may not be deleted, given what it still holds (see
/// [`Store::delete_virtual_account`]); None: it is empty.
pub(crate) fn delete_refusal(
    va: &VirtualAccount,
    licenses: i64,
    instances: i64,
    tokens: u64,
    reservations: i64,
) -> Option<String> {
    if va.is_default {
        return Some(format!(
            "'{}' is the default virtual account of its smart account and cannot be deleted",
            va.name
        ));
    }
    let held = counted(&[
        (licenses.max(0) as u64, "license(s) not yet ended (transfer them)"),
        (instances.max(0) as u64, "product instance(s) (move or remove them)"),
        (tokens, "active registration token(s) (revoke them)"),
        (reservations.max(0) as u64, "active reservation(s) (return them)"),
    ]);
    (!held.is_empty())
        .then(|| format!("virtual account '{}' still holds {}; nothing was deleted", va.name, held.join(", ")))
}

/// The detail of a deleted virtual account's event: what went with it.
pub(crate) fn deleted_with(expired: u64, tokens: u64, returned: u64, principals: u64) -> String {
    let gone = counted(&[
        (expired, "expired license record(s)"),
        (tokens, "spent registration token(s)"),
        (returned, "returned reservation(s)"),
        (principals, "user(s) and API client(s) bound to it"),
    ]);
    if gone.is_empty() {
        String::new()
    } else {
        format!("with {}", gone.join(", "))
    }
}

/// A pool's counts from its rows; a negative counter is drift to report, never a zero to
/// compute with.
pub(crate) fn pool_counts(
    virtual_account_id: i64,
    purchased: Vec<(String, i64)>,
    in_use: Vec<(String, i64)>,
    reserved: Vec<(String, i64)>,
) -> Result<PoolCounts> {
    for (what, (tag, n)) in in_use.iter().map(|c| ("in-use", c)).chain(reserved.iter().map(|c| ("reserved", c))) {
        if *n < 0 {
            return Err(StoreError::Corrupt(format!(
                "the {what} count of '{tag}' in virtual account {virtual_account_id} is {n}: the counters drifted \
                 from the records; `smartlic admin check` lists the differences"
            )));
        }
    }
    Ok(PoolCounts {
        purchased: purchased.into_iter().collect(),
        in_use: in_use.into_iter().collect(),
        reserved: reserved.into_iter().collect(),
    })
}

/// A token's listed prefix as messages show it.
pub(crate) fn short_token(prefix: &str) -> String {
    format!("{prefix}…")
}

/// The one token a revoke names among those `found` by its hash or prefix: refused when the
/// prefix is ambiguous, matches nothing, or names a token already revoked.
pub(crate) fn token_to_revoke(mut found: Vec<RegistrationToken>, prefix: &str) -> Result<RegistrationToken> {
    if found.len() > 1 {
        return Err(StoreError::Conflict(format!(
            "{} tokens of this virtual account start with {prefix}; give the whole token",
            found.len()
        )));
    }
    let found = found.pop().ok_or_else(|| {
        StoreError::NotFound(format!("no such token in this virtual account: {}", short_token(prefix)))
    })?;
    if found.revoked_at.is_some() {
        return Err(StoreError::Conflict(format!("the token is revoked already: {}", short_token(&found.prefix))));
    }
    Ok(found)
}
