//! The reports of the orchestrator's REST API (seed 002, "Smart Licensing Reports", "Subscription
//! Mapper"; SPEC F-5), under `/api/v1/fleet`:
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `reports/service-inventory` | the Service Inventory summary, `text/plain` |
//! | GET | `reports/usage/customers` | license use per customer and virtual account, `text/csv` |
//! | GET | `reports/usage/virtual-accounts` | installed / in use per virtual account, `text/csv` |
//! | GET | `reports/dashboard` | the license dashboard's figures, JSON |
//! | GET | `subscriptions` | the subscription mapper's rows, JSON |
//! | PUT | `subscriptions/{id}` | `{"customer", "license_model"}`: map a subscription, JSON |
//!
//! Licenses come from the last sync. What clusters use is asked of their registered nodes when a
//! report needs it, as the seed's HCM-F queries its applications for their consumption; a node
//! that does not answer is left out and named (`unreachable_nodes`, header `x-fleet-unreachable`).

use crate::api::{db, ApiState};
use crate::db::Db;
use crate::jobs::Fleet;
use crate::model::{Account, AccountKind};
use crate::node::NodeClient;
use crate::ops::cluster_status;
use crate::report::dashboard::{dashboard, ClusterFigure};
use crate::report::mapper::{self, LicenseModel, Mapping};
use crate::report::source::{pool_licenses, subscriptions, SyncedLicense};
use crate::report::{inventory, usage, ClusterUsage, Manager, Pool};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use rusqlite::params;
use serde::Deserialize;
use serde_json::json;
use smartlic_server::error::ApiError;

type Answer = Result<Response, ApiError>;
use std::collections::BTreeMap;

/// Who perpetual licenses without a mapping belong to (seed: "All perpetual licenses are
/// automatically mapped to the provider"): the service provider running the orchestrator.
pub const PROVIDER: &str = "Provider";

/// The routes, relative to `/api/v1/fleet`.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/reports/service-inventory", get(service_inventory))
        .route("/reports/usage/customers", get(usage_per_customer))
        .route("/reports/usage/virtual-accounts", get(usage_per_virtual_account))
        .route("/reports/dashboard", get(license_dashboard))
        .route("/subscriptions", get(subscription_rows))
        .route("/subscriptions/{id}", put(map_subscription))
}

// ---- reading the estate ----------------------------------------------------------------

fn manager_of(account: &Account) -> Manager {
    match account.kind {
        AccountKind::Cloud => Manager::Cssm,
        AccountKind::Satellite => Manager::Satellite,
    }
}

/// Every license line the last syncs stored, with the manager's JSON for it.
fn synced(database: &Db) -> Result<Vec<SyncedLicense>, ApiError> {
    let accounts: BTreeMap<String, Account> =
        db(database.accounts())?.into_iter().map(|a| (a.name.clone(), a)).collect();
    let conn = database.conn();
    let rows = conn
        .prepare(
            "SELECT a.name, l.virtual_account, l.license, l.quantity, l.in_use, l.details FROM licenses l \
             JOIN accounts a ON a.id = l.account_id ORDER BY a.name, l.virtual_account, l.license",
        )
        .and_then(|mut stmt| {
            stmt.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get::<_, String>(5)?))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(ApiError::internal)?;
    Ok(rows
        .into_iter()
        .filter_map(|(account, virtual_account, license, quantity, in_use, details)| {
            let manager = manager_of(accounts.get(&account)?);
            Some(SyncedLicense {
                pool: Pool { virtual_account, account, manager },
                license,
                quantity,
                in_use,
                details: serde_json::from_str(&details).unwrap_or_default(),
            })
        })
        .collect())
}

/// What the reports are made of besides licenses: customers, clusters with their status, and
/// (when asked for) what each assigned cluster's registered nodes use.
struct Estate {
    customers: Vec<String>,
    clusters: Vec<ClusterFigure>,
    usage: Vec<ClusterUsage>,
    unreachable: Vec<String>,
}

