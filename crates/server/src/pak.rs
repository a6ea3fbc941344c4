//! PAK conversion (V-2, seed 004) in the REST API: the operator imports PAKs (they come from an
//! ordering system this project does not have), the smart account lists them with what remains,
//! converts all or part of one into a virtual account, and reads the conversion history. The
//! portal's License Conversion tab calls the same functions ([`list`], [`convert`], [`history`]).

use crate::api::{created, load_account, load_va, Page};
use crate::auth::Caller;
use crate::body::{Body, Path, Query};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::views::LicenseRecordView;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use smartlic_core::role::Action;
use smartlic_core::{validate, Timestamp};
use smartlic_store::pak::{ConvertPak, NewPak, Pak, PakConversion, PakLine};
use smartlic_store::{Account, VirtualAccount};
use std::collections::{BTreeMap, BTreeSet};

/// Most PAKs one import may hold, and most SKU lines one PAK may hold.
pub const MAX_PAKS: usize = 1000;
pub const MAX_LINES: usize = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/accounts/{domain}/paks", get(list_paks).post(import_paks))
        .route("/api/v1/accounts/{domain}/paks/{pak}/convert", post(convert_pak))
        .route("/api/v1/accounts/{domain}/pak-conversions", get(list_conversions))
}

// ---- bodies and views ----------------------------------------------------------------------

/// PAKs to import into one smart account: all are imported or none.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PakImport {
    pub paks: Vec<PakBody>,
}

/// One PAK as the ordering system gives it (also a PAK of `smartlic admin pak import`'s file).
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PakBody {
    /// The PAK number: letters, digits, '-', '_' and '.', unique across the manager.
    #[schema(min_length = 1, max_length = 128, example = "BC7XX73YIW1")]
    pub pak: String,
    #[schema(min_length = 1, max_length = 128, example = "106386347")]
    pub order_number: String,
    /// `YYYY-MM-DD`.
    #[schema(example = "2018-05-07")]
    pub order_date: String,
    /// The virtual account the order named, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_account: Option<String>,
    /// Whether the PAK may be converted in parts; otherwise all its licenses convert at once.
    #[serde(default)]
    pub partial_fulfillment: bool,
    /// SKUs with quantities, each SKU once; a SKU must be in the catalogue's legacy mapping.
    pub lines: Vec<SkuQuantity>,
}

/// A quantity of one SKU.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkuQuantity {
    #[schema(example = "C9500-NW-A")]
    pub sku: String,
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub quantity: i64,
}

/// What to convert: into which virtual account (of the PAK's smart account) and, when the PAK
/// allows partial fulfilment, how many of which SKUs (all that remains when `lines` is absent).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConvertBody {
    pub virtual_account: String,
    #[serde(default)]
    pub lines: Option<Vec<SkuQuantity>>,
}

/// A PAK as the seed's Convert PAKs table shows it, with what remains per SKU.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PakView {
    pub pak: String,
    /// The SKUs with their quantities, as the seed's table writes them: `C1-ISE-BASE-T (25)`.
    pub skus: String,
    pub order_number: String,
    pub order_date: String,
    pub virtual_account: Option<String>,
    pub partial_fulfillment: bool,
    /// Not converted, Partially converted or Converted.
    pub status: &'static str,
    /// What remains to convert, as `skus` writes it (SKUs with nothing left not shown).
    pub remaining: String,
    pub lines: Vec<PakLineView>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PakLineView {
    pub sku: String,
    /// The entitlement tag it converts to.
    pub tag: String,
    /// Licenses of `tag` per unit of the SKU.
    pub licenses_per_unit: i64,
    pub quantity: i64,
    pub converted: i64,
    pub remaining: i64,
}

/// One conversion of the history.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PakConversionView {
    pub pak: String,
    pub virtual_account: String,
    /// What was converted, as the PAK table writes SKUs: `C9500-NW-A (10)`.
    pub skus: String,
    /// Who converted (login).
    pub by: String,
    pub at: String,
    pub lines: Vec<ConvertedLineView>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ConvertedLineView {
    pub sku: String,
    pub quantity: i64,
    pub tag: String,
    /// Licenses of `tag` deposited.
    pub licenses: i64,
}

