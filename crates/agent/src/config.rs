//! What an operator configures on a device, as the device CLI sets it.
//! It is saved with the agent state in the device's state directory.

use crate::tls::ProxyConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How the device reaches a manager: the forms of the seeds all resolve to this.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportConfig {
    /// The manager's URL (`license smart url`, a call-home destination, a satellite URL).
    pub url: Option<String>,
    /// Which form set it, shown by `show license status` ("Transport: Smart", "Callhome", ...).
    pub kind: TransportKind,
    /// `transport http proxy server IP port N` (with `... enable` on the call-home form).
    pub proxy: Option<ProxyConfig>,
    pub proxy_enabled: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransportKind {
    /// Direct HTTPS to the manager (`license smart url`, `transport-mode smart-licensing`).
    #[default]
    Smart,
    /// Through a call-home profile (`destination address http URL`).
    Callhome,
    /// An on-prem satellite (`transport-mode satellite url URL`).
    Satellite,
    /// Transport turned off (`license smart transport off`): nothing is sent (G-5).
    Off,
}

impl TransportKind {
    pub fn display(self) -> &'static str {
        match self {
            TransportKind::Smart => "Smart",
            TransportKind::Callhome => "Callhome",
            TransportKind::Satellite => "Satellite",
            TransportKind::Off => "Off",
        }
    }
}

/// A CA certificate imported with `crypto pki authenticate`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trustpoint {
    pub enrollment_terminal: bool,
    pub revocation_check_none: bool,
    /// The authenticated CA certificate (PEM), once imported.
    pub certificate: Option<String>,
}

/// Everything the device CLI configures.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceConfig {
    pub hostname: String,
    /// `license smart privacy hostname`: the hostname is not sent to the manager.
    pub hostname_privacy: bool,
    pub transport: TransportConfig,
    pub trustpoints: BTreeMap<String, Trustpoint>,
    /// The device clock is the system clock plus this offset (`clock set`, A-16).
    pub clock_offset_ms: i64,
    /// Entitlement tags the product knows (its catalogue, A-12): tag → display name.
    pub catalog: BTreeMap<String, String>,
}

impl DeviceConfig {
    /// The PEM bundle of every imported trust point: what the device trusts for TLS and for
    /// the manager's signed answers.
    pub fn trusted_pem(&self) -> String {
        self.trustpoints.values().filter_map(|t| t.certificate.as_deref()).collect::<Vec<_>>().join("\n")
    }

    /// The proxy in use, if configured and enabled.
    pub fn active_proxy(&self) -> Option<&ProxyConfig> {
        self.transport.proxy.as_ref().filter(|_| self.transport.proxy_enabled)
    }
}