async fn estate(fleet: &Fleet, with_usage: bool) -> Result<Estate, ApiError> {
    let database = &fleet.db;
    let accounts: BTreeMap<String, Account> =
        db(database.accounts())?.into_iter().map(|a| (a.name.clone(), a)).collect();
    let customers = db(database.customers())?.into_iter().map(|c| c.name).collect();
    let mut estate = Estate { customers, clusters: Vec::new(), usage: Vec::new(), unreachable: Vec::new() };
    for cluster in db(database.clusters())? {
        let nodes = db(database.nodes(&cluster))?;
        estate
            .clusters
            .push(ClusterFigure { customer: cluster.customer.clone(), status: cluster_status(&cluster, &nodes) });
        let assigned = cluster.account.as_ref().and_then(|a| accounts.get(a)).zip(cluster.virtual_account.clone());
        let (Some((account, va)), true) = (assigned, with_usage) else { continue };
        let pool = Pool { virtual_account: va, account: account.name.clone(), manager: manager_of(account) };
        // The seed's cluster address is its publisher's: here the first node's host.
        let address = nodes.first().map(|n| host(&n.api_url)).unwrap_or_default();
        let mut used: BTreeMap<String, i64> = BTreeMap::new();
        for node in nodes.iter().filter(|n| n.virtual_account.is_some()) {
            let answer = match NodeClient::new(&node.api_url, db(database.node_token(&cluster, node))?) {
                Ok(client) => client.usage().await,
                Err(failure) => Err(failure),
            };
            match answer {
                Ok(features) => features.into_iter().for_each(|(license, n)| *used.entry(license).or_default() += n),
                Err(failure) => {
                    tracing::warn!(cluster = %cluster.name, node = %node.name, "report: node not read: {}", failure.detail);
                    estate.unreachable.push(format!("{}/{}", cluster.name, node.name));
                }
            }
        }
        for (license, count) in used {
            estate.usage.push(ClusterUsage {
                customer: cluster.customer.clone(),
                pool: pool.clone(),
                application: cluster.application.display().to_string(),
                cluster_address: address.clone(),
                license,
                count,
            });
        }
    }
    Ok(estate)
}

/// The host of a node's API URL (`https://10.0.0.5:8444` → `10.0.0.5`).
fn host(url: &str) -> String {
    reqwest::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default()
}

/// A text answer of `content_type`, naming the nodes that did not answer.
fn text(content_type: &'static str, body: String, unreachable: &[String]) -> Response {
    let mut response = ([(CONTENT_TYPE, content_type)], body).into_response();
    if let Ok(names) = HeaderValue::from_str(&unreachable.join(", ")) {
        if !unreachable.is_empty() {
            response.headers_mut().insert(HeaderName::from_static("x-fleet-unreachable"), names);
        }
    }
    response
}

// ---- the reports -----------------------------------------------------------------------

#[utoipa::path(
    get,
    path = "/api/v1/fleet/reports/service-inventory",
    tag = "fleet-reports",
    summary = "The Service Inventory license summary (seed 002's pipe format)",
    responses(
        (status = 200, description = "text/plain: |LICENSESUMMARYSTART| ... |LICENSESUMMARYEND|; nodes that did not answer are named in the header x-fleet-unreachable"),
    )
)]
pub(crate) async fn service_inventory(State(s): State<ApiState>) -> Answer {
    let pools = pool_licenses(&synced(&s.fleet.db)?);
    let estate = estate(&s.fleet, true).await?;
    let report = inventory::service_inventory(&pools, &estate.usage);
    Ok(text("text/plain; charset=utf-8", report, &estate.unreachable))
}

#[utoipa::path(
    get,
    path = "/api/v1/fleet/reports/usage/customers",
    tag = "fleet-reports",
    summary = "License use per customer and virtual account (CSV)",
    responses(
        (status = 200, description = "text/csv: Customer,Virtual Account,Manager,License,In Use,Clusters; nodes that did not answer are named in the header x-fleet-unreachable"),
    )
)]
pub(crate) async fn usage_per_customer(State(s): State<ApiState>) -> Answer {
    let estate = estate(&s.fleet, true).await?;
    Ok(text("text/csv; charset=utf-8", usage::per_customer_csv(&estate.usage), &estate.unreachable))
}

#[utoipa::path(
    get,
    path = "/api/v1/fleet/reports/usage/virtual-accounts",
    tag = "fleet-reports",
    summary = "Installed and in use per virtual account and license (CSV)",
    responses(
        (status = 200, description = "text/csv: Virtual Account,Manager,License,Installed,In Use,Available,Status"),
    )
)]
pub(crate) async fn usage_per_virtual_account(State(s): State<ApiState>) -> Answer {
    let pools = pool_licenses(&synced(&s.fleet.db)?);
    Ok(text("text/csv; charset=utf-8", usage::per_virtual_account_csv(&pools), &[]))
}

