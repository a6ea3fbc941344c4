//! What an operator configures on a device, as the device CLI sets it.
//! It is saved with the agent state in the device's state directory.

use crate::running_config::RunningConfig;
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

/// The call-home profile a device generates for licensing (seed 004: "a default call-home profile
/// named CiscoTAC-1"); it reports smart licensing data unless told otherwise.
pub const DEFAULT_PROFILE: &str = "CiscoTAC-1";

/// A call-home profile: IOS-XE `profile "NAME"` or NX-OS `destination-profile NAME`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallHomeProfile {
    pub name: String,
    /// `[no] active`; a profile is active unless deactivated.
    pub active: Option<bool>,
    /// `[no] reporting smart-licensing-data`; unset, only the default profile reports it.
    pub reporting: Option<bool>,
    /// `destination transport-method http` (the default profile's method without it).
    pub transport_http: bool,
    /// `destination address http URL` / `destination-profile NAME [index N] http URL`, in order.
    pub urls: Vec<String>,
}

impl CallHomeProfile {
    pub fn is_active(&self) -> bool {
        self.active != Some(false)
    }

    /// `Transport Method:` of `show call-home profile`; smartlic has no e-mail transport and
    /// sends licensing messages to the HTTP addresses whichever it says.
    pub fn transport_method(&self) -> &'static str {
        if self.transport_http || self.name == DEFAULT_PROFILE {
            "http"
        } else {
            "email"
        }
    }
}

/// Call home, in both dialects of A-10 (IOS-XE `service call-home` / `call-home`, NX-OS
/// `callhome`): the transport of licensing messages when `license smart transport callhome` or
/// a call-home destination chose it. Unset switches are on, as on a device since 16.9.1.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallHome {
    /// `[no] service call-home` (IOS-XE).
    pub service: Option<bool>,
    /// `[no] enable` under `callhome` (NX-OS).
    pub enable: Option<bool>,
    pub contact_email: Option<String>,
    pub phone: Option<String>,
    pub street: Option<String>,
    /// `transport http use-vrf VRF`.
    pub vrf: Option<String>,
    /// In creation order.
    pub profiles: Vec<CallHomeProfile>,
}

impl CallHome {
    /// Whether call home runs at all (`no service call-home`, `no enable` stop it).
    pub fn is_on(&self) -> bool {
        self.service != Some(false) && self.enable != Some(false)
    }

    /// Whether `p` reports smart licensing data: as set, or by default the default profile
    /// when no other profile was told to.
    pub fn reports_licensing(&self, p: &CallHomeProfile) -> bool {
        p.reporting.unwrap_or(p.name == DEFAULT_PROFILE && !self.profiles.iter().any(|q| q.reporting == Some(true)))
    }

    /// Profiles that are active and report smart licensing data: one at most is allowed.
    fn licensing_profiles(&self) -> impl Iterator<Item = &CallHomeProfile> {
        self.profiles.iter().filter(|p| p.is_active() && self.reports_licensing(p))
    }

    /// The profile licensing messages go through.
    pub fn licensing_profile(&self) -> Option<&CallHomeProfile> {
        self.licensing_profiles().next()
    }

    pub fn profile_mut(&mut self, name: &str) -> &mut CallHomeProfile {
        match self.profiles.iter().position(|p| p.name == name) {
            Some(i) => &mut self.profiles[i],
            None => {
                self.profiles.push(CallHomeProfile { name: name.to_string(), ..CallHomeProfile::default() });
                self.profiles.last_mut().expect("just pushed")
            }
        }
    }

    /// Applies `change` to profile `name` unless it would leave two profiles active for
    /// licensing; then nothing changes and the error names the profile already in use.
    pub fn change_profile(&mut self, name: &str, change: impl FnOnce(&mut CallHomeProfile)) -> Result<(), String> {
        let mut next = self.clone();
        change(next.profile_mut(name));
        let using: Vec<&String> = next.licensing_profiles().map(|p| &p.name).collect();
        if let (true, Some(other)) = (using.len() > 1, using.iter().find(|n| **n != name)) {
            return Err(format!(
                "% Profile \"{other}\" is already active for Smart Licensing: only one profile may be. \
                 Under profile \"{other}\", enter \"no active\" or \"no reporting smart-licensing-data\" first."
            ));
        }
        *self = next;
        Ok(())
    }

