//! Device-led conversion (V-1, seed 000) at the manager: the signed device request that turns
//! the legacy licenses a registered device reports into smart licenses of its virtual account,
//! once per device, and the setting that enables it per smart or virtual account (off by
//! default), in the REST API. Only the cloud converts: a satellite answers why it does not.

use crate::api::{load_account, load_va};
use crate::auth::Caller;
use crate::body::{Body, Path};
use crate::device::{
    authenticate, body_bytes, field_text, malformed, parse, readable, refusal, respond, Nonce, RawBody, SignedRequest,
};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use smartlic_core::{validate, Role, Timestamp};
use smartlic_proto::wire::{self, code, text};
use smartlic_store::conversion::{ConversionOutcome, ConversionSettings, ConvertedItem, DeviceConversion};
use smartlic_store::{Account, Instance};
use std::collections::BTreeMap;

/// Most legacy licenses one request may list.
const MAX_LEGACY: usize = 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/accounts/{domain}/conversion", get(show_conversion).patch(set_account_conversion))
        .route("/api/v1/accounts/{domain}/virtual-accounts/{va}/conversion", axum::routing::patch(set_pool_conversion))
}

// ---- the device request --------------------------------------------------------------------

/// `POST /device/v1/convert`, signed by the device's key like every device request.
pub(crate) async fn convert(State(state): State<AppState>, headers: HeaderMap, body: RawBody) -> Response {
    let path = wire::PATH_CONVERT;
    let request = readable(&body);
    let result = async {
        let now = state.clock.now();
        let body = body_bytes(body)?;
        let req: wire::ConvertRequest = parse(&body)?;
        let legacy = legacy_list(&req.legacy)?;
        let signed = SignedRequest { path, headers: &headers, body: &body };
        let inst = authenticate(&state, signed, &req.instance_id, &req.envelope, Nonce::Consume, now).await?;
        if state.satellite.enabled() {
            let why = smartlic_core::agent::SATELLITE_NOT_SUPPORTED;
            return Err(refusal(StatusCode::CONFLICT, code::CONVERSION_NOT_SUPPORTED, why));
        }
        let answer = convert_instance(&state, &inst, &legacy, now).await?;
        Ok::<_, ApiError>(wire::ConvertResponse { request_nonce: req.envelope.nonce, ..answer })
    }
    .await;
    if let Err(e) = &result {
        tracing::warn!(code = e.code, reason = %e.message, "conversion refused");
    }
    respond(&state, path, request.as_deref(), result)
}

/// The reported list, names checked and each listed once.
fn legacy_list(legacy: &[wire::LegacyLicense]) -> ApiResult<BTreeMap<String, i64>> {
    if legacy.len() > MAX_LEGACY {
        return Err(malformed(format!("at most {MAX_LEGACY} legacy licenses per request")).with_field("legacy"));
    }
    let mut map = BTreeMap::new();
    for l in legacy {
        let name = field_text("legacy.name", &l.name, validate::MAX_NAME)?;
        let count = validate::count("legacy.count", l.count)?;
        if map.insert(name.clone(), count).is_some() {
            return Err(malformed(format!("legacy license '{name}' appears twice")).with_field("legacy"));
        }
    }
    Ok(map)
}

/// Maps the list through the catalogue (unknown names reported, never guessed) and converts.
async fn convert_instance(
    state: &AppState,
    inst: &Instance,
    legacy: &BTreeMap<String, i64>,
    now: Timestamp,
) -> ApiResult<wire::ConvertResponse> {
    let mut items = Vec::new();
    let mut unknown = Vec::new();
    let mut answer = Vec::new();
    for (name, &count) in legacy {
        match state.catalog.legacy(name) {
            Some(m) => {
                let quantity = m.quantity.saturating_mul(count);
                items.push(ConvertedItem { legacy: name.clone(), count, tag: m.tag.clone(), quantity });
                answer.push(wire::ConvertedLicense { name: name.clone(), count, tag: Some(m.tag.clone()), quantity });
            }
            None => {
                unknown.push(name.clone());
                answer.push(wire::ConvertedLicense { name: name.clone(), count, tag: None, quantity: 0 });
            }
        }
    }
    let conversion = DeviceConversion { instance_id: inst.id.clone(), items, unknown };
    let outcome = state.store.convert_device(conversion, now).await?;
    let udi = format!("PID:{},SN:{}", inst.udi_pid, inst.udi_sn);
    let (already_converted, items) = match outcome {
        ConversionOutcome::Converted { .. } => {
            tracing::info!(device = %udi, instance = %inst.id, "device converted its legacy licenses");
            (false, answer)
        }
        ConversionOutcome::AlreadyConverted { .. } => (true, Vec::new()),
        ConversionOutcome::NotEnabled => {
            return Err(refusal(StatusCode::FORBIDDEN, code::CONVERSION_NOT_ENABLED, text::CONVERSION_NOT_ENABLED))
        }
    };
    Ok(wire::ConvertResponse { request_nonce: String::new(), timestamp: now.0, already_converted, items })
}

