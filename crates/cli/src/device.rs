//! `smartlic device`: a minimal test device speaking the device protocol, one command per
//! exchange, its identity kept in a JSON file. It exists to try a manager by hand (tokens,
//! clock tolerance, compliance); the full agent with its state machine is `smartlic agent`.
//!
//! A refused exchange prints `error: <message> (<code>)`, exits non-zero and leaves the
//! identity file as it was.

use anyhow::Context;
use smartlic_agent::client::ManagerClient;
use smartlic_agent::identity::DeviceIdentity;
use smartlic_core::{Clock, SystemClock, Timestamp};
use smartlic_proto::cert::certificate_facts;
use smartlic_proto::wire::{AuthorizationStatus, Udi, Usage};
use smartlic_proto::KeyAlgorithm;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct DeviceArgs {
    /// The device identity file (JSON; it holds the device's private key).
    #[arg(long, global = true, default_value = "./device.json")]
    state: PathBuf,
    /// The manager's base URL.
    #[arg(long, global = true, default_value = "https://127.0.0.1:8443")]
    server: String,
    /// The manager's CA certificate, which the device trusts for TLS and for signed answers.
    #[arg(long, global = true, default_value = "./smartlic-data/ca.pem")]
    ca: PathBuf,
    /// Set the device clock (RFC 3339 or YYYY-MM-DD), e.g. to see the manager refuse a skewed clock.
    #[arg(long, global = true, value_name = "RFC3339", value_parser = parse_time)]
    time: Option<Timestamp>,
    #[command(subcommand)]
    command: DeviceCommand,
}

#[derive(clap::Subcommand)]
enum DeviceCommand {
    /// Register with a product instance registration token and save the identity.
    Register {
        /// The registration token from `smartlic admin token create`.
        #[arg(long)]
        token: String,
        /// Product ID of the UDI.
        #[arg(long)]
        pid: String,
        /// Serial number of the UDI.
        #[arg(long)]
        sn: String,
        /// The hostname the manager shows for the instance.
        #[arg(long)]
        hostname: Option<String>,
        /// Replace an instance the manager already has for this UDI, or another device's
        /// identity in the state file.
        #[arg(long)]
        force: bool,
        /// Algorithm of the device key.
        #[arg(long, default_value = "ed25519", value_parser = parse_key_algorithm)]
        key: KeyAlgorithm,
    },
    /// Report the licenses in use (the full list) and print the manager's verdict.
    ///
    /// Exit status: 0 when the verdict is AUTHORIZED, 2 when the manager answered anything else
    /// (OUT OF COMPLIANCE, NO LICENSES IN USE), 1 when the exchange failed or was refused.
    Authorize {
        /// An entitlement tag in use and how many, e.g. "ACI Essentials=2"; repeat per tag.
        #[arg(long = "use", value_name = "TAG=N", value_parser = parse_usage)]
        usage: Vec<Usage>,
    },
    /// Renew the ID certificate (with a new key).
    RenewId,
    /// Deregister from the manager and delete the identity file.
    Deregister,
    /// Print the saved identity (never the key).
    Show,
}

/// The manager answered, with another verdict than AUTHORIZED: scripts tell it from a failed
/// exchange by the exit status (2, not 1).
#[derive(Debug)]
pub struct NotAuthorized(AuthorizationStatus);

impl std::fmt::Display for NotAuthorized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the manager's verdict is {}, not AUTHORIZED", self.0.display())
    }
}

impl std::error::Error for NotAuthorized {}

fn parse_time(text: &str) -> Result<Timestamp, String> {
    Timestamp::parse(text).ok_or_else(|| "expected an RFC 3339 time or YYYY-MM-DD".to_string())
}

fn parse_key_algorithm(text: &str) -> Result<KeyAlgorithm, String> {
    KeyAlgorithm::parse(text).ok_or_else(|| "expected ed25519 or ecdsa-p256".to_string())
}

fn parse_usage(text: &str) -> Result<Usage, String> {
    let (tag, count) = text.rsplit_once('=').ok_or("expected TAG=N")?;
    let count = count.trim().parse::<i64>().ok().filter(|n| *n >= 0).ok_or("N must be a whole number, 0 or more")?;
    let tag = tag.trim();
    if tag.is_empty() {
        return Err("the tag is empty".into());
    }
    Ok(Usage { tag: tag.to_string(), count })
}

fn rfc3339(unix_secs: i64) -> String {
    Timestamp(unix_secs.saturating_mul(1000)).to_rfc3339()
}

