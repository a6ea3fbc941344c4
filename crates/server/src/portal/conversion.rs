//! The Administration page's "Device-led conversion" settings (V-1): enabled for the smart
//! account as a whole or for the virtual account on screen, changed through the REST API's own
//! handler, so the same rule decides who may (a smart account administrator).

use super::layout::{csrf_field, place, Notice, Place};
use super::session::Viewer;
use super::{admin, respond, PageResult, Posted};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::{Path, State};
use maud::{html, Markup};
use serde::Deserialize;

/// The form, with the current settings; shown to those who may change them.
pub async fn section(state: &AppState, v: &Viewer, place: &Place) -> ApiResult<Markup> {
    let settings = state.store.conversion_settings(place.account.id).await?;
    let view = crate::conversion::view(state, &place.account, settings).await?;
    let pool = &place.pool.name;
    let pool_on = view.virtual_accounts.contains(pool);
    let choice = |id: &str, name: &str, label: String, on: bool| {
        html! {
            div.field {
                label for=(id) { (label) }
                select id=(id) name=(name) {
                    option value="false" selected[!on] { "disabled" }
                    option value="true" selected[on] { "enabled" }
                }
            }
        }
    };
    Ok(html! {
        h2 { "Device-led conversion" }
        form method="post" action=(place.url("admin/conversion")) {
            (csrf_field(v))
            fieldset {
                legend { "Registered devices may convert their legacy licenses once into smart licenses" }
                div.row {
                    (choice("conversion-account", "account", format!("For all of {}", place.account.domain), view.enabled))
                    (choice("conversion-pool", "pool", format!("For virtual account {pool}"), pool_on))
                    button type="submit" { "Save conversion settings" }
                }
            }
        }
    })
}

#[derive(Deserialize)]
pub struct ConversionForm {
    /// `true` or `false`, as the selects send them (a form has no booleans).
    #[serde(default)]
    account: String,
    #[serde(default)]
    pool: String,
}

fn flag(field: &str, value: &str) -> ApiResult<bool> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(ApiError::invalid(field, format!("'{other}' is neither true nor false"))),
    }
}

/// `admin/conversion`: both settings, each saved only if it changed; a bad value changes nothing.
pub async fn save(
    State(state): State<AppState>,
    Path((domain, va)): Path<(String, String)>,
    Posted(v, f): Posted<ConversionForm>,
) -> PageResult {
    let place = place(&state, &v, &domain, &va).await?;
    let outcome = async {
        let caller = super::actions::caller(&v);
        crate::conversion::require_admin(&caller, &place.account)?;
        let (account, pool) = (flag("account", &f.account)?, flag("pool", &f.pool)?);
        let before = state.store.conversion_settings(place.account.id).await?;
        if before.account != account {
            crate::conversion::set(&state, &caller, &place.account, None, account).await?;
        }
        if before.virtual_accounts.contains(&place.pool.id) != pool {
            crate::conversion::set(&state, &caller, &place.account, Some(place.pool.id), pool).await?;
        }
        Ok(Notice::Done("Conversion settings saved.".into()))
    }
    .await;
    let (code, notice) = Notice::of(outcome);
    respond(code, admin::render(&state, &v, &place, notice).await?)
}
