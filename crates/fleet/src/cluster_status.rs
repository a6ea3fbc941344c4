//! A cluster's status on the seed's Cluster Summary page (seed 002, "View Cluster Summary"),
//! derived from its nodes' states (SPEC F-3, F-4).
//!
//! The seed lists the statuses in priority order: when several describe a cluster (one node failed
//! to register while another is registered to a second virtual account), the first listed wins.
//! The seed restricts Partially Registered and Multiple Virtual Account Registered to Expressway
//! clusters because HCM-F registers those per cluster and the others per node; here every
//! application registers per node, so both apply to every cluster.

use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt;

/// The statuses, declared in the seed's priority order (highest first; `Ord` follows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterStatus {
    /// Registered nodes are spread over more than one virtual account.
    MultipleVirtualAccountRegistered,
    AutoRegistrationFailed,
    ManualRegistrationFailed,
    DeregistrationFailed,
    /// Unassigned, or never assigned: no node registered and none being worked on.
    Deregistered,
    /// Some nodes registered, others not.
    PartiallyRegistered,
    AutoRegistrationInProgress,
    AutoDeregistrationInProgress,
    AutoRegistered,
    ManuallyRegistered,
}

impl ClusterStatus {
    /// Every status, in the seed's priority order.
    pub const PRIORITY: [ClusterStatus; 10] = [
        ClusterStatus::MultipleVirtualAccountRegistered,
        ClusterStatus::AutoRegistrationFailed,
        ClusterStatus::ManualRegistrationFailed,
        ClusterStatus::DeregistrationFailed,
        ClusterStatus::Deregistered,
        ClusterStatus::PartiallyRegistered,
        ClusterStatus::AutoRegistrationInProgress,
        ClusterStatus::AutoDeregistrationInProgress,
        ClusterStatus::AutoRegistered,
        ClusterStatus::ManuallyRegistered,
    ];

    /// The seed's words, spelling included ("Inprogress", "InProgress"): operators filter on them.
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterStatus::MultipleVirtualAccountRegistered => "Multiple Virtual Account Registered",
            ClusterStatus::AutoRegistrationFailed => "Auto Registration Failed",
            ClusterStatus::ManualRegistrationFailed => "Manual Registration Failed",
            ClusterStatus::DeregistrationFailed => "Deregistration Failed",
            ClusterStatus::Deregistered => "Deregistered",
            ClusterStatus::PartiallyRegistered => "Partially Registered",
            ClusterStatus::AutoRegistrationInProgress => "Auto Registration Inprogress",
            ClusterStatus::AutoDeregistrationInProgress => "Auto Deregistration InProgress",
            ClusterStatus::AutoRegistered => "Auto Registered",
            ClusterStatus::ManuallyRegistered => "Manually Registered",
        }
    }

    /// The seed's description of the status (the Cluster Summary's information icon).
    pub fn description(self) -> &'static str {
        match self {
            ClusterStatus::MultipleVirtualAccountRegistered => {
                "Specifies the clusters where all the nodes are not registered to the same VA."
            }
            ClusterStatus::AutoRegistrationFailed => "Auto registration of the cluster fails.",
            ClusterStatus::ManualRegistrationFailed => "Manual assignment of cluster fails.",
            ClusterStatus::DeregistrationFailed => "Manual unassignment of the cluster fails.",
            ClusterStatus::Deregistered => "Clusters are not assigned to any virtual account.",
            ClusterStatus::PartiallyRegistered => "All nodes of a cluster are not registered.",
            ClusterStatus::AutoRegistrationInProgress => "Auto registration of the cluster is in progress.",
            ClusterStatus::AutoDeregistrationInProgress => "Auto deregistration of cluster is in progress.",
            ClusterStatus::AutoRegistered => "Cluster is autoregistered to the virtual account.",
            ClusterStatus::ManuallyRegistered => "Cluster is manually assigned to a virtual account.",
        }
    }

    /// The seed's note: a cluster registered to several virtual accounts cannot be assigned or
    /// unassigned by the orchestrator; the operator resolves it on the nodes first.
    pub fn allows_assignment(self) -> bool {
        self != ClusterStatus::MultipleVirtualAccountRegistered
    }
}

impl fmt::Display for ClusterStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the cluster's current (or last) assignment was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignMode {
    /// By an operator (assign/unassign).
    Manual,
    /// By auto-registration to the operational virtual account.
    Auto,
}

/// One node's licensing state as the orchestrator last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeState {
    NotRegistered,
    /// Registered to this virtual account (any stable identifier of it: id or name).
    Registered(String),
    RegistrationInProgress,
    DeregistrationInProgress,
    RegistrationFailed,
    DeregistrationFailed,
}

