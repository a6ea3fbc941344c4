//! Offline license reservation on the device: request, install, return and cancel, with
//! the device texts of public facts §2.6. Codes are made and checked here (`smartlic_proto::
//! reservation`); the state machine records the outcome, and a reserved device never contacts a
//! manager.
//!
//! The reservation key (Ed25519) is made with the request and kept, owner-only, in
//! `reservation-key.pem` of the state directory until the reservation is returned or cancelled:
//! the request code commits to it and the return code is signed with it.

use crate::device::{licensing_ca, Device, DeviceError, LICENSING_TRUSTPOINT};
use crate::persist::write_atomic;
use smartlic_core::agent::{Event, Registration, ReservationKind, ReservationRequest, Reserved, ReservedLicense};
use smartlic_core::Timestamp;
use smartlic_proto::cert::public_keys_of_bundle;
use smartlic_proto::reservation::{self as codes, Authorization, RequestCode, ReturnCode, VerifiedAuthorization};
use smartlic_proto::{KeyAlgorithm, SigningKey};

const KEY_FILE: &str = "reservation-key.pem";

/// Device texts (§2.6 verbatim where the sample has them).
pub mod text {
    pub const ENTER_REQUEST: &str = "Enter this request code in the Cisco Smart Software Manager portal:";
    pub const ALREADY_REGISTERED: &str = "Already registered";
    pub const INSTALL_OK: &str = "Reservation install file successful";
    pub const INSTALL_FAILED: &str = "Reservation install file failed";
    pub const MISMATCH: &str = "The Reservation Authorization Code does not match the Reservation Request Code";
    pub const RETURN_WARNING: &str = "This command will remove the license reservation authorization code and the device will transition back to the unregistered state.\nSome features may not function properly.";
    pub const CONTINUE: &str = "Do you want to continue? [yes/no]: ";
    pub const ENTER_RETURN: &str = "Enter this return code in Cisco Smart Software Manager portal:";
    pub const NOT_ENABLED: &str = "% License reservation is not enabled: configure 'license smart reservation' first";
    pub const NO_REQUEST: &str = "No reservation request is in progress";
    pub const INSTALLED: &str = "% A license reservation is already installed";
    pub const NOT_INSTALLED: &str = "% No license reservation is installed";
}

/// What a reservation command prints, or why it was refused (nothing changed then).
pub type Outcome = Result<String, String>;

fn kind_of(kind: codes::ReservationKind) -> ReservationKind {
    match kind {
        codes::ReservationKind::Specific => ReservationKind::Specific,
        codes::ReservationKind::Universal => ReservationKind::Universal,
    }
}

fn license_of(e: &codes::ReservedEntitlement) -> ReservedLicense {
    ReservedLicense {
        tag: e.tag.clone(),
        count: u32::try_from(e.count).unwrap_or(u32::MAX),
        license_type: e.license_type.clone(),
        start: e.start.map(Timestamp),
        end: e.end.map(Timestamp),
        expiry_announced: false,
    }
}

fn install_failed(why: &str) -> Outcome {
    Err(format!("{}: {why}", text::INSTALL_FAILED))
}

impl Device {
    fn reservation_key_path(&self) -> std::path::PathBuf {
        self.dir().join(KEY_FILE)
    }

    fn reservation_key(&self) -> Result<SigningKey, String> {
        let path = self.reservation_key_path();
        let pem = std::fs::read_to_string(&path).map_err(|e| {
            format!("% The reservation key {} cannot be read ({e}); no return code was made", path.display())
        })?;
        SigningKey::from_pem(&pem).map_err(|e| format!("% The reservation key {} is damaged: {e}", path.display()))
    }

