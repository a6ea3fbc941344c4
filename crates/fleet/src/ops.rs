//! The operations jobs run (F-2, F-3): sync an account, assign a cluster to a virtual account
//! (a registration token through the manager's API, then every node pointed at the manager and
//! registered with it), unassign (every node deregistered), auto-registration to the account's
//! operational virtual account. Each node's outcome is recorded on the node and in the job.

use crate::cluster_status::{self, AssignMode, ClusterStatus, NodeState};
use crate::codes::Cause;
use crate::db::DbError;
use crate::jobs::{Fleet, Outcome};
use crate::manager::{Failure, Session};
use crate::model::{Account, Cluster, Node, NodeResult, Transport};
use crate::node::NodeClient;

/// Node states as stored.
pub mod state {
    pub const NOT_REGISTERED: &str = "not_registered";
    pub const REGISTERED: &str = "registered";
    pub const REGISTERING: &str = "registration_in_progress";
    pub const DEREGISTERING: &str = "deregistration_in_progress";
    pub const REGISTRATION_FAILED: &str = "registration_failed";
    pub const DEREGISTRATION_FAILED: &str = "deregistration_failed";
}

/// Where a manual assignment goes.
pub struct Target {
    pub account: String,
    pub virtual_account: String,
}

fn failed(f: Failure) -> Outcome {
    Outcome::failed(f.cause, f.detail)
}

/// A database failure in a job: the sync's own code during a sync, a registration's otherwise.
fn db_failed(cause: Cause, e: DbError) -> Outcome {
    Outcome::failed(cause, format!("the orchestrator's database: {e}"))
}

/// The cluster's status on the Cluster Summary, from its nodes as last seen.
pub fn cluster_status(cluster: &Cluster, nodes: &[Node]) -> ClusterStatus {
    let mode = if cluster.assign_mode == "auto" { AssignMode::Auto } else { AssignMode::Manual };
    let states: Vec<NodeState> = nodes
        .iter()
        .map(|n| match n.state.as_str() {
            state::REGISTERED => NodeState::Registered(n.virtual_account.clone().unwrap_or_default()),
            state::REGISTERING => NodeState::RegistrationInProgress,
            state::DEREGISTERING => NodeState::DeregistrationInProgress,
            state::REGISTRATION_FAILED => NodeState::RegistrationFailed,
            state::DEREGISTRATION_FAILED => NodeState::DeregistrationFailed,
            _ => NodeState::NotRegistered,
        })
        .collect();
    cluster_status::derive(mode, &states)
}

/// Pulls the account's virtual accounts and licenses and replaces what the last sync found.
pub async fn sync(fleet: &Fleet, name: &str) -> Outcome {
    let account = match fleet.db.account(name) {
        Ok(a) => a,
        Err(e) => return db_failed(Cause::SyncDatabaseFailed, e),
    };
    let secret = match fleet.db.account_secret(&account) {
        Ok(s) => s,
        Err(e) => return db_failed(Cause::SyncDatabaseFailed, e),
    };
    let session = match Session::open(&account, &secret).await {
        Ok(s) => s,
        Err(f) => return failed(f),
    };
    let vas = match session.virtual_accounts().await {
        Ok(v) => v,
        Err(f) => return failed(f),
    };
    let licenses = match session.licenses().await {
        Ok(l) => l,
        Err(f) => return failed(f),
    };
    if let Err(e) = fleet.db.store_sync(&account, &vas, &licenses, fleet.clock.now()) {
        return db_failed(Cause::SyncDatabaseFailed, e);
    }
    Outcome::done(format!(
        "synced {}: {} virtual account(s), {} license line(s)",
        account.name,
        vas.len(),
        licenses.len()
    ))
}

/// The registration token of `va`: the one kept from before while valid, else a new one from
/// the manager (kept for the next clusters).
async fn registration_token(fleet: &Fleet, account: &Account, va: &str) -> Result<String, Outcome> {
    let now = fleet.clock.now();
    match fleet.db.va_token(account, va, now) {
        Ok(Some(token)) => return Ok(token),
        Ok(None) => {}
        Err(e) => return Err(db_failed(Cause::RegistrationFailed, e)),
    }
    let secret = fleet.db.account_secret(account).map_err(|e| db_failed(Cause::RegistrationFailed, e))?;
    let session = Session::open(account, &secret).await.map_err(failed)?;
    let (token, expires) = session.create_token(va, now).await.map_err(failed)?;
    fleet.db.set_va_token(account, va, Some((&token, expires))).map_err(|e| db_failed(Cause::RegistrationFailed, e))?;
    Ok(token)
}

/// The node's client with its API token.
fn client(fleet: &Fleet, cluster: &Cluster, node: &Node) -> Result<NodeClient, Failure> {
    let token =
        fleet.db.node_token(cluster, node).map_err(|e| Failure::new(Cause::RegistrationFailed, e.to_string()))?;
    NodeClient::new(&node.api_url, token)
}