/// The cluster's status: the first, in the seed's priority order, of the statuses that describe
/// its nodes. A cluster without nodes is Deregistered.
///
/// The seed names in-progress statuses for auto-registration only; a manual operation in progress
/// shows its nodes' current states (Deregistered, then Partially Registered as nodes register).
pub fn derive(mode: AssignMode, nodes: &[NodeState]) -> ClusterStatus {
    let has = |wanted: &NodeState| nodes.iter().any(|n| n == wanted);
    let accounts: BTreeSet<&str> = nodes
        .iter()
        .filter_map(|n| match n {
            NodeState::Registered(va) => Some(va.as_str()),
            _ => None,
        })
        .collect();
    let registered = nodes.iter().filter(|n| matches!(n, NodeState::Registered(_))).count();
    let auto = mode == AssignMode::Auto;
    let describes = |status: &ClusterStatus| match status {
        ClusterStatus::MultipleVirtualAccountRegistered => accounts.len() > 1,
        ClusterStatus::AutoRegistrationFailed => auto && has(&NodeState::RegistrationFailed),
        ClusterStatus::ManualRegistrationFailed => !auto && has(&NodeState::RegistrationFailed),
        ClusterStatus::DeregistrationFailed => has(&NodeState::DeregistrationFailed),
        ClusterStatus::Deregistered => nodes.iter().all(|n| *n == NodeState::NotRegistered),
        ClusterStatus::PartiallyRegistered => registered > 0 && registered < nodes.len(),
        ClusterStatus::AutoRegistrationInProgress => auto && has(&NodeState::RegistrationInProgress),
        ClusterStatus::AutoDeregistrationInProgress => auto && has(&NodeState::DeregistrationInProgress),
        ClusterStatus::AutoRegistered => auto && registered == nodes.len(),
        ClusterStatus::ManuallyRegistered => !auto && registered == nodes.len(),
    };
    ClusterStatus::PRIORITY
        .into_iter()
        .find(describes)
        // Every remaining case is a manual operation in progress with no node registered yet.
        .unwrap_or(ClusterStatus::Deregistered)
}

#[cfg(test)]
mod tests {
    use super::AssignMode::{Auto, Manual};
    use super::ClusterStatus as S;
    use super::NodeState::*;
    use super::*;

    fn on(va: &str) -> NodeState {
        Registered(va.to_string())
    }

    #[test]
    fn priority_is_the_seeds_order_and_ord_follows_it() {
        let words: Vec<_> = ClusterStatus::PRIORITY.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            words,
            [
                "Multiple Virtual Account Registered",
                "Auto Registration Failed",
                "Manual Registration Failed",
                "Deregistration Failed",
                "Deregistered",
                "Partially Registered",
                "Auto Registration Inprogress",
                "Auto Deregistration InProgress",
                "Auto Registered",
                "Manually Registered",
            ]
        );
        assert!(ClusterStatus::PRIORITY.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(serde_json::to_value(S::AutoRegistrationInProgress).unwrap(), "auto_registration_in_progress");
        assert_eq!(S::PartiallyRegistered.to_string(), "Partially Registered");
    }

    #[test]
    fn each_status_from_its_nodes() {
        let cases: [(AssignMode, Vec<NodeState>, ClusterStatus); 12] = [
            (Manual, vec![on("va1"), on("va2")], S::MultipleVirtualAccountRegistered),
            (Auto, vec![on("ops"), RegistrationFailed], S::AutoRegistrationFailed),
            (Manual, vec![RegistrationFailed, NotRegistered], S::ManualRegistrationFailed),
            (Manual, vec![DeregistrationFailed, NotRegistered], S::DeregistrationFailed),
            (Manual, vec![NotRegistered, NotRegistered], S::Deregistered),
            (Auto, vec![], S::Deregistered),
            (Manual, vec![on("va1"), NotRegistered], S::PartiallyRegistered),
            (Auto, vec![RegistrationInProgress, NotRegistered], S::AutoRegistrationInProgress),
            (Auto, vec![DeregistrationInProgress, NotRegistered], S::AutoDeregistrationInProgress),
            (Auto, vec![on("ops"), on("ops")], S::AutoRegistered),
            (Manual, vec![on("va1"), on("va1"), on("va1")], S::ManuallyRegistered),
            (Manual, vec![RegistrationInProgress, NotRegistered], S::Deregistered),
        ];
        for (mode, nodes, want) in cases {
            assert_eq!(derive(mode, &nodes), want, "{mode:?} {nodes:?}");
        }
    }

    #[test]
    fn ties_go_to_the_status_listed_first() {
        let cases: [(AssignMode, Vec<NodeState>, ClusterStatus); 6] = [
            // Two accounts outrank a failure on a third node.
            (Auto, vec![on("va1"), on("va2"), RegistrationFailed], S::MultipleVirtualAccountRegistered),
            // A registration failure outranks a deregistration failure.
            (Auto, vec![RegistrationFailed, DeregistrationFailed], S::AutoRegistrationFailed),
            (Manual, vec![RegistrationFailed, DeregistrationFailed], S::ManualRegistrationFailed),
            // A failed deregistration outranks the partial registration it leaves behind.
            (Manual, vec![on("va1"), DeregistrationFailed], S::DeregistrationFailed),
            // Partially registered outranks a node still registering.
            (Auto, vec![on("ops"), NotRegistered, RegistrationInProgress], S::PartiallyRegistered),
            // Registering outranks deregistering.
            (Auto, vec![RegistrationInProgress, DeregistrationInProgress], S::AutoRegistrationInProgress),
        ];
        for (mode, nodes, want) in cases {
            assert_eq!(derive(mode, &nodes), want, "{mode:?} {nodes:?}");
        }
    }

    #[test]
    fn only_multiple_accounts_forbid_assignment() {
        for status in ClusterStatus::PRIORITY {
            assert_eq!(status.allows_assignment(), status != S::MultipleVirtualAccountRegistered);
            assert!(!status.description().is_empty());
        }
    }
}