/// The PAKs an import added.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Imported {
    pub paks: Vec<PakView>,
}

/// The answer of a conversion: what it did, the PAK after it, the purchase records deposited.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Converted {
    pub conversion: PakConversionView,
    pub pak: PakView,
    pub licenses: Vec<LicenseRecordView>,
}

/// Pool names by id, for views; a pool deleted since is named by its id.
struct Pools(BTreeMap<i64, String>);

impl Pools {
    async fn of(state: &AppState, account: &Account) -> ApiResult<Pools> {
        let pools = state.store.virtual_accounts(account.id).await?;
        Ok(Pools(pools.into_iter().map(|p| (p.id, p.name)).collect()))
    }

    fn name(&self, id: i64) -> String {
        self.0.get(&id).cloned().unwrap_or_else(|| format!("(deleted virtual account {id})"))
    }
}

/// SKUs with quantities as the seed's PAK table writes them: `C1-ISE-BASE-T (25), ...`.
fn sku_list<'a>(lines: impl Iterator<Item = (&'a str, i64)>) -> String {
    lines.map(|(sku, n)| format!("{sku} ({n})")).collect::<Vec<_>>().join(", ")
}

impl PakView {
    fn new(p: &Pak, pools: &Pools) -> PakView {
        let left = p.lines.iter().filter(|l| l.remaining() > 0).map(|l| (l.sku.as_str(), l.remaining()));
        let lines = p
            .lines
            .iter()
            .map(|l| PakLineView {
                sku: l.sku.clone(),
                tag: l.tag.clone(),
                licenses_per_unit: l.units,
                quantity: l.quantity,
                converted: l.converted,
                remaining: l.remaining(),
            })
            .collect();
        PakView {
            pak: p.pak.clone(),
            skus: sku_list(p.lines.iter().map(|l| (l.sku.as_str(), l.quantity))),
            remaining: sku_list(left),
            order_number: p.order_number.clone(),
            order_date: p.order_date.clone(),
            virtual_account: p.virtual_account_id.map(|id| pools.name(id)),
            partial_fulfillment: p.partial_fulfillment,
            status: p.status().as_str(),
            lines,
        }
    }
}

impl PakConversionView {
    fn new(c: &PakConversion, pools: &Pools) -> PakConversionView {
        let lines = c
            .lines
            .iter()
            .map(|l| ConvertedLineView {
                sku: l.sku.clone(),
                quantity: l.quantity,
                tag: l.tag.clone(),
                licenses: l.licenses,
            })
            .collect();
        PakConversionView {
            pak: c.pak.clone(),
            virtual_account: pools.name(c.virtual_account_id),
            skus: sku_list(c.lines.iter().map(|l| (l.sku.as_str(), l.quantity))),
            by: c.actor.clone(),
            at: c.at.to_rfc3339(),
            lines,
        }
    }
}

// ---- the rules the handlers and the portal share -------------------------------------------

/// Whether the caller sees a PAK or a conversion of pool `va` (None: the PAK names none):
/// account-wide roles see all, a virtual account's roles those of their pool only.
fn sees(caller: &Caller, account: &Account, va: Option<i64>) -> bool {
    match va {
        Some(id) => caller.sees(account, id),
        None => caller.has_role_in(account) && !caller.role().is_virtual_account_scoped(),
    }
}

/// The PAKs of the account the caller sees.
pub async fn list(state: &AppState, caller: &Caller, account: &Account) -> ApiResult<Vec<PakView>> {
    caller.require_account_view(account)?;
    let pools = Pools::of(state, account).await?;
    let paks = state.store.paks(account.id).await?;
    Ok(paks.iter().filter(|p| sees(caller, account, p.virtual_account_id)).map(|p| PakView::new(p, &pools)).collect())
}