#[utoipa::path(
    get,
    path = "/api/v1/fleet/reports/dashboard",
    tag = "fleet-reports",
    summary = "The license dashboard's figures",
    responses(
        (status = 200, description = "customers, clusters per status, installed and in use per virtual account and customer, unreachable_nodes"),
    )
)]
pub(crate) async fn license_dashboard(State(s): State<ApiState>) -> Answer {
    let pools = pool_licenses(&synced(&s.fleet.db)?);
    let estate = estate(&s.fleet, true).await?;
    let mut figures = serde_json::to_value(dashboard(&estate.customers, &estate.clusters, &pools, &estate.usage))
        .map_err(ApiError::internal)?;
    figures["unreachable_nodes"] = json!(estate.unreachable);
    Ok(Json(figures).into_response())
}

// ---- the subscription mapper -----------------------------------------------------------

fn mappings(database: &Db) -> Result<Vec<Mapping>, ApiError> {
    let conn = database.conn();
    let rows = conn
        .prepare(
            "SELECT m.subscription_id, c.name, m.license_model FROM subscription_map m \
             JOIN customers c ON c.id = m.customer_id ORDER BY m.subscription_id",
        )
        .and_then(|mut stmt| {
            stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(ApiError::internal)?;
    Ok(rows
        .into_iter()
        .filter_map(|(subscription_id, customer, model)| {
            Some(Mapping { subscription_id, customer, license_model: LicenseModel::parse(&model).ok()? })
        })
        .collect())
}

#[utoipa::path(
    get,
    path = "/api/v1/fleet/subscriptions",
    tag = "fleet-reports",
    summary = "The subscription mapper: every synced subscription, its customer and license model",
    responses(
        (status = 200, description = "subscriptions, soonest end date first"),
    )
)]
pub(crate) async fn subscription_rows(State(s): State<ApiState>) -> Answer {
    let synced = subscriptions(&synced(&s.fleet.db)?);
    let rows = mapper::rows(&synced, &mappings(&s.fleet.db)?, PROVIDER);
    Ok(Json(json!({ "subscriptions": rows })).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct MapRequest {
    /// A customer's name.
    customer: String,
    /// Perpetual, Named User, Named User + Perpetual or Enterprise Agreement (or perpetual, named_user ...).
    license_model: String,
}

/// Maps a subscription the sync found to a customer (replacing its mapping, if any).
#[utoipa::path(
    put,
    path = "/api/v1/fleet/subscriptions/{id}",
    tag = "fleet-reports",
    summary = "Map a synced subscription to a customer and a license model",
    params(("id" = String, Path, description = "the subscription id")),
    request_body = MapRequest,
    responses(
        (status = 200, description = "the mapping (it replaces any earlier one)"),
        (status = 400, description = "INVALID_INPUT: unknown subscription, unknown customer or license model (named)"),
    )
)]
pub(crate) async fn map_subscription(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    b: Result<Json<MapRequest>, JsonRejection>,
) -> Answer {
    let Json(b) = b.map_err(ApiError::from)?;
    let database = &s.fleet.db;
    let synced = subscriptions(&synced(database)?);
    let customers: Vec<String> = db(database.customers())?.into_iter().map(|c| c.name).collect();
    let mapping = mapper::check(&id, &b.customer, &b.license_model, &synced, &customers)
        .map_err(|i| ApiError::invalid(i.field, i.message))?;
    database
        .conn()
        .execute(
            "INSERT INTO subscription_map (subscription_id, customer_id, license_model) \
             VALUES (?1, (SELECT id FROM customers WHERE name = ?2), ?3) \
             ON CONFLICT (subscription_id) DO UPDATE SET customer_id = excluded.customer_id, \
             license_model = excluded.license_model",
            params![mapping.subscription_id, mapping.customer, mapping.license_model.key()],
        )
        .map_err(ApiError::internal)?;
    tracing::info!(subscription = %mapping.subscription_id, customer = %mapping.customer, "subscription mapped");
    Ok(Json(mapping).into_response())
}