    fn drop_reservation_key(&self) -> Result<(), DeviceError> {
        match std::fs::remove_file(self.reservation_key_path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(DeviceError::Save { path: self.reservation_key_path().display().to_string(), source: e })
            }
            _ => Ok(()),
        }
    }

    /// Checks `code` against the licensing CA (only the manager's CA may sign a code, not every
    /// trust point) and the request in progress.
    fn verify_for_request(&self, code: &str) -> Result<VerifiedAuthorization, String> {
        let request = self.agent.reservation.request.as_ref().ok_or(text::NO_REQUEST)?;
        let keys = licensing_ca(&self.config).and_then(|pem| public_keys_of_bundle(&pem).ok()).unwrap_or_default();
        if keys.is_empty() {
            return Err(format!(
                "no trust point is known to hold the manager's CA certificate: import it as {LICENSING_TRUSTPOINT} (crypto pki authenticate)"
            ));
        }
        let verified = Authorization::verify(code, &keys).map_err(|e| e.to_string())?;
        if verified.authorization.request_code != request.code || kind_of(verified.authorization.kind) != request.kind {
            return Err(text::MISMATCH.into());
        }
        Ok(verified)
    }

    /// `[no] license smart reservation`.
    pub async fn reservation_enable(&mut self, on: bool) -> Result<Outcome, DeviceError> {
        if !on && (self.agent.registration.reserved().is_some() || self.agent.reservation.request.is_some()) {
            return Ok(Err("% A license reservation is installed or requested: return or cancel it first".into()));
        }
        self.apply(Event::ReservationEnable(on)).await?;
        Ok(Ok(String::new()))
    }

    /// `license smart reservation request local|universal`: prints the request code.
    pub async fn reservation_request(&mut self, kind: ReservationKind) -> Result<Outcome, DeviceError> {
        if !self.agent.reservation.enabled {
            return Ok(Err(text::NOT_ENABLED.into()));
        }
        match &self.agent.registration {
            Registration::Registered(_) => return Ok(Err(text::ALREADY_REGISTERED.into())),
            Registration::Registering(_) | Registration::Failed(_) => {
                return Ok(Err("% A registration is in progress: license smart deregister cancels it".into()))
            }
            Registration::Reserved(_) => return Ok(Err(text::INSTALLED.into())),
            Registration::Unidentified | Registration::Expired { .. } => {}
        }
        if let Some(pending) = &self.agent.reservation.request {
            return Ok(if pending.kind == kind {
                Ok(format!("{}\n{}", text::ENTER_REQUEST, pending.code))
            } else {
                Err("% Another reservation request is in progress: license smart reservation cancel drops it".into())
            });
        }
        let key = SigningKey::generate(KeyAlgorithm::Ed25519).map_err(|e| DeviceError::Invalid(e.to_string()))?;
        let code_kind = match kind {
            ReservationKind::Specific => codes::ReservationKind::Specific,
            ReservationKind::Universal => codes::ReservationKind::Universal,
        };
        let code = RequestCode::new(code_kind, &self.agent.pid, &self.agent.sn, &key.public_key())
            .map_err(|e| DeviceError::Invalid(e.to_string()))?
            .to_string();
        let path = self.reservation_key_path();
        write_atomic(&path, key.to_pem().as_bytes())
            .map_err(|source| DeviceError::Save { path: path.display().to_string(), source })?;
        let at = self.now();
        self.apply(Event::ReservationRequested(ReservationRequest { kind, code: code.clone(), at })).await?;
        Ok(Ok(format!("{}\n{code}", text::ENTER_REQUEST)))
    }

    /// `license smart reservation install "CODE"` / `install file PATH`.
    pub async fn reservation_install(&mut self, code: &str) -> Result<Outcome, DeviceError> {
        if self.agent.registration.reserved().is_some() {
            return Ok(Err(text::INSTALLED.into()));
        }
        let verified = match self.verify_for_request(code) {
            Ok(v) => v,
            Err(why) => return Ok(install_failed(&why)),
        };
        let auth = &verified.authorization;
        let reserved = Reserved {
            kind: kind_of(auth.kind),
            installed_at: self.now(),
            request_code: auth.request_code.clone(),
            authorization_code: code.trim().to_string(),
            confirmation_code: verified.identity.confirmation_code.clone(),
            licenses: auth.entitlements.iter().map(license_of).collect(),
        };
        self.apply(Event::ReservationInstalled(reserved)).await?;
        Ok(Ok(format!("{}\nLast Confirmation code {}", text::INSTALL_OK, verified.identity.confirmation_code)))
    }

    /// `license smart reservation return local`: removes the installed code, prints the return code.
    pub async fn reservation_return(&mut self) -> Result<Outcome, DeviceError> {
        let Some(reserved) = self.agent.registration.reserved() else { return Ok(Err(text::NOT_INSTALLED.into())) };
        let key = match self.reservation_key() {
            Ok(k) => k,
            Err(why) => return Ok(Err(why)),
        };
        let made = codes::CodeIdentity::of(&reserved.authorization_code)
            .and_then(|id| ReturnCode::create_for(&id.digest, &reserved.request_code, true, &key));
        let return_code = match made {
            Ok(c) => c,
            Err(e) => return Ok(Err(format!("% {e}"))),
        };
        self.apply(Event::ReservationReturned { return_code: return_code.clone() }).await?;
        self.drop_reservation_key()?;
        Ok(Ok(format!("{}\n{return_code}", text::ENTER_RETURN)))
    }

    /// `license smart reservation return authorization "CODE"`: gives back a code never installed.
    pub async fn reservation_return_authorization(&mut self, code: &str) -> Result<Outcome, DeviceError> {
        let verified = match self.verify_for_request(code) {
            Ok(v) => v,
            Err(why) => return Ok(Err(format!("% {why}"))),
        };
        let key = match self.reservation_key() {
            Ok(k) => k,
            Err(why) => return Ok(Err(why)),
        };
        let return_code = match ReturnCode::create(&verified, false, &key) {
            Ok(c) => c,
            Err(e) => return Ok(Err(format!("% {e}"))),
        };
        self.apply(Event::ReservationAuthorizationReturned { return_code: return_code.clone() }).await?;
        self.drop_reservation_key()?;
        Ok(Ok(format!("{}\n{return_code}", text::ENTER_RETURN)))
    }

    /// `license smart reservation cancel`: drops the request in progress.
    pub async fn reservation_cancel(&mut self) -> Result<Outcome, DeviceError> {
        if self.agent.reservation.request.is_none() {
            return Ok(Err(format!("% {}", text::NO_REQUEST)));
        }
        self.apply(Event::ReservationCancelled).await?;
        self.drop_reservation_key()?;
        Ok(Ok(String::new()))
    }
}