fn connect(server: &str, ca: &Path) -> anyhow::Result<ManagerClient> {
    let ca_pem = std::fs::read_to_string(ca)
        .with_context(|| format!("cannot read the manager's CA certificate {} (see --ca)", ca.display()))?;
    Ok(ManagerClient::new(server, &ca_pem)?)
}

pub async fn run(args: DeviceArgs) -> anyhow::Result<()> {
    let DeviceArgs { state, server, ca, time, command } = args;
    let now_ms = time.unwrap_or_else(|| SystemClock.now()).millis();
    match command {
        DeviceCommand::Register { token, pid, sn, hostname, force, key } => {
            let udi = Udi { pid, sn };
            if let Ok(existing) = DeviceIdentity::load(&state) {
                if existing.udi != udi && !force {
                    anyhow::bail!(
                        "{} holds the identity of {} (instance {}); deregister it, choose another --state, or --force",
                        state.display(),
                        existing.udi,
                        existing.instance_id
                    );
                }
            }
            let client = connect(&server, &ca)?;
            let (key, answer) = client.register(&udi, hostname.as_deref(), &token, force, key, now_ms).await?;
            let identity = DeviceIdentity::from_registration(udi, hostname, key, answer);
            identity.save(&state)?;
            println!(
                "REGISTERED smart account {} virtual account {} instance {}",
                identity.smart_account, identity.virtual_account, identity.instance_id
            );
        }
        DeviceCommand::Authorize { usage } => {
            let mut identity = DeviceIdentity::load(&state)?;
            let answer = connect(&server, &ca)?.authorize(&identity, &usage, now_ms).await?;
            println!("{}", answer.status.display());
            for e in &answer.entitlements {
                println!("  {}  count={}  {}", e.tag, e.count, e.status.display());
            }
            if identity.intervals != answer.intervals {
                identity.intervals = answer.intervals;
                identity.save(&state)?;
            }
            if answer.status != AuthorizationStatus::Authorized {
                return Err(NotAuthorized(answer.status).into());
            }
        }
        DeviceCommand::RenewId => {
            let mut identity = DeviceIdentity::load(&state)?;
            let (key, answer) = connect(&server, &ca)?.renew_id(&identity, now_ms).await?;
            identity.apply_renewal(key, answer);
            identity.save(&state)?;
            println!("RENEWED certificate {} instance {}", identity.certificate_serial, identity.instance_id);
        }
        DeviceCommand::Deregister => {
            let identity = DeviceIdentity::load(&state)?;
            connect(&server, &ca)?.deregister(&identity, now_ms).await?;
            std::fs::remove_file(&state)
                .with_context(|| format!("deregistered, but cannot delete {}", state.display()))?;
            println!("DEREGISTERED instance {}", identity.instance_id);
        }
        DeviceCommand::Show => show(&DeviceIdentity::load(&state)?),
    }
    Ok(())
}

fn show(identity: &DeviceIdentity) {
    println!("UDI:               {}", identity.udi);
    println!("Hostname:          {}", identity.hostname.as_deref().unwrap_or("-"));
    println!("Instance:          {}", identity.instance_id);
    println!("Smart account:     {} ({})", identity.smart_account, identity.smart_account_domain);
    println!("Virtual account:   {}", identity.virtual_account);
    println!("Export controlled: {}", if identity.export_controlled { "yes" } else { "no" });
    println!("Key:               {}", identity.signing_key().algorithm().as_str());
    // The validity is read from the certificate itself, the authority on it.
    match certificate_facts(&identity.certificate) {
        Ok((not_before, not_after, _)) => println!(
            "ID certificate:    serial {}, valid {} to {}",
            identity.certificate_serial,
            rfc3339(not_before),
            rfc3339(not_after)
        ),
        Err(e) => println!("ID certificate:    serial {}, unreadable: {e}", identity.certificate_serial),
    }
    let i = identity.intervals;
    println!(
        "Intervals:         ID renewal {} s, authorization renewal {} s, authorization valid {} s",
        i.id_renew_secs, i.auth_renew_secs, i.auth_validity_secs
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_usage_and_time() {
        assert_eq!(parse_usage("ACI Essentials=2").unwrap(), Usage { tag: "ACI Essentials".into(), count: 2 });
        assert_eq!(parse_usage(" ACI Advantage = 0").unwrap(), Usage { tag: "ACI Advantage".into(), count: 0 });
        for bad in ["ACI", "=3", "ACI=-1", "ACI=x"] {
            assert!(parse_usage(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_time("2030-01-01T00:00:00+01:00").unwrap().millis(), 1_893_452_400_000);
        assert!(parse_time("next week").is_err());
        assert_eq!(parse_key_algorithm("ecdsa-p256").unwrap(), KeyAlgorithm::EcdsaP256);
    }
}