/// Registers one node: already registered to `va` is success; otherwise its transport is set,
/// then it registers with `token`.
async fn register_node(
    fleet: &Fleet,
    cluster: &Cluster,
    node: &Node,
    transport: &Transport,
    manager_url: &str,
    va: &str,
    token: &str,
) -> Result<String, Failure> {
    let api = client(fleet, cluster, node)?;
    let before = api.details().await?;
    if before.registered() {
        let on = before.virtual_account.clone().unwrap_or_default();
        let _ = fleet.db.set_node_state(node, state::REGISTERED, Some(&on), None);
        if on == va {
            return Ok(format!("already registered to {va}"));
        }
        return Err(Failure::new(
            Cause::NodeRegistrationFailed,
            format!("registered to another virtual account ({on}): unassign it first"),
        ));
    }
    api.set_transport(transport, manager_url).await?;
    let after = api.register(token).await?;
    if !after.registered() {
        return Err(Failure::new(
            Cause::NodeRegistrationFailed,
            format!("the registration is not complete (status {})", after.status),
        ));
    }
    let udi = after.pid.as_deref().zip(after.sn.as_deref());
    let _ = fleet.db.set_node_state(node, state::REGISTERED, after.virtual_account.as_deref(), udi);
    Ok(format!("registered to {}", after.virtual_account.unwrap_or_default()))
}

/// Assigns a cluster: to `target`, or (auto) to its customer's account's operational virtual
/// account. Every node is registered; the cluster is assigned when at least one is.
pub async fn assign(fleet: &Fleet, cluster_name: &str, target: Option<Target>, auto: bool) -> Outcome {
    let cluster = match fleet.db.cluster(cluster_name) {
        Ok(c) => c,
        Err(DbError::NotFound(why)) => return Outcome::failed(Cause::UnknownCluster, why),
        Err(e) => return db_failed(Cause::RegistrationFailed, e),
    };
    let customer = match fleet.db.customer(&cluster.customer) {
        Ok(c) => c,
        Err(e) => return db_failed(Cause::RegistrationFailed, e),
    };
    let account_name = target.as_ref().map_or(customer.account.clone(), |t| t.account.clone());
    let account = match fleet.db.account(&account_name) {
        Ok(a) => a,
        Err(e) => return db_failed(Cause::RegistrationFailed, e),
    };
    let va = match (target, &account.operational_va) {
        (Some(t), _) => t.virtual_account,
        (None, Some(op)) => op.clone(),
        (None, None) => {
            return Outcome::failed(
                Cause::UnknownVirtualAccount,
                format!("{} has no operational virtual account for auto-registration", account.name),
            )
        }
    };
    let nodes = match fleet.db.nodes(&cluster) {
        Ok(n) => n,
        Err(e) => return db_failed(Cause::RegistrationFailed, e),
    };
    let current = cluster_status(&cluster, &nodes);
    if let Some(on) = &cluster.virtual_account {
        let same = cluster.account.as_deref() == Some(account.name.as_str()) && on == &va;
        if !same || matches!(current, ClusterStatus::ManuallyRegistered | ClusterStatus::AutoRegistered) {
            return Outcome::failed(
                Cause::ClusterAlreadyAssigned,
                format!(
                    "{} is assigned to {on}@{} ({current})",
                    cluster.name,
                    cluster.account.clone().unwrap_or_default()
                ),
            );
        }
    }
    if !current.allows_assignment() {
        return Outcome::failed(Cause::ClusterAlreadyAssigned, format!("{}: {current}", cluster.name));
    }
    if nodes.is_empty() {
        return Outcome::failed(Cause::ClusterWithoutNodes, format!("{} has no node", cluster.name));
    }
    match fleet.db.virtual_account(&account, &va) {
        Ok(Some(v)) if v.license_mode.is_none() => {
            return Outcome::failed(
                Cause::VirtualAccountWithoutLicenseMode,
                format!("set the license mode of {va}@{} before assigning clusters to it", account.name),
            )
        }
        Ok(Some(_)) => {}
        Ok(None) => {
            return Outcome::failed(
                Cause::UnknownVirtualAccount,
                format!("{va} is not a virtual account of {} (as of its last sync)", account.name),
            )
        }
        Err(e) => return db_failed(Cause::RegistrationFailed, e),
    }
    let token = match registration_token(fleet, &account, &va).await {
        Ok(t) => t,
        Err(outcome) => return outcome,
    };
    let transport =
        Transport::resolve(cluster.transport.as_ref(), customer.transport.as_ref(), account.transport.as_ref());
    let mut outcome = Outcome::default();
    for node in &nodes {
        let _ = fleet.db.set_node_state(node, state::REGISTERING, None, None);
        let done = register_node(fleet, &cluster, node, &transport, &account.base_url, &va, &token).await;
        outcome.nodes.push(node_result(node, &done));
        if let Err(f) = done {
            let _ = fleet.db.set_node_state(node, state::REGISTRATION_FAILED, None, None);
            if f.cause == Cause::NodeTokenInvalid {
                // Refused by the manager: the next assignment asks for a new one.
                let _ = fleet.db.set_va_token(&account, &va, None);
            }
            outcome.cause.get_or_insert(f.cause);
        }
    }
    let registered = outcome.nodes.iter().filter(|n| n.ok).count();
    let mode = if auto { "auto" } else { "manual" };
    let assigned = if registered > 0 { Some((&account, va.as_str())) } else { None };
    if let Err(e) = fleet.db.set_assignment(&cluster, assigned, mode) {
        return db_failed(Cause::RegistrationFailed, e);
    }
    outcome.partial = registered > 0;
    outcome.details =
        format!("{} of {} node(s) of {} registered to {va}@{}", registered, nodes.len(), cluster.name, account.name);
    outcome
}

