//! The client of a manager's original REST API (public facts §1) as the orchestrator uses it:
//! an OAuth2 client-credentials token (the cloud's `/oauth/token`, a satellite's
//! `/backend/oauth/token`), then virtual accounts and licenses (F-2), registration tokens
//! (assignment) and device removal. Every failure is the [`Cause`] whose seed code names it.

use crate::codes::Cause;
use crate::model::{Account, AccountKind, License, Transport};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{json, Value};
use smartlic_agent::client::with_causes;
use smartlic_agent::tls::{https_client_via, ProxyConfig};
use smartlic_core::Timestamp;
use std::time::Duration;

/// Where the cloud serves the original API.
const CLOUD_API: &str = "/services/api/smart-accounts-and-licensing/v1";
/// A manager call's answer must come within this.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Days a registration token the orchestrator creates stays valid.
pub const TOKEN_DAYS: i64 = 30;

/// Why a call failed: the cause (for the job's code) and what happened (for its details).
#[derive(Debug, Clone)]
pub struct Failure {
    pub cause: Cause,
    pub detail: String,
}

impl Failure {
    pub fn new(cause: Cause, detail: impl Into<String>) -> Failure {
        Failure { cause, detail: detail.into() }
    }
}

/// A logged-in session with one account's manager.
pub struct Session {
    http: reqwest::Client,
    api: String,
    account: String,
    kind: AccountKind,
    access: String,
}