/// The conversions of the account the caller sees, newest first.
pub async fn history(state: &AppState, caller: &Caller, account: &Account) -> ApiResult<Vec<PakConversionView>> {
    caller.require_account_view(account)?;
    let pools = Pools::of(state, account).await?;
    let done = state.store.pak_conversions(account.id).await?;
    Ok(done
        .iter()
        .filter(|c| sees(caller, account, Some(c.virtual_account_id)))
        .map(|c| PakConversionView::new(c, &pools))
        .collect())
}

/// PAKs are imported and converted in the cloud only: a satellite's licenses are the cloud's,
/// brought down by synchronisation, and a conversion there would be undone by the next sync.
fn in_the_cloud(state: &AppState) -> ApiResult<()> {
    if state.satellite.enabled() {
        return Err(ApiError::conflict(
            "PAKs are imported and converted in the cloud manager; a satellite receives the licenses by synchronisation",
        ));
    }
    Ok(())
}

/// Converts `lines` of PAK `pak` (all that remains when None) into the pool `to`: the caller
/// needs the right to bring licenses into that pool and must see the PAK.
pub async fn convert(
    state: &AppState,
    caller: &Caller,
    account: &Account,
    pak: &str,
    to: &str,
    lines: Option<&[SkuQuantity]>,
) -> ApiResult<Converted> {
    in_the_cloud(state)?;
    let target = load_va(state, account, to).await.map_err(|e| e.with_field("virtual_account"))?;
    caller.require(Action::TransferLicenses, account, Some(&target))?;
    let paks = state.store.paks(account.id).await?;
    let found = paks.iter().find(|p| p.pak == pak).filter(|p| sees(caller, account, p.virtual_account_id));
    if found.is_none() {
        return Err(ApiError::not_found(format!("PAK '{pak}' does not exist in {}", account.domain)).with_field("pak"));
    }
    let lines = lines.map(asked).transpose()?;
    let c = ConvertPak { account_id: account.id, pak: pak.to_string(), virtual_account_id: target.id, lines };
    let now = state.clock.now();
    let (done, licenses) = state.store.convert_pak(c, caller.login(), now).await?;
    tracing::info!(pak, virtual_account = %target.name, by = caller.login(), "PAK converted");
    let pools = Pools::of(state, account).await?;
    let after = state.store.paks(account.id).await?;
    let after = after.iter().find(|p| p.pak == pak).map(|p| PakView::new(p, &pools));
    let pak = after.ok_or_else(|| ApiError::internal(format!("PAK '{pak}' vanished after its conversion")))?;
    let licenses = licenses.iter().map(|r| LicenseRecordView::new(r, now)).collect();
    Ok(Converted { conversion: PakConversionView::new(&done, &pools), pak, licenses })
}

/// A conversion's lines as SKU → units: quantities checked, each SKU once.
fn asked(lines: &[SkuQuantity]) -> ApiResult<BTreeMap<String, i64>> {
    if lines.is_empty() {
        return Err(ApiError::invalid("lines", "names no SKU: leave it out to convert all that remains"));
    }
    let mut map = BTreeMap::new();
    for (i, l) in lines.iter().enumerate() {
        let field = format!("lines[{i}]");
        let sku =
            validate::text("sku", &l.sku, validate::MAX_NAME).map_err(|e| ApiError::from(e).with_field(&field))?;
        let n = validate::count("quantity", l.quantity).map_err(|e| ApiError::from(e).with_field(&field))?;
        if map.insert(sku.clone(), n).is_some() {
            return Err(ApiError::invalid(&field, format!("SKU '{sku}' is listed twice")));
        }
    }
    Ok(map)
}

/// Checks every PAK of an import before anything is stored; the first fault is named by PAK
/// (position and number) and line, so a file's author finds it.
pub async fn check_import(state: &AppState, account: &Account, body: &PakImport) -> ApiResult<Vec<NewPak>> {
    if body.paks.is_empty() {
        return Err(ApiError::invalid("paks", "lists no PAK"));
    }
    if body.paks.len() > MAX_PAKS {
        return Err(ApiError::invalid(
            "paks",
            format!("lists {} PAKs; at most {MAX_PAKS} per import", body.paks.len()),
        ));
    }
    let pools = state.store.virtual_accounts(account.id).await?;
    let mut seen = BTreeSet::new();
    let mut checked = Vec::with_capacity(body.paks.len());
    for (i, p) in body.paks.iter().enumerate() {
        let new = check_pak(state, &pools, i, p)?;
        if !seen.insert(new.pak.clone()) {
            return Err(ApiError::invalid(
                &format!("paks[{i}]"),
                format!("PAK {} ('{}') is listed twice", i + 1, new.pak),
            ));
        }
        checked.push(new);
    }
    Ok(checked)
}

