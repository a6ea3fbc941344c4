//! Who may do what (C-2): the operator of the manager and the four account roles.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Runs the manager: creates smart accounts, deposits purchased licenses, moves the clock.
    Operator,
    SmartAccountAdmin,
    SmartAccountUser,
    VirtualAccountAdmin,
    VirtualAccountUser,
}

/// The things a principal asks to do; checked against its role and then its scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Create smart accounts, deposit licenses, set the simulated clock.
    Operate,
    /// Create and delete virtual accounts.
    ManageVirtualAccounts,
    /// Create users and API clients.
    ManageAccess,
    TransferLicenses,
    /// Reserve licenses for offline devices and take back their return codes: licenses
    /// leave the pool, so it is granted like transfer.
    ReserveLicenses,
    ManageTokens,
    ManageInstances,
    View,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Operator,
        Role::SmartAccountAdmin,
        Role::SmartAccountUser,
        Role::VirtualAccountAdmin,
        Role::VirtualAccountUser,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::SmartAccountAdmin => "smart-account-admin",
            Role::SmartAccountUser => "smart-account-user",
            Role::VirtualAccountAdmin => "virtual-account-admin",
            Role::VirtualAccountUser => "virtual-account-user",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text.trim())
    }

    /// Whether the role is bound to one virtual account rather than a whole smart account.
    pub fn is_virtual_account_scoped(self) -> bool {
        matches!(self, Role::VirtualAccountAdmin | Role::VirtualAccountUser)
    }

    pub fn allows(self, action: Action) -> bool {
        use Action::*;
        match self {
            Role::Operator => true,
            Role::SmartAccountAdmin => action != Operate,
            Role::SmartAccountUser => {
                matches!(action, TransferLicenses | ReserveLicenses | ManageTokens | ManageInstances | View)
            }
            Role::VirtualAccountAdmin => matches!(
                action,
                ManageAccess | TransferLicenses | ReserveLicenses | ManageTokens | ManageInstances | View
            ),
            Role::VirtualAccountUser => matches!(action, ManageTokens | View),
        }
    }

    /// A principal may hand out only roles no wider than its own.
    pub fn may_grant(self, other: Role) -> bool {
        match self {
            Role::Operator => true,
            Role::SmartAccountAdmin => other != Role::Operator,
            Role::VirtualAccountAdmin => other.is_virtual_account_scoped(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_privilege() {
        assert!(!Role::SmartAccountAdmin.allows(Action::Operate));
        assert!(!Role::SmartAccountUser.allows(Action::ManageAccess));
        assert!(!Role::VirtualAccountUser.allows(Action::TransferLicenses));
        for r in Role::ALL {
            assert_eq!(r.allows(Action::ReserveLicenses), r.allows(Action::TransferLicenses), "{r:?}");
        }
        assert!(Role::VirtualAccountUser.allows(Action::ManageTokens));
        assert!(!Role::VirtualAccountAdmin.may_grant(Role::SmartAccountUser));
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
    }
}