impl Session {
    /// Logs in with the account's client credentials, through its proxy when its transport is one.
    pub async fn open(account: &Account, secret: &str) -> Result<Session, Failure> {
        let proxy = match &account.transport {
            Some(Transport::Proxy { host, port }) => {
                Some(ProxyConfig { host: host.clone(), port: *port, username: None, password: None })
            }
            _ => None,
        };
        let http = https_client_via(&account.ca_pem, proxy.as_ref())
            .map_err(|e| Failure::new(Cause::InvalidClientConfig, format!("the account's CA certificate: {e}")))?;
        let base = &account.base_url;
        let (api, token_request) = match account.kind {
            AccountKind::Cloud => {
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", &account.client_id),
                    ("client_secret", secret),
                ];
                (format!("{base}{CLOUD_API}"), http.post(format!("{base}/oauth/token")).form(&form))
            }
            AccountKind::Satellite => {
                let body = json!({"grant_type": "client_credentials", "client_id": account.client_id, "client_secret": secret});
                (format!("{base}/backend/api/v1"), http.post(format!("{base}/backend/oauth/token")).json(&body))
            }
        };
        let mut session =
            Session { http, api, account: account.name.clone(), kind: account.kind, access: String::new() };
        let answer = session.send(token_request, "the token request").await?;
        session.access = answer["access_token"]
            .as_str()
            .ok_or_else(|| Failure::new(Cause::ManagerResponseUnexpected, "the token answer has no access_token"))?
            .to_string();
        Ok(session)
    }

    /// Sends a request and reads its JSON answer; a refusal becomes the cause its status names.
    async fn send(&self, request: RequestBuilder, what: &str) -> Result<Value, Failure> {
        let request = if self.access.is_empty() { request } else { request.bearer_auth(&self.access) };
        let answer = request
            .timeout(TIMEOUT)
            .send()
            .await
            .map_err(|e| Failure::new(Cause::of_manager_error(&e), format!("{what}: {}", with_causes(&e))))?;
        let status = answer.status();
        let text = answer.text().await.map_err(|e| Failure::new(Cause::ManagerSendFailed, with_causes(&e)))?;
        let body: Value = serde_json::from_str(&text).map_err(|_| {
            let start: String = text.chars().take(200).collect();
            Failure::new(Cause::ManagerResponseUnparsable, format!("{what}: HTTP {status}, not JSON: {start}"))
        })?;
        if status.is_success() {
            return Ok(body);
        }
        let said = ["statusMessage", "error_description", "message"]
            .iter()
            .find_map(|k| body[*k].as_str().or(body["error"][*k].as_str()))
            .unwrap_or("")
            .to_string();
        // A 404 names what was not found: the virtual account, or the account itself.
        let cause = match status {
            StatusCode::NOT_FOUND if said.contains("Virtual Account") => Cause::UnknownVirtualAccount,
            StatusCode::NOT_FOUND if said.contains("Account") => Cause::UnknownSmartAccount,
            s => Cause::of_manager_status(s.as_u16()),
        };
        Err(Failure::new(cause, format!("{what}: HTTP {status}: {said}")))
    }

    fn account_path(&self, path: &str) -> String {
        format!("{}/accounts/{}{path}", self.api, self.account)
    }

    /// The account's virtual accounts: (name, is default).
    pub async fn virtual_accounts(&self) -> Result<Vec<(String, bool)>, Failure> {
        let url = match self.kind {
            AccountKind::Cloud => self.account_path("/CUSTOMER/virtual-accounts"),
            AccountKind::Satellite => self.account_path("/virtual-accounts"),
        };
        let body = self.send(self.http.get(url), "listing virtual accounts").await?;
        let list = body["virtualAccounts"]
            .as_array()
            .ok_or_else(|| Failure::new(Cause::ManagerResponseUnexpected, "no virtualAccounts in the answer"))?;
        list.iter()
            .map(|v| {
                let name = v["name"].as_str().ok_or_else(|| {
                    Failure::new(Cause::ManagerResponseUnexpected, "a virtual account without a name")
                })?;
                Ok((name.to_string(), v["isDefault"] == "true" || v["isDefault"] == true))
            })
            .collect()
    }

    /// Every license line of the account, page by page; each with its JSON as the manager sent it.
    pub async fn licenses(&self) -> Result<Vec<(License, String)>, Failure> {
        let mut out = Vec::new();
        loop {
            let body = json!({"limit": 1000, "offset": out.len()});
            let answer =
                self.send(self.http.post(self.account_path("/licenses")).json(&body), "listing licenses").await?;
            let page = answer["licenses"]
                .as_array()
                .ok_or_else(|| Failure::new(Cause::ManagerResponseUnexpected, "no licenses in the answer"))?;
            for l in page {
                let field = |k: &str| l[k].as_str().map(str::to_string);
                let (Some(va), Some(license)) = (field("virtualAccount"), field("license")) else {
                    return Err(Failure::new(Cause::ManagerResponseUnexpected, "a license without its name or pool"));
                };
                let number = |k: &str| l[k].as_i64().unwrap_or(0);
                let row = License {
                    virtual_account: va,
                    license,
                    quantity: number("quantity"),
                    in_use: number("inUse"),
                    available: number("available"),
                    status: field("status").unwrap_or_default(),
                };
                out.push((row, l.to_string()));
            }
            let total = answer["totalRecords"].as_u64().unwrap_or(0) as usize;
            if page.is_empty() || out.len() >= total {
                return Ok(out);
            }
        }
    }

    /// A new registration token of `va` and when it expires.
    pub async fn create_token(&self, va: &str, now: Timestamp) -> Result<(String, Timestamp), Failure> {
        let url = self.account_path(&format!("/virtual-accounts/{}/tokens", segment(va)));
        let body = json!({"description": "smartlic fleet orchestrator", "expiresAfterDays": TOKEN_DAYS});
        let answer =
            self.send(self.http.post(url).json(&body), "creating a registration token").await.map_err(|f| {
                // The manager answered, and refused: the seed's "unable to generate ... product token".
                match f.cause {
                    Cause::ManagerRejected | Cause::ManagerInternalError | Cause::NoAccessToAccount => {
                        Failure::new(Cause::TokenRefused, f.detail)
                    }
                    _ => f,
                }
            })?;
        let token = answer["tokenInfo"]["token"]
            .as_str()
            .ok_or_else(|| Failure::new(Cause::ManagerResponseUnexpected, "the token answer has no tokenInfo.token"))?;
        let expires = answer["tokenInfo"]["expirationDate"]
            .as_str()
            .and_then(Timestamp::parse)
            .unwrap_or(now.plus_days(TOKEN_DAYS));
        Ok((token.to_string(), expires))
    }

    /// Removes devices (by UDI) from `va` on the cloud: what unassignment does for nodes that
    /// could not tell the manager themselves.
    pub async fn remove_devices(&self, va: &str, udis: &[(String, String)]) -> Result<(), Failure> {
        if self.kind == AccountKind::Satellite {
            return Err(Failure::new(Cause::ManagerRejected, "a satellite's API has no device removal"));
        }
        let base = self.api.trim_end_matches("/v1");
        let url = format!("{base}/v2/accounts/{}/virtual-accounts/{}/devices/remove", self.account, segment(va));
        let items: Vec<Value> =
            udis.iter().map(|(pid, sn)| json!({"sudi": {"udiPid": pid, "udiSerialNumber": sn}})).collect();
        let body = json!({"productInstancesRemoveRequests": items});
        self.send(self.http.post(url).json(&body), "removing devices").await.map(drop)
    }
}

/// A path segment with the characters a name may hold percent-encoded.
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}