fn check_pak(state: &AppState, pools: &[VirtualAccount], i: usize, p: &PakBody) -> ApiResult<NewPak> {
    let at = |field: &str| format!("paks[{i}].{field}");
    let bad =
        |field: &str, why: String| ApiError::invalid(&at(field), format!("PAK {} ('{}'): {why}", i + 1, p.pak.trim()));
    let pak = pak_number(&p.pak).map_err(|why| bad("pak", why))?;
    let order_number = validate::text("order_number", &p.order_number, validate::MAX_NAME)
        .map_err(|e| bad("order_number", format!("order_number {}", e.message)))?;
    let order_date = order_date(&p.order_date).map_err(|why| bad("order_date", why))?;
    let virtual_account_id = match &p.virtual_account {
        None => None,
        Some(name) => Some(
            pools
                .iter()
                .find(|v| v.name == name.trim())
                .ok_or_else(|| bad("virtual_account", format!("virtual account '{}' does not exist", name.trim())))?
                .id,
        ),
    };
    if p.lines.is_empty() || p.lines.len() > MAX_LINES {
        return Err(bad("lines", format!("must list between 1 and {MAX_LINES} SKUs, lists {}", p.lines.len())));
    }
    let mut lines: Vec<PakLine> = Vec::with_capacity(p.lines.len());
    for (j, l) in p.lines.iter().enumerate() {
        let field = format!("lines[{j}]");
        let line = |why: String| bad(&field, format!("line {}: {why}", j + 1));
        let sku = validate::text("sku", &l.sku, validate::MAX_NAME).map_err(|e| line(format!("sku {}", e.message)))?;
        let quantity = validate::count("quantity", l.quantity)
            .map_err(|e| line(format!("SKU '{sku}': quantity {}", e.message)))?;
        let mapping = state.catalog.legacy(&sku).ok_or_else(|| {
            line(format!(
                "SKU '{sku}' is not in the catalogue's legacy mapping (its [[legacy]] table): it cannot be converted"
            ))
        })?;
        if lines.iter().any(|seen| seen.sku == sku) {
            return Err(line(format!("SKU '{sku}' is listed twice")));
        }
        lines.push(PakLine { sku, tag: mapping.tag.clone(), units: mapping.quantity, quantity, converted: 0 });
    }
    lines.sort_by(|a, b| a.sku.cmp(&b.sku));
    Ok(NewPak { pak, order_number, order_date, virtual_account_id, partial_fulfillment: p.partial_fulfillment, lines })
}

/// A PAK number: safe in a URL path and a file, as the ordering system's are.
fn pak_number(text: &str) -> Result<String, String> {
    let v = text.trim();
    let fine = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if v.is_empty() || v.len() > validate::MAX_NAME || !v.chars().all(fine) || v.starts_with('.') {
        return Err(format!(
            "pak '{v}' must be 1 to {} letters, digits, '-', '_' or '.' (not first)",
            validate::MAX_NAME
        ));
    }
    Ok(v.to_string())
}

/// An order date, `YYYY-MM-DD`.
fn order_date(text: &str) -> Result<String, String> {
    let v = text.trim();
    if v.len() != 10 || Timestamp::parse(v).is_none() {
        return Err(format!("order_date '{v}' is not a date YYYY-MM-DD"));
    }
    Ok(v.to_string())
}

// ---- handlers ------------------------------------------------------------------------------

/// The smart account and PAK a path names.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct PakPath {
    /// The smart account's domain name.
    #[param(min_length = 1, max_length = 253, example = "example.com")]
    pub domain: String,
    /// The PAK number.
    #[param(min_length = 1, max_length = 128, example = "BC7XX73YIW1")]
    pub pak: String,
}

