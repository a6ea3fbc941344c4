//! Jobs (F-4): every operation is a row of the database, queued, then run in the background one at
//! a time, ending Completed, Failed or Partially completed with details, the seed's error code and
//! recommended action, and per-node results. A job a stop interrupted runs again at the next start.
//! The same loop queues each account's sync every 24 hours of the orchestrator's clock (F-2).

use crate::codes::Cause;
use crate::db::{Db, DbResult};
use crate::model::{status, Job, NodeResult};
use serde_json::{json, Value};
use smartlic_core::time::DAY_MS;
use smartlic_core::Clock;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The kinds of job, as stored and shown.
pub mod kind {
    pub const ADD_ACCOUNT: &str = "add_account";
    pub const SYNC: &str = "sync";
    pub const ASSIGN: &str = "assign";
    pub const UNASSIGN: &str = "unassign";
    pub const AUTO_REGISTER: &str = "auto_register";
}

/// How a job ended.
#[derive(Debug, Default)]
pub struct Outcome {
    pub details: String,
    /// The cause of the (first) failure; its seed code goes on the job.
    pub cause: Option<Cause>,
    pub nodes: Vec<NodeResult>,
    /// Some work done, some failed: Partially completed rather than Failed.
    pub partial: bool,
}

impl Outcome {
    pub fn done(details: impl Into<String>) -> Outcome {
        Outcome { details: details.into(), ..Outcome::default() }
    }

    pub fn failed(cause: Cause, details: impl Into<String>) -> Outcome {
        Outcome { details: details.into(), cause: Some(cause), ..Outcome::default() }
    }

    fn status(&self) -> &'static str {
        match (self.cause, self.partial) {
            (None, _) => status::COMPLETED,
            (Some(_), true) => status::PARTIAL,
            (Some(_), false) => status::FAILED,
        }
    }
}

/// The orchestrator: its database, its clock, and the job loop's wake-up.
pub struct Fleet {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    wake: Notify,
}

impl Fleet {
    pub fn new(db: Db, clock: Arc<dyn Clock>) -> Fleet {
        Fleet { db, clock, wake: Notify::new() }
    }

    /// Queues a job and wakes the loop.
    pub fn enqueue(&self, kind: &str, entity: &str, request: Value) -> DbResult<Job> {
        let job = self.db.insert_job(kind, entity, &request, self.clock.now())?;
        self.wake.notify_one();
        Ok(job)
    }

    /// Makes the loop look again now (a job queued elsewhere, the clock moved).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs jobs until the task is aborted: those interrupted by the last stop first, then each
    /// queued one; between them it sleeps `interval` or until woken.
    pub async fn run_jobs(self: Arc<Self>, interval: Duration) {
        match self.db.requeue_interrupted() {
            Ok(0) => {}
            Ok(n) => tracing::info!("{n} job(s) interrupted by the last stop queued again"),
            Err(e) => tracing::error!("requeueing interrupted jobs: {e}"),
        }
        loop {
            if let Err(e) = self.queue_due_syncs() {
                tracing::error!("scheduling syncs: {e}");
            }
            loop {
                match self.db.claim_next(self.clock.now()) {
                    Ok(Some(job)) => self.run_one(job).await,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!("reading the job queue: {e}");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    /// A sync for every account whose last one is 24 hours old (F-2); accounts never synced
    /// wait for their add job (or an operator's sync) to succeed first.
    fn queue_due_syncs(&self) -> DbResult<()> {
        let now = self.clock.now();
        for account in self.db.accounts()? {
            let due = account.last_sync_ms.is_some_and(|last| now.0 - last >= DAY_MS);
            if due && !self.db.job_pending(kind::SYNC, &account.name)? {
                self.db.insert_job(kind::SYNC, &account.name, &json!({"account": account.name}), now)?;
            }
        }
        Ok(())
    }

    async fn run_one(&self, job: Job) {
        tracing::info!(job = job.id, kind = %job.kind, entity = %job.entity, "job started");
        let text = |k: &str| job.request[k].as_str().unwrap_or_default().to_string();
        let outcome = match job.kind.as_str() {
            kind::ADD_ACCOUNT | kind::SYNC => crate::ops::sync(self, &text("account")).await,
            kind::ASSIGN => {
                let target = crate::ops::Target { account: text("account"), virtual_account: text("virtual_account") };
                crate::ops::assign(self, &text("cluster"), Some(target), false).await
            }
            kind::AUTO_REGISTER => crate::ops::assign(self, &text("cluster"), None, true).await,
            kind::UNASSIGN => crate::ops::unassign(self, &text("cluster")).await,
            other => Outcome::failed(Cause::SyncFailed, format!("unknown job kind {other}")),
        };
        let status = outcome.status();
        tracing::info!(job = job.id, status, code = outcome.cause.map(Cause::code), "job ended: {}", outcome.details);
        let now = self.clock.now();
        if let Err(e) = self.db.finish_job(job.id, status, &outcome.details, outcome.cause, &outcome.nodes, now) {
            tracing::error!(job = job.id, "recording the job's end: {e}");
        }
    }
}
