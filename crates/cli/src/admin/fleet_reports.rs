//! `smartlic admin fleet report ...` and `smartlic admin fleet subscription ...`: the
//! orchestrator's reports (seed 002, "Smart Licensing Reports"; SPEC F-5) and its subscription
//! mapper. The text reports (Service Inventory, CSVs) print verbatim, for files and pipes.

use super::client::segment;
use super::view::Col;
use super::view::Show::{Record, Table, Text};
use super::Call;
use anyhow::Result;
use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

const BASE: &str = "/api/v1/fleet";

#[derive(Subcommand, Debug)]
pub enum ReportCmd {
    /// The Service Inventory license summary, in the seed's pipe-separated format.
    ServiceInventory,
    /// License use per customer and virtual account (CSV), as the clusters' nodes report it.
    Customers,
    /// Installed, in use and available per virtual account and license (CSV), as last synced.
    VirtualAccounts,
    /// The license dashboard's figures (clusters per status, use per account and customer).
    Dashboard,
}

#[derive(Subcommand, Debug)]
pub enum SubscriptionCmd {
    /// Subscriptions the sync found, soonest end first, with their customer and license model.
    List,
    /// Map a subscription to a customer with a license model (replacing an earlier mapping).
    Map {
        /// The subscription id, as `subscription list` shows it.
        #[arg(long)]
        id: String,
        /// The customer's name, as `customer list` shows it.
        #[arg(long)]
        customer: String,
        /// Perpetual, "Named User", "Named User + Perpetual" or "Enterprise Agreement".
        #[arg(long)]
        license_model: String,
    },
}

const SUBSCRIPTIONS: &[Col] = &[
    ("SUBSCRIPTION", "subscription_id"),
    ("IN USE", "licenses_in_use"),
    ("START", "start_date"),
    ("END", "end_date"),
    ("CUSTOMER", "customer"),
    ("LICENSE MODEL", "license_model"),
];

impl ReportCmd {
    pub fn plan(&self) -> Call {
        let (path, show) = match self {
            ReportCmd::ServiceInventory => ("/reports/service-inventory", Text),
            ReportCmd::Customers => ("/reports/usage/customers", Text),
            ReportCmd::VirtualAccounts => ("/reports/usage/virtual-accounts", Text),
            ReportCmd::Dashboard => ("/reports/dashboard", Record),
        };
        Call::get(format!("{BASE}{path}"), show)
    }
}

impl SubscriptionCmd {
    pub fn plan(&self) -> Result<Call> {
        Ok(match self {
            SubscriptionCmd::List => Call::get(format!("{BASE}/subscriptions"), Table("subscriptions", SUBSCRIPTIONS)),
            SubscriptionCmd::Map { id, customer, license_model } => Call::with_body(
                Method::PUT,
                format!("{BASE}/subscriptions/{}", segment(id)?),
                json!({"customer": customer, "license_model": license_model}),
                Record,
            ),
        })
    }
}
