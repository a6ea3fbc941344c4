//! The orchestrator's records (F-1, F-3, F-4) and the checks every input passes before anything
//! is stored: a bad value is refused with a message naming the field, and changes nothing.

use serde::{Deserialize, Serialize};

/// What an input was refused for: the field and why, said to the caller as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct Invalid {
    pub field: &'static str,
    pub why: String,
}

pub fn invalid(field: &'static str, why: impl Into<String>) -> Invalid {
    Invalid { field, why: why.into() }
}

/// A name of an account, customer, cluster, node or virtual account: 1 to 100 printable
/// characters, trimmed.
pub fn name(field: &'static str, text: &str) -> Result<String, Invalid> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 100 {
        return Err(invalid(field, "must be 1 to 100 characters"));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(text.to_string())
}

/// An `http(s)://host[:port][/path]` URL without query or fragment, as a base (no trailing slash).
pub fn base_url(field: &'static str, text: &str, https_only: bool) -> Result<String, Invalid> {
    let url = reqwest::Url::parse(text.trim()).map_err(|e| invalid(field, format!("{text:?} is not a URL: {e}")))?;
    let schemes: &[&str] = if https_only { &["https"] } else { &["https", "http"] };
    if !schemes.contains(&url.scheme()) || url.host_str().is_none() {
        return Err(invalid(field, format!("{text:?} must be a {} URL with a host", schemes.join(" or "))));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(field, format!("{text:?} must have no query or fragment")));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// Where a manager account lives: the cloud (a smart account, by domain) or a satellite (a local
/// account, by name); each has its own token endpoint and API base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Cloud,
    Satellite,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Cloud => "cloud",
            AccountKind::Satellite => "satellite",
        }
    }

    pub fn parse(text: &str) -> Result<AccountKind, Invalid> {
        match text {
            "cloud" => Ok(AccountKind::Cloud),
            "satellite" => Ok(AccountKind::Satellite),
            other => Err(invalid("kind", format!("{other:?} is not cloud or satellite"))),
        }
    }
}

/// How nodes (and the orchestrator, for the account's own) reach the manager (seed 002, "Set
/// Transport Mode"): set per account, customer or cluster; the most specific one set wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Transport {
    /// Straight to the account's manager.
    Direct,
    /// Through the HTTP(S) proxy `host`:`port`.
    Proxy { host: String, port: u16 },
    /// To a satellite's device URL (the seed's "Registration URL").
    Satellite { url: String },
}

impl Transport {
    /// Checks the values a caller sent.
    pub fn checked(self) -> Result<Transport, Invalid> {
        match self {
            Transport::Direct => Ok(Transport::Direct),
            Transport::Proxy { host, port } => {
                let host = host.trim().to_string();
                let ok = !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
                if !ok {
                    return Err(invalid("transport.host", format!("{host:?} is not a host name or IP address")));
                }
                if port == 0 {
                    return Err(invalid("transport.port", "must be 1 to 65535"));
                }
                Ok(Transport::Proxy { host, port })
            }
            Transport::Satellite { url } => Ok(Transport::Satellite { url: base_url("transport.url", &url, true)? }),
        }
    }

    /// The most specific of cluster, customer and account settings; direct when none is set.
    pub fn resolve(
        cluster: Option<&Transport>,
        customer: Option<&Transport>,
        account: Option<&Transport>,
    ) -> Transport {
        cluster.or(customer).or(account).cloned().unwrap_or(Transport::Direct)
    }
}

/// The seed's applications (each a cluster of nodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Application {
    /// Unified CM: call control.
    CallControl,
    /// Unity Connection: voicemail.
    Voicemail,
    /// Emergency Responder.
    EmergencyResponder,
    /// Expressway-C: edge, inside.
    ExpresswayC,
    /// Expressway-E: edge, outside.
    ExpresswayE,
}

impl Application {
    pub const ALL: [Application; 5] = [
        Application::CallControl,
        Application::Voicemail,
        Application::EmergencyResponder,
        Application::ExpresswayC,
        Application::ExpresswayE,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Application::CallControl => "call-control",
            Application::Voicemail => "voicemail",
            Application::EmergencyResponder => "emergency-responder",
            Application::ExpresswayC => "expressway-c",
            Application::ExpresswayE => "expressway-e",
        }
    }

    /// The seed's "Type" column.
    pub fn display(self) -> &'static str {
        match self {
            Application::CallControl => "Unified CM",
            Application::Voicemail => "Unity Connection",
            Application::EmergencyResponder => "CER",
            Application::ExpresswayC => "Expressway-C",
            Application::ExpresswayE => "Expressway-E",
        }
    }

    pub fn parse(text: &str) -> Result<Application, Invalid> {
        Application::ALL.into_iter().find(|a| a.as_str() == text).ok_or_else(|| {
            let known: Vec<_> = Application::ALL.iter().map(|a| a.as_str()).collect();
            invalid("application", format!("{text:?} is not one of {}", known.join(", ")))
        })
    }
}

