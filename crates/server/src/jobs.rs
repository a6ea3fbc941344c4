//! Background jobs, evaluated on the manager's clock (simulated or not): usage of silent
//! instances goes back to the pool, instances whose ID certificate expired are removed
//! (C-12), stale nonces, access tokens and portal sessions are purged, each pool's usage of
//! the day is recorded (the portal's chart over time), a satellite runs its scheduled
//! synchronisations (S-3), and alerts are recomputed (C-14).
//!
//! Replicas over one database run them once, not once each: a run needs the lease
//! [`JOBS_LEASE`] in the store. Its holder renews it at each run; when the holder stops, the
//! lease expires (on the manager's clock) and the next replica whose loop comes round takes it.
//! A run also holds the store's run lock of the same name, released by the database when its
//! holder dies, so a run that outlasts its lease never overlaps the next holder's.

use crate::metrics::Outcome;
use crate::state::AppState;
use smartlic_core::time::DAY_MS;
use smartlic_store::{AlertKind, AlertSeverity, InstanceFilter, NewAlert, StoreError};
use std::time::Duration;
use tokio::time::Instant;

/// Licenses ending within this many days raise an alert.
const EXPIRY_WARNING_DAYS: i64 = 30;
/// Instances silent this long raise an alert (their usage is released at 90 days).
const SILENT_WARNING_DAYS: i64 = 30;

/// The lease whose holder runs the background jobs.
pub const JOBS_LEASE: &str = "background-jobs";

/// The file of the data directory that names its replica ([`Replica::load`]).
pub const REPLICA_ID_FILE: &str = "replica-id";

/// This replica as a holder of leases.
pub struct Replica {
    /// The host name and a random part, made at the first start on the data directory and
    /// kept there: one server runs per directory, so it is unique, and a replica restarted on
    /// its directory takes its lease back at once rather than waiting for it to expire.
    pub id: String,
    /// How long a lease taken lasts, on the manager's clock: three job intervals, so a holder
    /// that misses a run or two keeps it, and a dead one is replaced within three.
    pub lease_ttl_ms: i64,
}

impl Replica {
    pub fn load(data_dir: &std::path::Path, job_interval: Duration) -> anyhow::Result<Replica> {
        let file = data_dir.join(REPLICA_ID_FILE);
        let id = match std::fs::read_to_string(&file) {
            Ok(id) if !id.trim().is_empty() => id.trim().to_string(),
            _ => {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
                let id = format!("{}/{:016x}", host.trim(), rand::random::<u64>());
                crate::tls::write_private(&file, &id)?;
                id
            }
        };
        let ttl = job_interval.saturating_mul(MISSED_RUNS).as_millis();
        Ok(Replica { id, lease_ttl_ms: i64::try_from(ttl).unwrap_or(i64::MAX) })
    }
}

/// Runs the jobs when this replica holds (or can take) the jobs lease, on the latest shared
/// clock; answers whether it ran them.
pub async fn run_leased(state: &AppState) -> anyhow::Result<bool> {
    crate::clock::follow(state).await?;
    let now = state.clock.now();
    if !state.store.try_lease(JOBS_LEASE, &state.replica.id, now, state.replica.lease_ttl_ms).await? {
        return Ok(false);
    }
    // This replica's runs queue (the loop's, a clock move's): each one runs, on the clock as
    // it then is. Another replica's run that outlasted its lease is not waited for: this turn
    // is skipped.
    let _in_process = state.jobs.lock().await;
    let Some(running) = state.store.try_run_lock(JOBS_LEASE).await? else {
        tracing::info!("background jobs: the lease is ours but the previous holder's run has not ended");
        return Ok(false);
    };
    let ran = run_jobs(state).await;
    if let Err(e) = running.release().await {
        tracing::warn!(error = %e, "background jobs: the run lock is released when its session closes");
    }
    ran.map(|()| true)
}

/// One run of the jobs, whoever holds the lease (callers driving the clock themselves).
pub async fn run_once(state: &AppState) -> anyhow::Result<()> {
    let _in_process = state.jobs.lock().await;
    run_jobs(state).await
}

