//! The client of a node's product REST API (`smartlic agent run`, A-15; seed 002's "Smart
//! Licensing REST APIs"): transport settings, register with a token, deregister, license
//! details. Each refusal becomes the [`Cause`] whose seed code names it.

use crate::codes::{Cause, NodeCall};
use crate::manager::Failure;
use crate::model::Transport;
use reqwest::StatusCode;
use serde_json::{json, Value};
use smartlic_agent::client::with_causes;
use std::time::Duration;

/// Where the product REST API lives on a node.
const BASE: &str = "/api/v1/smartlicensing";
/// A registration waits for the node's exchange with the manager: longer than a manager call.
const TIMEOUT: Duration = Duration::from_secs(90);

/// What a node says about its registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Details {
    /// `COMPLETED`, `NOT_REGISTERED`, `IN_PROGRESS` ... of `registration.status`.
    pub status: String,
    pub virtual_account: Option<String>,
    pub pid: Option<String>,
    pub sn: Option<String>,
}

impl Details {
    fn of(body: &Value) -> Result<Details, Failure> {
        let status = body["registration"]["status"]
            .as_str()
            .ok_or_else(|| Failure::new(Cause::NodeAnswerUnexpected, "no registration.status in the node's answer"))?;
        let text = |v: &Value| v.as_str().map(str::to_string);
        Ok(Details {
            status: status.to_string(),
            virtual_account: text(&body["registration"]["virtual_account"]),
            pid: text(&body["udi"]["pid"]),
            sn: text(&body["udi"]["sn"]),
        })
    }

    pub fn registered(&self) -> bool {
        self.status == "COMPLETED" && self.virtual_account.is_some()
    }
}

/// A call that did not succeed: the node refused it with its JSON error (HTTP status, the API's
/// code, what it said), or it failed otherwise.
enum Refusal {
    Answered(StatusCode, String, String),
    Failed(Failure),
}

impl Refusal {
    /// The failure, a refusal of `call` taking the seed's code for that answer.
    fn failure(self, call: NodeCall) -> Failure {
        match self {
            Refusal::Answered(status, code, said) => {
                Failure::new(Cause::of_node_answer(call, status.as_u16(), &code), said)
            }
            Refusal::Failed(f) => f,
        }
    }
}

pub struct NodeClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl NodeClient {
    /// A client of the API at `api_url` (its base, `http://127.0.0.1:PORT`, or with [`BASE`]).
    pub fn new(api_url: &str, token: Option<String>) -> Result<NodeClient, Failure> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| Failure::new(Cause::NodeUnreachable, with_causes(&e)))?;
        let base = api_url.trim_end_matches('/').trim_end_matches(BASE).to_string();
        Ok(NodeClient { http, base: format!("{base}{BASE}"), token })
    }

    /// Calls `op`; the node's JSON answer, or why not.
    async fn call(&self, op: &str, body: Option<Value>) -> Result<Value, Refusal> {
        let url = format!("{}/{op}", self.base);
        let mut request = match body {
            Some(b) => self.http.post(url).json(&b),
            None if op == "licensedetails" => self.http.get(url),
            None => self.http.post(url),
        };
        if let Some(t) = &self.token {
            request = request.bearer_auth(t);
        }
        let failed = |cause, detail: String| Refusal::Failed(Failure::new(cause, format!("{op}: {detail}")));
        let answer = request.send().await.map_err(|e| failed(Cause::NodeUnreachable, with_causes(&e)))?;
        let status = answer.status();
        let text = answer.text().await.map_err(|e| failed(Cause::NodeUnreachable, with_causes(&e)))?;
        let Ok(body) = serde_json::from_str::<Value>(&text) else {
            let start: String = text.chars().take(200).collect();
            return Err(failed(Cause::NodeAnswerUnexpected, format!("HTTP {status}, not JSON: {start}")));
        };
        if status.is_success() {
            return Ok(body);
        }
        let said = format!(
            "HTTP {status} {}: {}{}",
            body["code"].as_str().unwrap_or(""),
            body["message"].as_str().unwrap_or(""),
            body["reason"].as_str().map(|r| format!(" ({r})")).unwrap_or_default()
        );
        let code = body["code"].as_str().unwrap_or_default().to_string();
        Err(Refusal::Answered(status, code, format!("{op}: {said}")))
    }

    pub async fn details(&self) -> Result<Details, Failure> {
        let body = self.call("licensedetails", None).await.map_err(|r| r.failure(NodeCall::LicenseDetails))?;
        Details::of(&body)
    }

    /// What the node uses now: `features[]` of its license details as (name, else tag; in use).
    pub async fn usage(&self) -> Result<Vec<(String, i64)>, Failure> {
        let body = self.call("licensedetails", None).await.map_err(|r| r.failure(NodeCall::LicenseDetails))?;
        let features = body["features"]
            .as_array()
            .ok_or_else(|| Failure::new(Cause::NodeAnswerUnexpected, "no features in the node's answer"))?;
        Ok(features
            .iter()
            .filter_map(|f| {
                let name = f["name"].as_str().or(f["tag"].as_str())?;
                Some((name.to_string(), f["in_use"].as_i64().unwrap_or(0)))
            })
            .collect())
    }

    /// Points the node at its manager: direct (mode 0) to `manager_url`, through a proxy (2), or
    /// to a satellite (1).
    pub async fn set_transport(&self, transport: &Transport, manager_url: &str) -> Result<(), Failure> {
        let body = match transport {
            Transport::Direct => json!({"transport_mode": 0, "url": manager_url}),
            Transport::Proxy { host, port } => {
                json!({"transport_mode": 2, "url": manager_url, "proxy_ip": host, "proxy_port": port})
            }
            Transport::Satellite { url } => json!({"transport_mode": 1, "url": url}),
        };
        self.call("transportsettings", Some(body)).await.map(drop).map_err(|r| r.failure(NodeCall::TransportSettings))
    }

    /// Registers with `token` (a 400 is the seed's invalid or expired token).
    pub async fn register(&self, token: &str) -> Result<Details, Failure> {
        match self.call("register", Some(json!({"token": token, "force": false}))).await {
            Ok(body) => Details::of(&body),
            Err(r) => Err(r.failure(NodeCall::Register)),
        }
    }

    /// Deregisters (a 405, not registered, is the seed's "may already deregistered").
    pub async fn deregister(&self) -> Result<(), Failure> {
        self.call("deregister", None).await.map(drop).map_err(|r| r.failure(NodeCall::Deregister))
    }
}