#[utoipa::path(
    get,
    path = "/api/v1/accounts/{domain}/paks",
    operation_id = "list_paks",
    tag = "smartlic",
    summary = "PAKs of a smart account with their status and what remains to convert per SKU",
    params(crate::openapi::AccountPath, crate::openapi::PageParams),
    responses(
        (status = 200, description = "a page of the PAKs the caller sees (a virtual account's roles: those of their pool)", body = crate::openapi::PakPage),
        (status = 404, description = "NOT_FOUND: the smart account does not exist or the caller has no role in it"),
    )
)]
pub(crate) async fn list_paks(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Value>> {
    let account = load_account(&state, &caller, &domain).await?;
    page.answer("paks", list(&state, &caller, &account).await?)
}

#[utoipa::path(
    post,
    path = "/api/v1/accounts/{domain}/paks",
    operation_id = "import_paks",
    tag = "smartlic",
    summary = "Import PAKs from the ordering system (operator): all or none",
    params(crate::openapi::AccountPath),
    request_body = PakImport,
    responses(
        (status = 201, description = "imported", body = Imported),
        (status = 400, description = "INVALID_INPUT: a PAK or one of its lines is wrong (named by position; nothing imported)"),
        (status = 403, description = "FORBIDDEN: only the operator"),
        (status = 404, description = "NOT_FOUND: the smart account does not exist"),
        (status = 409, description = "CONFLICT: a PAK was imported already (named; nothing imported)"),
    )
)]
pub(crate) async fn import_paks(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    Body(b): Body<PakImport>,
) -> ApiResult<Response> {
    caller.require_operator("import PAKs")?;
    in_the_cloud(&state)?;
    let account = load_account(&state, &caller, &domain).await?;
    let new = check_import(&state, &account, &b).await?;
    let imported = state.store.import_paks(account.id, new, caller.login(), state.clock.now()).await?;
    tracing::info!(account = %account.domain, paks = imported.len(), "PAKs imported");
    let pools = Pools::of(&state, &account).await?;
    Ok(created(Imported { paks: imported.iter().map(|p| PakView::new(p, &pools)).collect() }))
}

#[utoipa::path(
    post,
    path = "/api/v1/accounts/{domain}/paks/{pak}/convert",
    operation_id = "convert_pak",
    tag = "smartlic",
    summary = "Convert all or part of a PAK into a virtual account of its smart account",
    params(PakPath),
    request_body = ConvertBody,
    responses(
        (status = 201, description = "converted: licenses deposited in the virtual account", body = Converted),
        (status = 400, description = "INVALID_INPUT: a line is wrong"),
        (status = 403, description = "FORBIDDEN: the caller may not bring licenses into that virtual account"),
        (status = 404, description = "NOT_FOUND: the smart account, the PAK or the virtual account does not exist, or the caller has no role in it"),
        (status = 409, description = "CONFLICT: more than remains of a SKU (named with what remains), nothing left, or a part of a PAK that does not allow partial fulfilment"),
    )
)]
pub(crate) async fn convert_pak(
    State(state): State<AppState>,
    caller: Caller,
    Path((domain, pak)): Path<(String, String)>,
    Body(b): Body<ConvertBody>,
) -> ApiResult<Response> {
    let account = load_account(&state, &caller, &domain).await?;
    Ok(created(convert(&state, &caller, &account, &pak, &b.virtual_account, b.lines.as_deref()).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/accounts/{domain}/pak-conversions",
    operation_id = "list_pak_conversions",
    tag = "smartlic",
    summary = "The PAK conversion history of a smart account, newest first",
    params(crate::openapi::AccountPath, crate::openapi::PageParams),
    responses(
        (status = 200, description = "a page of the conversions the caller sees", body = crate::openapi::PakConversionPage),
        (status = 404, description = "NOT_FOUND: the smart account does not exist or the caller has no role in it"),
    )
)]
pub(crate) async fn list_conversions(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Value>> {
    let account = load_account(&state, &caller, &domain).await?;
    page.answer("conversions", history(&state, &caller, &account).await?)
}