// ---- the setting ---------------------------------------------------------------------------

/// Where device-led conversion is enabled in a smart account.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ConversionSettingsView {
    /// Enabled for the smart account as a whole (every virtual account).
    pub(crate) enabled: bool,
    /// Virtual accounts enabled on their own, by name.
    pub(crate) virtual_accounts: Vec<String>,
}

/// Enables (`true`) or disables (`false`) device-led conversion.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConversionChange {
    pub(crate) enabled: bool,
}

pub(crate) async fn view(
    state: &AppState,
    account: &Account,
    settings: ConversionSettings,
) -> ApiResult<ConversionSettingsView> {
    let pools = state.store.virtual_accounts(account.id).await?;
    let virtual_accounts =
        pools.into_iter().filter(|p| settings.virtual_accounts.contains(&p.id)).map(|p| p.name).collect();
    Ok(ConversionSettingsView { enabled: settings.account, virtual_accounts })
}

#[utoipa::path(
    get,
    path = "/api/v1/accounts/{domain}/conversion",
    operation_id = "show_conversion",
    tag = "smartlic",
    summary = "Where device-led conversion is enabled",
    params(crate::openapi::AccountPath),
    responses(
        (status = 200, description = "the conversion settings", body = ConversionSettingsView),
        (status = 403, description = "FORBIDDEN: the caller's role may not view the whole account"),
        (status = 404, description = "NOT_FOUND: the smart account does not exist or the caller has no role in it"),
    )
)]
pub(crate) async fn show_conversion(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
) -> ApiResult<Json<ConversionSettingsView>> {
    let account = load_account(&state, &caller, &domain).await?;
    caller.require_account_view(&account)?;
    let settings = state.store.conversion_settings(account.id).await?;
    Ok(Json(view(&state, &account, settings).await?))
}

#[utoipa::path(
    patch,
    path = "/api/v1/accounts/{domain}/conversion",
    operation_id = "set_account_conversion",
    tag = "smartlic",
    summary = "Enable or disable device-led conversion for a whole smart account (smart account admin)",
    params(crate::openapi::AccountPath),
    request_body = ConversionChange,
    responses(
        (status = 200, description = "the conversion settings, changed", body = ConversionSettingsView),
        (status = 403, description = "FORBIDDEN: only an administrator of the smart account"),
        (status = 404, description = "NOT_FOUND: the smart account does not exist or the caller has no role in it"),
    )
)]
pub(crate) async fn set_account_conversion(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    Body(b): Body<ConversionChange>,
) -> ApiResult<Json<ConversionSettingsView>> {
    let account = load_account(&state, &caller, &domain).await?;
    Ok(Json(set(&state, &caller, &account, None, b.enabled).await?))
}

#[utoipa::path(
    patch,
    path = "/api/v1/accounts/{domain}/virtual-accounts/{va}/conversion",
    operation_id = "set_pool_conversion",
    tag = "smartlic",
    summary = "Enable or disable device-led conversion for one virtual account (smart account admin)",
    params(crate::openapi::PoolPath),
    request_body = ConversionChange,
    responses(
        (status = 200, description = "the conversion settings, changed", body = ConversionSettingsView),
        (status = 403, description = "FORBIDDEN: only an administrator of the smart account"),
        (status = 404, description = "NOT_FOUND: the smart or virtual account does not exist or the caller has no role in it"),
    )
)]
pub(crate) async fn set_pool_conversion(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, va)): Path<(String, String)>,
    Body(b): Body<ConversionChange>,
) -> ApiResult<Json<ConversionSettingsView>> {
    let account = load_account(&state, &caller, &domain).await?;
    let pool = load_va(&state, &account, &va).await?;
    Ok(Json(set(&state, &caller, &account, Some(pool.id), b.enabled).await?))
}

/// Who may change the setting: an administrator of the smart account (or the operator).
pub(crate) fn require_admin(caller: &Caller, account: &Account) -> ApiResult<()> {
    let admin = matches!(caller.role(), Role::Operator | Role::SmartAccountAdmin) && caller.has_role_in(account);
    if !admin {
        return Err(ApiError::forbidden(format!(
            "'{}' ({}) may not enable or disable device-led conversion: only an administrator of {} may",
            caller.login(),
            caller.role().as_str(),
            account.domain
        )));
    }
    Ok(())
}

/// The change, by a smart account administrator of `account` (or the operator): the seed's
/// "CSSM Smart Account Administrator" is who enables it.
pub(crate) async fn set(
    state: &AppState,
    caller: &Caller,
    account: &Account,
    pool: Option<i64>,
    enabled: bool,
) -> ApiResult<ConversionSettingsView> {
    require_admin(caller, account)?;
    let settings =
        state.store.set_conversion_enabled(account.id, pool, enabled, caller.login(), state.clock.now()).await?;
    view(state, account, settings).await
}
