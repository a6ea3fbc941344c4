//! `/metrics` in the Prometheus text format. Every label set is bounded: a route is the matched
//! path template (never the raw URI), a status its code, a result one of a fixed list; the
//! per-pool license balance is labelled by account domain, virtual account and entitlement tag,
//! so it grows with the operator's own data only (one series per pool and tag in use).
//! Counters move where things are decided; gauges are read from the store at each scrape.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

/// What a device request, a registration or a job run came to.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)] // label values as operators query them
pub enum Outcome {
    authorized,
    out_of_compliance,
    no_licenses_in_use,
    registered,
    ok,
    refused,
    failed,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    result: Outcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    account: String,
    virtual_account: String,
    tag: String,
}

/// The manager's metrics; one per server, shared through [`AppState`].
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    authorizations: Family<OutcomeLabels, Counter>,
    registrations: Family<OutcomeLabels, Counter>,
    job_runs: Family<OutcomeLabels, Counter>,
    /// Open connections, kept by the TLS listener.
    pub open_connections: Arc<AtomicI64>,
    connections: Gauge,
    db_busy: Counter<f64, AtomicU64>,
    instances: Gauge,
    balance: Family<PoolLabels, Gauge>,
    /// One scrape at a time: each refreshes the gauges read from the store, then encodes.
    scrape: tokio::sync::Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("smartlic");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered, by method, route and status", requests.clone());
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        });
        registry.register("http_request_duration_seconds", "Time to answer a request, by route", latency.clone());
        let authorizations = Family::<OutcomeLabels, Counter>::default();
        registry.register("authorizations", "Device authorization requests, by result", authorizations.clone());
        let registrations = Family::<OutcomeLabels, Counter>::default();
        registry.register("registrations", "Device registrations, by result", registrations.clone());
        let job_runs = Family::<OutcomeLabels, Counter>::default();
        registry.register("job_runs", "Runs of the background jobs, by result", job_runs.clone());
        let connections = Gauge::default();
        registry.register("open_connections", "Open client connections", connections.clone());
        let db_busy = Counter::<f64, AtomicU64>::default();
        registry.register("db_write_busy_seconds", "Time the database writer spent in transactions", db_busy.clone());
        let instances = Gauge::default();
        registry.register("product_instances", "Registered product instances", instances.clone());
        let balance = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "license_balance",
            "Licenses available (negative: short) per pool and entitlement tag",
            balance.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            authorizations,
            registrations,
            job_runs,
            open_connections: Arc::default(),
            connections,
            db_busy,
            instances,
            balance,
            scrape: tokio::sync::Mutex::new(()),
        }
    }
}

impl Metrics {
    /// One answered request; `route` is the matched path template. A method outside the
    /// standard ones counts as `other`: HTTP lets a client invent any.
    pub fn request(&self, method: &Method, route: &str, status: u16, took: Duration) {
        let standard =
            [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::HEAD, Method::OPTIONS];
        let method = if standard.contains(method) { method.as_str() } else { "other" }.to_string();
        let route = route.to_string();
        self.requests.get_or_create(&RequestLabels { method, route: route.clone(), status }).inc();
        self.latency.get_or_create(&RouteLabels { route }).observe(took.as_secs_f64());
    }

    pub fn authorization(&self, result: Outcome) {
        self.authorizations.get_or_create(&OutcomeLabels { result }).inc();
    }

    pub fn registration(&self, result: Outcome) {
        self.registrations.get_or_create(&OutcomeLabels { result }).inc();
    }

    pub fn job_run(&self, result: Outcome) {
        self.job_runs.get_or_create(&OutcomeLabels { result }).inc();
    }

    /// Reads the gauges that live in the store and encodes everything.
    async fn render(&self, state: &AppState) -> ApiResult<String> {
        let _one = self.scrape.lock().await;
        self.connections.set(self.open_connections.load(Ordering::Relaxed));
        let busy = state.store.write_busy().as_secs_f64();
        self.db_busy.inc_by((busy - self.db_busy.get()).max(0.0));
        self.instances.set(state.store.instance_count().await?);
        // Rebuilt at each scrape: a deleted pool or a tag no longer held disappears.
        self.balance.clear();
        let now = state.clock.now();
        for account in state.store.accounts().await? {
            for va in state.store.virtual_accounts(account.id).await? {
                // A pool with drifted counters has no balance to show (it raises an alert).
                let Ok(counts) = state.store.pool_counts(va.id, now).await else { continue };
                for t in counts.ledger(&state.catalog).tags {
                    let labels = PoolLabels {
                        account: account.domain.clone(),
                        virtual_account: va.name.clone(),
                        tag: t.tag.clone(),
                    };
                    self.balance.get_or_create(&labels).set(t.balance());
                }
            }
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).map_err(ApiError::internal)?;
        Ok(text)
    }
}

/// `GET /metrics`: for operators only (bearer token), as it names accounts and pools.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operating",
    summary = "Metrics in the Prometheus text format (operator)",
    responses(
        (status = 200, description = "OpenMetrics text", body = String,
         content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        (status = 403, description = "FORBIDDEN: the caller is not the operator"),
    )
)]
pub async fn scrape(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require_operator("read the metrics")?;
    let text = state.metrics.render(&state).await?;
    Ok(([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response())
}