    /// Where licensing messages go through call home, if anywhere.
    pub fn destination(&self) -> Option<&str> {
        self.licensing_profile().filter(|_| self.is_on())?.urls.first().map(String::as_str)
    }
}

/// The reason a destination with an `http://` URL fails when the device connects: seed 001's
/// error for it ("Failed to parse SCH server response data") and seed 003's cause ("HTTP is no
/// longer supported to reach backend of Cisco; HTTPS is only supported").
pub const HTTP_NOT_SUPPORTED: &str = "Failed to parse SCH server response data: HTTP is no longer supported to reach the backend; HTTPS is only supported. Change the destination to an https:// URL";

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
    #[serde(default)]
    pub call_home: CallHome,
    /// The configuration as entered, for `show running-config`.
    #[serde(default)]
    pub running: RunningConfig,
}

impl DeviceConfig {
    /// The PEM bundle of every imported trust point: what the device trusts for TLS and for
    /// the manager's signed answers.
    pub fn trusted_pem(&self) -> String {
        self.trustpoints.values().filter_map(|t| t.certificate.as_deref()).collect::<Vec<_>>().join("\n")
    }

    /// Where licensing messages go: none when no destination is configured, the transport is
    /// off, or call home (when it is the transport) is stopped or has no profile for licensing.
    pub fn destination(&self) -> Option<&str> {
        match self.transport.kind {
            TransportKind::Off => None,
            TransportKind::Callhome => self.call_home.destination(),
            TransportKind::Smart | TransportKind::Satellite => self.transport.url.as_deref(),
        }
    }

    /// The proxy in use, if configured and enabled.
    pub fn active_proxy(&self) -> Option<&ProxyConfig> {
        self.transport.proxy.as_ref().filter(|_| self.transport.proxy_enabled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_url(c: &mut CallHome, name: &str, url: &str) {
        c.change_profile(name, |p| p.urls.push(url.into())).unwrap();
    }

    #[test]
    fn one_active_reporting_profile_carries_licensing() {
        let mut c = CallHome::default();
        with_url(&mut c, DEFAULT_PROFILE, "https://a");
        with_url(&mut c, "Lab", "https://b");
        // The default profile reports by default; a user profile does not.
        assert_eq!(c.destination(), Some("https://a"));
        // Told to report, Lab takes over: the default profile's default yields...
        assert!(c.change_profile("Lab", |p| p.reporting = Some(true)).is_ok());
        assert_eq!(c.destination(), Some("https://b"), "an explicit reporting profile wins over the default");
        // ... and the default one cannot be told to report as well while both are active.
        let before = c.clone();
        let refused = c.change_profile(DEFAULT_PROFILE, |p| p.reporting = Some(true)).unwrap_err();
        assert!(refused.contains("\"Lab\" is already active for Smart Licensing"), "{refused}");
        assert_eq!(c, before, "a refused change changes nothing");
        // Each switch takes licensing away from Lab.
        for stop in [
            |c: &mut CallHome| c.service = Some(false),
            |c: &mut CallHome| c.enable = Some(false),
            |c: &mut CallHome| c.profile_mut("Lab").active = Some(false),
            |c: &mut CallHome| c.profile_mut("Lab").reporting = Some(false),
        ] {
            let mut stopped = c.clone();
            stop(&mut stopped);
            assert_ne!(stopped.destination(), Some("https://b"));
        }
        let mut config = DeviceConfig { call_home: c, ..DeviceConfig::default() };
        config.transport.kind = TransportKind::Callhome;
        assert_eq!(config.destination(), Some("https://b"));
        config.transport.kind = TransportKind::Off;
        assert_eq!(config.destination(), None);
    }
}