/// The jobs, on the clock as it is now; the caller holds [`AppState::jobs`].
async fn run_jobs(state: &AppState) -> anyhow::Result<()> {
    let now = state.clock.now();
    let released = state.store.release_silent_usage(now.plus_days(-state.policy.silent_release_days), now).await?;
    if !released.is_empty() {
        tracing::info!(count = released.len(), "usage of silent instances released");
    }
    for id in state.store.expired_instances(now).await? {
        state.store.remove_instance(&id, "expired", "system", now).await?;
        tracing::info!(instance = %id, "instance removed: ID certificate expired");
    }
    state.store.purge_expired(now).await?;
    state.store.purge_portal_sessions(now).await?;
    crate::portal::record_usage_day(state, now).await?;
    // A satellite's scheduled synchronisation, before the alerts: one that succeeds clears its
    // Synchronization Due alert in this run, one that fails is recorded and retried later.
    crate::satellite::scheduled_syncs(state, now).await?;
    let mut alerts = Vec::new();
    for account in state.store.accounts().await? {
        for va in state.store.virtual_accounts(account.id).await? {
            let counts = match state.store.pool_counts(va.id, now).await {
                Err(StoreError::Corrupt(message)) => {
                    // Drifted counters are reported, never computed with.
                    alerts.push(NewAlert {
                        kind: AlertKind::CountersDrifted,
                        severity: AlertSeverity::Critical,
                        account_id: account.id,
                        virtual_account_id: Some(va.id),
                        object: format!("{}/{}", account.domain, va.name),
                        message,
                    });
                    continue;
                }
                counts => counts?,
            };
            let ledger = counts.ledger(&state.catalog);
            for t in ledger.tags.iter().filter(|t| !t.in_compliance()) {
                let reserved = match t.reserved {
                    0 => String::new(),
                    n => format!(" and reserves {n}"),
                };
                alerts.push(NewAlert {
                    kind: AlertKind::PoolOutOfCompliance,
                    severity: AlertSeverity::Major,
                    account_id: account.id,
                    virtual_account_id: Some(va.id),
                    object: format!("{}/{}/{}", account.domain, va.name, t.tag),
                    message: format!(
                        "{} uses {}{reserved} of '{}' but holds {} (short by {})",
                        va.name,
                        t.in_use,
                        t.tag,
                        t.purchased + t.borrowed,
                        -t.balance()
                    ),
                });
            }
            for r in state.store.licenses(va.id).await? {
                if let Some(end) = r.term.end.filter(|e| *e > now && e.0 - now.0 <= EXPIRY_WARNING_DAYS * DAY_MS) {
                    alerts.push(NewAlert {
                        kind: AlertKind::LicensesExpiring,
                        severity: AlertSeverity::Minor,
                        account_id: account.id,
                        virtual_account_id: Some(va.id),
                        object: format!("license/{}", r.id),
                        message: format!(
                            "{} {} license(s) of '{}' in {} expire on {end}",
                            r.quantity,
                            r.term.kind.as_str(),
                            r.tag,
                            va.name
                        ),
                    });
                }
            }
        }
    }
    let silent_since = now.plus_days(-SILENT_WARNING_DAYS);
    let account_of: std::collections::HashMap<i64, i64> =
        state.store.all_virtual_accounts().await?.into_iter().map(|v| (v.id, v.account_id)).collect();
    for i in state.store.instances(InstanceFilter::SilentSince(silent_since)).await? {
        let Some(&account_id) = account_of.get(&i.virtual_account_id) else { continue };
        alerts.push(NewAlert {
            kind: AlertKind::InstanceSilent,
            severity: AlertSeverity::Minor,
            account_id,
            virtual_account_id: Some(i.virtual_account_id),
            object: format!("instance/{}", i.id),
            message: format!("PID:{},SN:{} not heard from since {}", i.udi_pid, i.udi_sn, i.last_contact_at),
        });
    }
    alerts.extend(crate::satellite::overdue_alerts(state, now).await?);
    state.store.sync_alerts(alerts, now).await?;
    Ok(())
}

/// When the jobs loop last finished a run, for readiness (`/ready`): wall time, whatever the
/// manager's clock says.
#[derive(Default)]
pub struct Heartbeat(std::sync::Mutex<Option<(Instant, Duration)>>);

/// Runs missed by this many intervals mean the loop is stuck or gone.
const MISSED_RUNS: u32 = 3;

impl Heartbeat {
    fn beat(&self, every: Duration) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), every));
    }

    /// Whether a run finished within the last few intervals.
    pub fn alive(&self) -> bool {
        let last = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        last.is_some_and(|(at, every)| at.elapsed() <= every * MISSED_RUNS)
    }
}

/// Every `every` of wall time until aborted, runs the jobs if this replica holds the lease
/// (the heartbeat beats either way: the loop is alive and ready to take over).
pub fn spawn(state: AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match run_leased(&state).await {
                Ok(true) => state.metrics.job_run(Outcome::ok),
                Ok(false) => {}
                Err(e) => {
                    tracing::error!("background jobs failed: {e:#}");
                    state.metrics.job_run(Outcome::failed);
                }
            }
            state.job_heartbeat.beat(every);
        }
    })
}