fn node_result<T>(node: &Node, done: &Result<T, Failure>) -> NodeResult
where
    T: std::fmt::Display,
{
    match done {
        Ok(message) => NodeResult { node: node.name.clone(), ok: true, code: None, message: message.to_string() },
        Err(f) => NodeResult {
            node: node.name.clone(),
            ok: false,
            code: Some(f.cause.code().to_string()),
            message: f.detail.clone(),
        },
    }
}

/// Deregisters one node; one that is not registered (it says so) counts as done. A node that
/// could not tell its manager has dropped its registration locally all the same; the
/// orchestrator then removes it on the manager through the API (the cloud's device removal).
async fn deregister_node(fleet: &Fleet, cluster: &Cluster, node: &Node) -> Result<String, Failure> {
    let api = client(fleet, cluster, node)?;
    match api.deregister().await {
        Ok(()) => Ok("deregistered".to_string()),
        Err(f) if f.cause == Cause::NodeAlreadyDeregistered => Ok(format!("was not registered ({})", f.detail)),
        Err(f) if f.cause == Cause::NodeDeregistrationFailed => match remove_on_manager(fleet, cluster, node).await {
            Ok(()) => Ok(format!("{}; removed on the manager through its API", f.detail)),
            Err(removal) => {
                Err(Failure::new(f.cause, format!("{}; removal on the manager: {}", f.detail, removal.detail)))
            }
        },
        Err(f) => Err(f),
    }
}

/// Removes the node's product instance from the cluster's virtual account on its manager.
async fn remove_on_manager(fleet: &Fleet, cluster: &Cluster, node: &Node) -> Result<(), Failure> {
    let (Some(account), Some(va)) = (&cluster.account, &cluster.virtual_account) else {
        return Err(Failure::new(Cause::ClusterAlreadyUnassigned, "the cluster is not assigned"));
    };
    let (Some(pid), Some(sn)) = (&node.udi_pid, &node.udi_sn) else {
        return Err(Failure::new(Cause::NodeAnswerUnexpected, "the node's UDI is not known"));
    };
    let failed = |e: DbError| Failure::new(Cause::RegistrationFailed, e.to_string());
    let account = fleet.db.account(account).map_err(failed)?;
    let secret = fleet.db.account_secret(&account).map_err(failed)?;
    let session = Session::open(&account, &secret).await?;
    session.remove_devices(va, &[(pid.clone(), sn.clone())]).await
}

/// Unassigns a cluster: every node deregistered; the cluster is unassigned when all are.
pub async fn unassign(fleet: &Fleet, cluster_name: &str) -> Outcome {
    let cluster = match fleet.db.cluster(cluster_name) {
        Ok(c) => c,
        Err(DbError::NotFound(why)) => return Outcome::failed(Cause::UnknownCluster, why),
        Err(e) => return db_failed(Cause::RegistrationFailed, e),
    };
    let nodes = match fleet.db.nodes(&cluster) {
        Ok(n) => n,
        Err(e) => return db_failed(Cause::RegistrationFailed, e),
    };
    if cluster.virtual_account.is_none() && nodes.iter().all(|n| n.state == state::NOT_REGISTERED) {
        return Outcome::failed(Cause::ClusterAlreadyUnassigned, format!("{} is not assigned", cluster.name));
    }
    let mut outcome = Outcome::default();
    for node in &nodes {
        let _ = fleet.db.set_node_state(node, state::DEREGISTERING, node.virtual_account.as_deref(), None);
        let done = deregister_node(fleet, &cluster, node).await;
        outcome.nodes.push(node_result(node, &done));
        match done {
            Ok(_) => drop(fleet.db.set_node_state(node, state::NOT_REGISTERED, None, None)),
            Err(f) => {
                let _ =
                    fleet.db.set_node_state(node, state::DEREGISTRATION_FAILED, node.virtual_account.as_deref(), None);
                outcome.cause.get_or_insert(f.cause);
            }
        }
    }
    let deregistered = outcome.nodes.iter().filter(|n| n.ok).count();
    if outcome.cause.is_none() {
        if let Err(e) = fleet.db.set_assignment(&cluster, None, &cluster.assign_mode) {
            return db_failed(Cause::RegistrationFailed, e);
        }
    }
    outcome.partial = deregistered > 0;
    outcome.details = format!("{} of {} node(s) of {} deregistered", deregistered, nodes.len(), cluster.name);
    outcome
}