/// A virtual account's license mode (seed 002, "Edit Virtual Account"): the orchestrator's own
/// setting, required before a cluster is assigned to it.
pub fn license_mode(text: &str) -> Result<String, Invalid> {
    match text {
        "hcs" | "enterprise" => Ok(text.to_string()),
        other => Err(invalid("license_mode", format!("{other:?} is not hcs or enterprise"))),
    }
}

/// A manager account, without its secret (which is never returned).
#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub id: i64,
    pub name: String,
    pub kind: AccountKind,
    pub base_url: String,
    #[serde(skip)]
    pub ca_pem: String,
    pub client_id: String,
    pub transport: Option<Transport>,
    pub operational_va: Option<String>,
    pub last_sync: Option<String>,
    #[serde(skip)]
    pub last_sync_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VirtualAccount {
    pub name: String,
    pub is_default: bool,
    pub license_mode: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct License {
    pub virtual_account: String,
    pub license: String,
    pub quantity: i64,
    pub in_use: i64,
    pub available: i64,
    pub status: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Customer {
    pub id: i64,
    pub name: String,
    pub account: String,
    pub transport: Option<Transport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub id: i64,
    pub name: String,
    pub api_url: String,
    pub state: String,
    pub virtual_account: Option<String>,
    pub udi_pid: Option<String>,
    pub udi_sn: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    pub id: i64,
    pub name: String,
    pub customer: String,
    pub application: Application,
    pub transport: Option<Transport>,
    /// The account and virtual account it is assigned to.
    pub account: Option<String>,
    pub virtual_account: Option<String>,
    pub assign_mode: String,
}

/// A job's status, in the seed's words.
pub mod status {
    pub const QUEUED: &str = "Queued";
    pub const IN_PROGRESS: &str = "In Progress";
    pub const COMPLETED: &str = "Completed";
    pub const FAILED: &str = "Failed";
    pub const PARTIAL: &str = "Partially completed";
}

/// One node's outcome in a job.
#[derive(Debug, Clone, Serialize)]
pub struct NodeResult {
    pub node: String,
    pub ok: bool,
    pub code: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub status: String,
    pub entity: String,
    pub details: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub recommended_action: Option<String>,
    pub created: String,
    pub started: Option<String>,
    pub completed: Option<String>,
    pub nodes: Vec<NodeResult>,
    #[serde(skip)]
    pub request: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_checked_with_their_field_named() {
        assert_eq!(name("name", "  acme ").unwrap(), "acme");
        assert_eq!(name("name", "").unwrap_err().field, "name");
        assert!(name("name", "a\nb").is_err());
        assert_eq!(base_url("url", "https://h:1/x/", true).unwrap(), "https://h:1/x");
        assert!(base_url("url", "http://h", true).is_err());
        assert!(base_url("url", "http://h", false).is_ok());
        assert!(base_url("url", "https://h/?q", true).is_err());
        assert!(Transport::Proxy { host: "bad host".into(), port: 1 }.checked().is_err());
        assert!(Transport::Proxy { host: "p.example".into(), port: 0 }.checked().is_err());
        assert_eq!(Application::parse("voicemail").unwrap(), Application::Voicemail);
        assert!(Application::parse("fax").unwrap_err().why.contains("call-control"));
    }

    #[test]
    fn the_most_specific_transport_wins() {
        let proxy = Transport::Proxy { host: "p".into(), port: 3128 };
        let sat = Transport::Satellite { url: "https://sat".into() };
        assert_eq!(Transport::resolve(None, None, None), Transport::Direct);
        assert_eq!(Transport::resolve(None, None, Some(&proxy)), proxy);
        assert_eq!(Transport::resolve(None, Some(&sat), Some(&proxy)), sat);
        assert_eq!(Transport::resolve(Some(&Transport::Direct), Some(&sat), Some(&proxy)), Transport::Direct);
    }
}
