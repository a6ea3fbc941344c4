//! The cloud's operator changes which manager serves a pool (issue 12: one manager per pool,
//! changeable). A pool the cloud serves goes to a satellite at once, when no instance is
//! registered in it with the cloud; one a satellite serves moves with that satellite's next
//! synchronisation, after the usage it carries, and the responses tell the satellite until it
//! acknowledges (see [`SatelliteStore::reassign_pool`](smartlic_store::satellite::SatelliteStore::reassign_pool)).

use super::refuse_on_satellite;
use crate::auth::Caller;
use crate::body::Body;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/satellites/reassign", post(reassign))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReassignBody {
    smart_account: String,
    virtual_account: String,
    /// The satellite (its id in `satellite list`) to serve the pool; absent or null: the cloud.
    to_satellite: Option<i64>,
}

/// The pool's manager after a reassignment.
#[derive(Serialize, utoipa::ToSchema)]
struct ReassignView {
    virtual_account: String,
    /// The satellite serving it until the move, if one does.
    from: Option<String>,
    /// The manager serving it after the move.
    to: String,
    /// True: the move happens with the serving satellite's next synchronisation.
    pending: bool,
}

/// The cloud's operator changes which manager serves a pool (one manager per pool).
#[utoipa::path(
    post,
    path = "/api/v1/satellites/reassign",
    operation_id = "reassign_pool",
    tag = "smartlic",
    summary = "Cloud: give a pool to another satellite or to the cloud (a satellite's pool moves with its next synchronisation)",
    request_body = ReassignBody,
    responses(
        (status = 200, description = "the reassignment", body = ReassignView),
        (status = 403, description = "FORBIDDEN: only the operator"),
        (status = 404, description = "NOT_FOUND: no such smart account, virtual account or satellite"),
        (status = 409, description = "CONFLICT: a move already pending, the manager it has, a satellite not approved for the account, or instances registered with the cloud"),
    )
)]
async fn reassign(
    State(state): State<AppState>,
    caller: Caller,
    Body(b): Body<ReassignBody>,
) -> ApiResult<Json<ReassignView>> {
    caller.require_operator("reassign pools")?;
    refuse_on_satellite(&state, "reassigning pools")?;
    let account = crate::api::load_account(&state, &caller, &b.smart_account).await?;
    let va = state.store.virtual_account(account.id, &b.virtual_account).await?.ok_or_else(|| {
        ApiError::not_found(format!("virtual account '{}' does not exist in {}", b.virtual_account, account.domain))
            .with_field("virtual_account")
    })?;
    let moved = state.store.reassign_pool(va.id, b.to_satellite, caller.login(), state.clock.now()).await?;
    if moved.to.is_some() {
        state.satellite.serves_pools.store(true, Ordering::Release);
    }
    Ok(Json(ReassignView {
        virtual_account: moved.pool,
        from: moved.from,
        to: moved.to.unwrap_or_else(|| "the cloud".to_string()),
        pending: moved.pending,
    }))
}
