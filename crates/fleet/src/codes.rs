//! The job error codes of seed 002 ("Troubleshooting Smart Licensing": the HCM-F jobs' `Job Status
//! Info`), verbatim with their messages and recommendations, and the causes the orchestrator meets
//! mapped to the code whose message names them (SPEC F-4).
//!
//! The table is typed once, here, copied from the seed text by machine; the seed's spelling
//! ("occured", "Hanlder", "Cluste") is kept because operators search for these strings. A test
//! reads the seed itself (when `../shared/seeds` is present) and checks every code appears once
//! with the same words.
//!
//! The product REST API's own errors (`INVALID_PARAMETER`, `METHOD_NOT_ALLOWED` ... of the seed's
//! "Smart Licensing Error Code and Message Mapping") are the node's answers, served by the agent
//! (`crates/agent/src/daemon/api.rs`); [`Cause`] turns those answers into the job codes here.

use serde::Serialize;
use smartlic_agent::daemon::api;

/// One row of the seed's tables: `Error Code`, `Error Message`, `Recommendation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// `CSSM1011`, `SLMCT1001` ...
    pub code: &'static str,
    pub message: &'static str,
    /// Empty where the seed leaves it empty (`CAA1049`).
    pub recommendation: &'static str,
}

/// The seed's table a code belongs to, named by its code prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Family {
    /// "CSSM API Errors": the manager's REST API as the orchestrator calls it.
    Cssm,
    /// "Cisco Application Adaptor (CAA) Errors": the orchestrator driving an application's nodes.
    Caa,
    /// "Smart Licensing Cluster Operation Errors".
    Slmct,
    /// "Smart Licensing General Errors".
    Slm,
    /// "UC Applications API Errors".
    Ucapi,
}

impl Entry {
    pub fn family(&self) -> Family {
        // SLMCT before SLM: the longer prefix first.
        let prefixes = [
            ("CSSM", Family::Cssm),
            ("CAA", Family::Caa),
            ("SLMCT", Family::Slmct),
            ("SLM", Family::Slm),
            ("UCAPI", Family::Ucapi),
        ];
        prefixes
            .into_iter()
            .find(|(prefix, _)| self.code.strip_prefix(prefix).is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
            .map(|(_, family)| family)
            .expect("every code of TABLE has a known prefix (tested)")
    }
}

/// The entry of `code` (`"CSSM1011"`), exactly as the seed spells it; `None` for any other string.
pub fn code(code: &str) -> Option<&'static Entry> {
    TABLE.iter().find(|e| e.code == code)
}

const fn e(code: &'static str, message: &'static str, recommendation: &'static str) -> Entry {
    Entry { code, message, recommendation }
}

/// Every code of the seed's tables, in the seed's order.
pub static TABLE: &[Entry] = &[
    e("CSSM1001", "CSSM API encountered an Unknown Error", "Check HLM Logs (Detailed) for more details"),
    e("CSSM1002", "Unsupported HTTP Method", "Check HLM Logs (Detailed) for more details"),
    e("CSSM1003", "CSSM API encountered an Internal Error", "Check HLM Logs (Detailed) for more details"),
    e("CSSM1004", "CSSM API is unable to send request", "Check HLM Logs (Detailed) for more details"),
    e("CSSM1005", "CSSM Server refused connection", "If Proxy is configured, verify network connectivity between HCM-F and Proxy Server"),
    e("CSSM1006", "CSSM API Unknown Host Error", "If Proxy is configured, verify Proxy hostname is correct and DNS resolution of CSSM/Proxy/Authentication GW(Transport Mode Setting)"),
    e("CSSM1007", "CSSM API Socket Timeout Error", "If Proxy is configured, verify network connectivity between HCM-F and Proxy Server"),
    e("CSSM1008", "CSSM API No Route To Host Error", "If Proxy is configured, verify network connectivity between HCM-F and Proxy Server"),
    e("CSSM1009", "CSSM client creation failed due to invalid Transport Mode", "Check HLM Logs (Detailed) for more details"),
    e("CSSM1010", "CSSM client creation failed due to Unknown Error", "Check HLM Logs (Detailed) for more details"),
    e("CSSM1011", "CSSM API Authentication Failed Error", "Reconfigure client ID and Secret, and perform Smart Account Sync"),
    e("CSSM1012", "CSSM client unable to parse the response", "Check HLM Logs (Detailed) for more details"),
    e("CSSM1013", "CSSM client unable to map JSON response", "Check HLM Logs (Detailed) for more details"),
    e("CSSM1014", "CSSM client unable to read response due to IO error", "Check HLM Logs (Detailed) for more details"),
    e("CSSM1015", "Client credentials may not have access to Smart Account or Domain Name is incorrect", "Check if the Client Id and Secret have access to Smart Account and the Domain name is Correct"),
    e("CSSM1016", "CSSM client unable to process response", "Check HLM Logs (Detailed) for more details"),
    e("CSSM1017", "CSSM client unable to process JSON response", "Check HLM Logs (Detailed) for more details"),
    e("CSSM1018", "CSSM client config validation failed", "Check HLM Logs (Detailed) for more details"),
    e("CSSM1019", "Given Smart Account ID does not exist", "Check HLM Logs (Detailed) for more details"),
    e("CSSM1020", "CSSM server responded with errors", "Check HLM Logs (Detailed) for more details"),
    e("CAA1001", "Service encountered an unknown error", "Verify App specific adapter Service is running Scan CAA logs for errors and restart service if necessary."),
    e("CAA1002", "Service encountered an SDR error", "Verify Cisco CDM Database is running Scan App specific adapter logs for errors."),
    e("CAA1003", "CAA is unable to find application instance in SDR", "Verify Application is configured Scan CAA logs for errors."),
    e("CAA1004", "No admin credentials configured for application", "Verify admin credentials are configured."),
    e("CAA1005", "CAA does not support this equipment type", "Scan CAA logs for errors."),
    e("CAA1006", "CAA is unable to read the application name from SDR", "Verify Cisco CDM Database is running Scan CAA logs for errors."),
    e("CAA1007", "No service provider address configured for application", "Verify service provider address is configured for the application."),
    e("CAA1008", "No platform credentials configured for the application", "Verify if platform credentials are configured."),
    e("CAA1009", "No Cluster version configured for the application", "Verify if cluster version is configured."),
    e("CAA1010", "No Request Hanlder Mapping found in json", "Verify if request handler exist for message type app type and cluster version."),
    e("CAA1011", "Error occurred in SSH connection", "Check if app details platform credentials are correct and session timeout is sufficient."),
    e("CAA1012", "Invalid Response type provided", "Check response type."),
    e("CAA1014", "Unable to generate CSR for the given certificate type Provide correct certificate type", "Check logs for more details."),
    e("CAA1015", "Certificate import failed due to CSR public key and Certificate public key doesn't match", "Verify whether the certificate and CSR has the same algorithm and key."),
    e("CAA1016", "Certificate import failed due to CSR SAN and Certificate SAN doesn't match", "Verify CSR SAN and Certificate SAN."),
    e("CAA1017", "Error occurred as CSR does not exist in the App", "Generate CSR before proceeding with this action."),
    e("CAA1018", "CA certificate is not available in the trust-store", "Upload a CA certificate in trust store."),
    e("CAA1019", "Error in CA certificate", "Upload a CA certificate in trust store."),
    e("CAA1020", "Error occurred while reading the certificate", "Provide a valid CA Certificate."),
    e("CAA1021", "Certificate is not in PEM format", "Provide a valid Certificate."),
    e("CAA1022", "Invalid certificate file provided", "Provide a valid Certificate."),
    e("CAA1023", "Error occurred as CSR does not exist in the App", "Generate CSR before proceeding with this action."),
    e("CAA1024", "Error occured as CLI Response Parser is not configured", "Configure Parser for CLI command."),
    e("CAA1025", "Invalid certificate type found", "Check if the certificate type is valid."),
    e("CAA1026", "Certificate Upload failed", "Check if the certificate is valid and UC App is provisioned with right version Refer logs for more details."),
    e("CAA1027", "Certificate operation is not successful Internal error occurred", "Check the logs for more details."),
    e("CAA1028", "Failed to get the REST API client", "Verify application is running the supported version."),
    e("CAA1029", "Error occurred during REST API call to Expressway", "Verify credentials are correct and REST service is up on Expressway."),
    e("CAA1030", "Current version of Expressway is not supported", "Use the supported versions of Expressway."),
    e("CAA1031", "Error occurred as invalid certificate was", "Uploaded to Expressway. Verify the CA certificate is available in the trust and uploaded CA signed certificate is valid."),
    e("CAA1032", "Error occurred as CSR already exist in Expressway", "Delete the existing CSR."),
    e("CAA1033", "Error occurred in CSR generation in Expressway as invalid data was passed fo CSR", "Verify the data provided to generate CSR."),
    e("CAA1034", "No Response Hanlder Mapping found in json", "Verify if response handler exist for message type app type and cluster version."),
    e("CAA1035", "Invalid admin credentials", "Verify the user name and password."),
    e("CAA1036", "CAA encountered an unknown error from the application", "Verify the following entities - Cisco AXL Web Service (Cisco Unified CM) is active Publisher Admin/Platform credentials and Network address HCMF) are correct."),
    e("CAA1037", "CAA encountered error while parsing xml", "Make sure the UCApps are returning proper responses."),
    e("CAA1038", "CAA is unable to determine the application Version", "Verify Cisco AXL Web Service Cisco Unified CM) is running on application. Verify application admin credentials and network address."),
    e("CAA1039", "API executed by non admin user", "Verify the user name and password for admin credentials."),
    e("CAA1040", "Invalid Proxy details", "Verify the Proxy Hostname and Proxy port configured in Transport Mode Setting."),
    e("CAA1041", "Edit Transport Settings operation is not allowed since product is in Registered state", "Sync Smart Account with CSSM and assign cluster to Virtual Account."),
    e("CAA1042", "Product may already deregistered", "Sync Smart Account with with CSSM."),
    e("CAA1043", "Internal Error occurred while communicating with Unity Connection", "Verify the Cisco Smart License Manager and Tomcat service is running in Unity Connection."),
    e("CAA1044", "Unsupported message received by CAA service", "Scan CAA logs for errors."),
    e("CAA1045", "CAA does not support the application version", "Verify if correct cluster version is configured in HCMF."),
    e("CAA1046", "CAA cannot connect to application", "Verify Cisco AXL Web Service is running on Cisco Unified CM application Publisher's admin/platform credentials and network address are correct and network connectivity from HCM-F is established."),
    e("CAA1048", "Product Registration Token is either invalid or has been expired", "Perform Smart Account Sync with CSSM."),
    e("CAA1049", "Product is in subscriber Node", ""),
    e("CAA1050", "Exception occurred while performing product operation", "Scan CAA logs for errors."),
    e("CAA1051", "CAA is unable to add community string on application", "Verify application admin credentials and network address are correct. Verify community string does not already exist."),
    e("CAA1052", "CAA is unable to update community string on application", "Verify application admin credentials and network address. Verify community string is present."),
    e("CAA1053", "CAA is unable to delete community string on application", "Verify application admin credentials and network address. Verify community string exists."),
    e("CAA1054", "CAA is unable to add SNMP V3 user on application", "Verify application admin credentials and network address. Verify SNMP V3 user does not already exist."),
    e("CAA1055", "CAA is unable to update SNMP V3 user on application", "Verify application admin credentials and network address. Verify SNMP V3 user exists."),
    e("CAA1056", "CAA is unable to delete SNMP V3 user on application", "Verify application admin credentials and network address. Verify SNMP V3 user is present."),
    e("CAA1057", "CAA is unable to restart application SNMP Master Agent", "Verify network connection between HCM-F and application. Verify application platform credentials and network address."),
    e("CAA1058", "CAA is unable to add Remote Syslog configuration on application", "Verify application admin credentials and network address."),
    e("CAA1059", "CAA is unable to update Remote Syslog configuration on application", "Verify application admin credentials and network address."),
    e("CAA1060", "CAA is unable to add Billing Application Server configuration on application", "Verify SFTP Credentials and the directory /home/smuser/ exists on billing server. Verify network connection between application and billing server."),
    e("CAA1061", "CAA is unable to update Billing Application Server configuration on application", "Verify SFTP Credentials and the directory /home/smuser/ exists on billing server. Verify network connection between application and billing server."),
    e("CAA1062", "CAA is unable to remove Billing Application Server configuration on application", "Verify application ADMIN credentials and network address. Verify BAS config exists on application."),
    e("CAA1063", "CAA cannot connect to application platform CLI", "Verify platform credentials are configured and network connectivity between HCM-F and application."),
    e("CAA1064", "CAA is unable to restart application Host Resources Agent", "Verify network connection between HCM-F and application. Verify application platform credentials and network address."),
    e("CAA1065", "Unsupported message received from CAA", "Scan CAA logs for errors."),
    e("CAA1066", "No CUOM is configured for application", "Verify CUOM is configured for the application."),
    e("CAA1067", "No service provider address is configured for CUOM", "Verify service provider address is configured for CUOM."),
    e("CAA1068", "Unable to get process node list from Cisco Unified CM", "Verify name in Cisco Unified CM System > Server) matches the hostname or IP configured in HCM-F for Service Provider or Application Space Address."),
    e("CAA1069", "No HTTP credentials configured for application", "Verify if HTTP credentials are configured."),
    e("CAA1070", "No SFTP credentials configured", "Verify if SFTP credentials are configured for billing application server."),
    e("CAA1071", "No SFTP network address configured", "Verify if SFTP network address is configured for billing application server."),
    e("CAA1072", "CAA is unable to find the specified phone device on the application", "Verify phone device exists on application."),
    e("CAA1073", "CAA is unable to find the specified user on the application", "Verify end user exists in the application."),
    e("CAA1074", "Failed to get the web-security details from the UC App", "Verify if the web-security data is available on the UC App."),
    e("CAA1075", "Error occured during RIS call", "Check if RIS service is up."),
    e("CAA1076", "Error occured during CCS call", "Check if CC service is up."),
    e("CAA1077", "Error occurred during PAWS call", "Check if PAWS service is up."),
    e("CAA1078", "Error occurred during command execution on CLI", "Verify if the command syntax is correct."),
    e("CAA1079", "Set Transport Mode failed due Invalid format of on-prem Registration url", "Please provide the valid on-prem url."),
    e("CAA1080", "No Clustering Configuration Found in Expressway", "Configure proper clustering Expressway."),
    e("CAA1081", "Registration with Smart Agent failed", "Verify the Proxy connection and the Cisco Unified CM connectivity with CSSM. Check CAA/HLM Logs for more details."),
    e("CAA1082", "DeRegistration with Smart Agent failed", "Verify the Proxy connection and the Cisco Unified CM connectivity with CSSM or the product is already unregistered with CSSM. Check CAA/HLM Logs for more details."),
    e("CAA1083", "Update transport settings failed", "Verify the Proxy connection and the Cisco Unified CM connectivity with CSSM or the product is already registered with CSSM. Check CAA/HLM Logs for more details."),
    e("CAA1084", "Error occurred in SSH connection", "Check if platform credentials are correct and session timeout is sufficient."),
    e("SLMCT1001", "Virtual Account is not valid", "Check if the given Virtual Account is correct"),
    e("SLMCT1002", "Exception occurred while License Mode change", "Check if UC application is up and its platform service is running. Check HLM Logs for more details"),
    e("SLMCT1003", "Cluster License Mode did not change successfully", "Check HLM Logs for more details"),
    e("SLMCT1004", "Cluster License Mode Change - JMS timeout occurred", "Check if Provisioning Adapter Service is up. Check Logs for more details"),
    e("SLMCT1005", "Cluster License Mode Change - JMS timeout occurred", "Check if CAA Service is up. Check Logs for more details"),
    e("SLMCT1006", "Cluster is of unsupported Version", "Provide a valid cluster"),
    e("SLMCT1007", "Cluster is already assigned", "Perform Smart Account sync with CSSM"),
    e("SLMCT1008", "Cluster doesn't have an application", "Assign an application to the Cluster"),
    e("SLMCT1011", "Cluster is already unassigned", "Perform Smart Account Sync with CSSM"),
    e("SLMCT1012", "Cluster doesn't have publisher node", "Assign a publisher node to cluster"),
    e("SLMCT1013", "Cluster application doesn't have platform credentials", "Configure platform credentials for cluster application"),
    e("SLMCT1014", "Cluster application doesn't have admin credentials", "Configure admin credentials for cluster application"),
    e("SLMCT1015", "Cluste is of unsupported Type", "Supported cluster type are Cisco Unified CM, Cisco Unity Connection and Cisco Emergency Responder"),
    e("SLMCT1016", "Reset Cluster License Mode - did not change successfully", "Check HLM Logs for more details"),
    e("SLMCT1017", "Exception occurred while Reset Cluster License Mode", "Check if UC Application is up and its platform service is running. Check HLM Logs for more details"),
    e("SLMCT1018", "Cluster License Mode Change - JMS timeout occurred", "Check if Provisioning Adapter Service is up. Check Logs for more details"),
    e("SLMCT1019", "Cluster License Mode Change - JMS timeout occurred", "Check if CAA Service is Up. Check Logs for more details"),
    e("SLM1001", "Smart Licensing Product Registration request failed due to exception", "Check HLM Logs (Detailed) for more details"),
    e("SLM1002", "Smart Licensing Product Registration failed due to JMS timeout", "Check if the CAA CUCM Service is started"),
    e("SLM1003", "Smart Licensing Get Transport Mode request failed due to exception", "Check HLM Logs (Detailed) for more details"),
    e("SLM1005", "Smart Licensing Update Transport Mode request failed due to exception", "Check if the UCapp and its services are up. Check logs for exception details"),
    e("SLM1007", "Smart Licensing Cluster Operation - Cluster does't have admin credentials", "Check if admin credentials are configured for cluster application"),
    e("SLM1008", "Smart Licensing Cluster Operation - Cluster does't have platform credentials", "Check if platform credentials are configured for cluster application"),
    e("SLM1009", "Smart Licensing Cluster Operation - Cluster don't have a publisher node", "Check if cluster has publisher node"),
    e("SLM1010", "Smart Licensing Get Product Token - Unable to generate or retrieve product token for the Virtual Account", "Check HLM Logs (Detailed) for more details"),
    e("SLM1011", "Smart Licensing Product DeRegistration failed due to JMS timeout", "Check if the CAA CUCM Service is started"),
    e("SLM1012", "Smart Licensing Change License Mode - Cluster HostName/IP is not configured", "Check if publisher network address is configured"),
    e("SLM1013", "Smart Licensing Change License Mode request failed while get/update transport mode due to exception", "Check UCapps platform service is up or Publishers IP/Hostname and platform credentials are valid"),
    e("SLM1014", "Smart Licensing Change License Mode - Virtual Account is not associated with any License Mode", "Check if Virtual Account is associated with License Mode"),
    e("SLM1015", "Smart Licensing Sync - an unknown error occured", "Check HLM Logs (Detailed) for more details"),
    e("SLM1016", "Smart Licensing Sync - unable to fetch Smart Account details from SDR", "Verify Cisco CDM Database is running. Check HLM Logs (Detailed) for more details"),
    e("SLM1018", "Smart Licensing Change Transport Mode failed due to JMS timeout", "Check if the CAA CUCM Adapter is started."),
    e("SLM1021", "Smart Licensing Product DeRegistration failed due to JMS timeout", "Check if the CAA CER Service is started"),
    e("SLM1023", "Smart Licensing Change Transport Mode failed due to JMS timeout", "Check if the CAA CER Adapter is started"),
    e("SLM1024", "Smart Licensing Change Transport Mode failed due to JMS timeout", "Check if the CAA CUCXN Adapter is started"),
    e("SLM1025", "Smart Licensing Request Failed due to Invalid Cluster Exception", "Check HLM Logs (Detailed) for more details"),
    e("UCAPI1001", "Updating Cisco Unified CM Billing Server info failed", "N/A"),
    e("UCAPI1002", "Updating Cisco Unified CM Remote Syslog info failed", "N/A"),
    e("UCAPI1003", "Updating Cisco Unified CM SNMP info failed", "N/A"),
    e("UCAPI1004", "Validation of Cisco Unified CM AXL Connection failed", "Check AXL services and Platform services are up in Cisco Unified CM"),
    e("UCAPI1005", "Accessing Cisco Unified CM AXL SOAP Port failed", "Check AXL services and Platform services are up in Cisco Unified CM"),
    e("UCAPI1006", "Initialization failed", "N/A"),
    e("UCAPI1007", "Software Error", "N/A"),
    e("UCAPI1008", "Unknown Failure", "N/A"),
    e("UCAPI1009", "Connection Timeout", "N/A"),
    e("UCAPI1010", "Registration with Smart Agent failed", "Verify the Proxy connection and the Cisco Unified CM connectivity with CSSM. Check CAA/HLM Logs for more details."),
    e("UCAPI1011", "DeRegistration with Smart Agent failed", "Verify the Proxy connection and the Cisco Unified CM connectivity with CSSM or the product is already unregistered with CSSM. Check CAA/HLM Logs for more details."),
    e("UCAPI1012", "Update transport settings failed", "Verify the Proxy connection and the Cisco Unified CM connectivity with CSSM or the product is already unregistered with CSSM. Check CAA/HLM Logs for more details."),
];

/// What went wrong in an orchestrator job, as the orchestrator observes it; [`Cause::entry`] gives
/// the seed's code for it. Each variant says why that code: the one whose message names the cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The manager refused the client id and secret (401 on the token grant): `CSSM1011` "CSSM API
    /// Authentication Failed Error", "Reconfigure client ID and Secret, and perform Smart Account Sync".
    WrongCredentials,
    /// The credentials are valid but may not act on this smart account (403): `CSSM1015` "Client
    /// credentials may not have access to Smart Account or Domain Name is incorrect".
    NoAccessToAccount,
    /// The smart account named in the request does not exist on the manager (404): `CSSM1019`
    /// "Given Smart Account ID does not exist".
    UnknownSmartAccount,
    /// The manager's port refused the TCP connection: `CSSM1005` "CSSM Server refused connection".
    ManagerRefusedConnection,
    /// The manager's host name does not resolve: `CSSM1006` "CSSM API Unknown Host Error".
    ManagerUnknownHost,
    /// The manager did not answer in time: `CSSM1007` "CSSM API Socket Timeout Error".
    ManagerTimeout,
    /// No route to the manager's address: `CSSM1008` "CSSM API No Route To Host Error".
    ManagerNoRoute,
    /// The request could not be sent for another reason (TLS handshake, untrusted certificate):
    /// `CSSM1004` "CSSM API is unable to send request".
    ManagerSendFailed,
    /// The manager answered 5xx: `CSSM1003` "CSSM API encountered an Internal Error".
    ManagerInternalError,
    /// The manager answered another 4xx with its errors: `CSSM1020` "CSSM server responded with errors".
    ManagerRejected,
    /// The manager's body is not JSON: `CSSM1012` "CSSM client unable to parse the response".
    ManagerResponseUnparsable,
    /// The manager's JSON lacks what the orchestrator needs: `CSSM1013` "CSSM client unable to map
    /// JSON response".
    ManagerResponseUnexpected,
    /// An account's transport mode cannot reach a manager (satellite mode without a satellite
    /// address, proxy mode without a proxy): `CSSM1009` "CSSM client creation failed due to invalid
    /// Transport Mode".
    InvalidTransportMode,
    /// The account's stored manager settings are unusable (a URL that does not parse): `CSSM1018`
    /// "CSSM client config validation failed".
    InvalidClientConfig,
    /// The virtual account is not one the manager (or the last sync) knows: `SLMCT1001` "Virtual
    /// Account is not valid".
    UnknownVirtualAccount,
    /// The virtual account has no license mode set: `SLM1014` "... Virtual Account is not associated
    /// with any License Mode".
    VirtualAccountWithoutLicenseMode,
    /// The manager refused to create a registration token: `SLM1010` "Smart Licensing Get Product
    /// Token - Unable to generate or retrieve product token for the Virtual Account".
    TokenRefused,
    /// Assigning a cluster that is already assigned: `SLMCT1007` "Cluster is already assigned".
    ClusterAlreadyAssigned,
    /// Unassigning a cluster that is not assigned: `SLMCT1011` "Cluster is already unassigned".
    ClusterAlreadyUnassigned,
    /// A cluster with no node to register: `SLMCT1012` "Cluster doesn't have publisher node" (the
    /// first node plays the seed's publisher).
    ClusterWithoutNodes,
    /// The cluster named does not exist: `SLM1025` "Smart Licensing Request Failed due to Invalid
    /// Cluster Exception".
    UnknownCluster,
    /// A node's product REST API does not answer (refused, timeout, TLS): `CAA1046` "CAA cannot
    /// connect to application".
    NodeUnreachable,
    /// A node's product REST API refused the orchestrator's credentials (401 `NOT_AUTHORIZED`):
    /// `CAA1035` "Invalid admin credentials".
    NodeCredentialsRefused,
    /// A node answered its `register` with 400 `INVALID_PARAMETER` (the token is invalid or expired
    /// on the manager): `CAA1048` "Product Registration Token is either invalid or has been expired".
    NodeTokenInvalid,
    /// A node answered its `register` with another error (the manager refused the registration,
    /// or the node could not reach it): `CAA1081` "Registration with Smart Agent failed".
    NodeRegistrationFailed,
    /// A node answered its `deregister` with 500: `CAA1082` "DeRegistration with Smart Agent failed".
    NodeDeregistrationFailed,
    /// A node answered its `deregister` with 405 (not registered): `CAA1042` "Product may already
    /// deregistered", whose recommendation (sync) is what brings the orchestrator up to date.
    NodeAlreadyDeregistered,
    /// A node refused the transport settings sent to it: `CAA1083` "Update transport settings failed".
    NodeTransportSettingsFailed,
    /// A node's answer is not the product REST API's JSON: `CAA1044` "Unsupported message received
    /// by CAA service" (the seed's parse error, `CAA1037`, names XML).
    NodeAnswerUnexpected,
    /// A sync failed for a reason none of the manager causes above names: `SLM1015` "Smart
    /// Licensing Sync - an unknown error occured".
    SyncFailed,
    /// The orchestrator's own database failed during a sync: `SLM1016` "Smart Licensing Sync -
    /// unable to fetch Smart Account details from SDR" (the SDR is HCM-F's database).
    SyncDatabaseFailed,
    /// A registration job failed for a reason none of the node causes above names: `SLM1001`
    /// "Smart Licensing Product Registration request failed due to exception".
    RegistrationFailed,
}

impl Cause {
    /// Every cause, for tests and documentation.
    pub const ALL: [Cause; 32] = [
        Cause::WrongCredentials,
        Cause::NoAccessToAccount,
        Cause::UnknownSmartAccount,
        Cause::ManagerRefusedConnection,
        Cause::ManagerUnknownHost,
        Cause::ManagerTimeout,
        Cause::ManagerNoRoute,
        Cause::ManagerSendFailed,
        Cause::ManagerInternalError,
        Cause::ManagerRejected,
        Cause::ManagerResponseUnparsable,
        Cause::ManagerResponseUnexpected,
        Cause::InvalidTransportMode,
        Cause::InvalidClientConfig,
        Cause::UnknownVirtualAccount,
        Cause::VirtualAccountWithoutLicenseMode,
        Cause::TokenRefused,
        Cause::ClusterAlreadyAssigned,
        Cause::ClusterAlreadyUnassigned,
        Cause::ClusterWithoutNodes,
        Cause::UnknownCluster,
        Cause::NodeUnreachable,
        Cause::NodeCredentialsRefused,
        Cause::NodeTokenInvalid,
        Cause::NodeRegistrationFailed,
        Cause::NodeDeregistrationFailed,
        Cause::NodeAlreadyDeregistered,
        Cause::NodeTransportSettingsFailed,
        Cause::NodeAnswerUnexpected,
        Cause::SyncFailed,
        Cause::SyncDatabaseFailed,
        Cause::RegistrationFailed,
    ];

    /// The seed's code for this cause.
    pub fn code(self) -> &'static str {
        match self {
            Cause::WrongCredentials => "CSSM1011",
            Cause::NoAccessToAccount => "CSSM1015",
            Cause::UnknownSmartAccount => "CSSM1019",
            Cause::ManagerRefusedConnection => "CSSM1005",
            Cause::ManagerUnknownHost => "CSSM1006",
            Cause::ManagerTimeout => "CSSM1007",
            Cause::ManagerNoRoute => "CSSM1008",
            Cause::ManagerSendFailed => "CSSM1004",
            Cause::ManagerInternalError => "CSSM1003",
            Cause::ManagerRejected => "CSSM1020",
            Cause::ManagerResponseUnparsable => "CSSM1012",
            Cause::ManagerResponseUnexpected => "CSSM1013",
            Cause::InvalidTransportMode => "CSSM1009",
            Cause::InvalidClientConfig => "CSSM1018",
            Cause::UnknownVirtualAccount => "SLMCT1001",
            Cause::VirtualAccountWithoutLicenseMode => "SLM1014",
            Cause::TokenRefused => "SLM1010",
            Cause::ClusterAlreadyAssigned => "SLMCT1007",
            Cause::ClusterAlreadyUnassigned => "SLMCT1011",
            Cause::ClusterWithoutNodes => "SLMCT1012",
            Cause::UnknownCluster => "SLM1025",
            Cause::NodeUnreachable => "CAA1046",
            Cause::NodeCredentialsRefused => "CAA1035",
            Cause::NodeTokenInvalid => "CAA1048",
            Cause::NodeRegistrationFailed => "CAA1081",
            Cause::NodeDeregistrationFailed => "CAA1082",
            Cause::NodeAlreadyDeregistered => "CAA1042",
            Cause::NodeTransportSettingsFailed => "CAA1083",
            Cause::NodeAnswerUnexpected => "CAA1044",
            Cause::SyncFailed => "SLM1015",
            Cause::SyncDatabaseFailed => "SLM1016",
            Cause::RegistrationFailed => "SLM1001",
        }
    }

    /// The seed's row for this cause: code, message and recommendation for the job.
    pub fn entry(self) -> &'static Entry {
        code(self.code()).expect("every cause names a code of TABLE (tested)")
    }
}

/// The product REST API call a node answered with an error (crates/agent/src/daemon/api.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeCall {
    TransportSettings,
    Register,
    Deregister,
    LicenseDetails,
}

impl Cause {
    /// The cause of a node's error answer: its HTTP status and the API's `code` (seed 002's
    /// "Smart Licensing Error Code and Message Mapping", as the agent serves it).
    pub fn of_node_answer(call: NodeCall, status: u16, code: &str) -> Cause {
        match (call, status, code) {
            (_, 401, _) => Cause::NodeCredentialsRefused,
            (NodeCall::Register, 400, api::INVALID_PARAMETER) => Cause::NodeTokenInvalid,
            (NodeCall::Register, _, _) => Cause::NodeRegistrationFailed,
            (NodeCall::Deregister, 405, api::METHOD_NOT_ALLOWED) => Cause::NodeAlreadyDeregistered,
            (NodeCall::Deregister, _, _) => Cause::NodeDeregistrationFailed,
            (NodeCall::TransportSettings, _, _) => Cause::NodeTransportSettingsFailed,
            (NodeCall::LicenseDetails, _, _) => Cause::NodeAnswerUnexpected,
        }
    }

    /// The cause of a manager's error answer to an API call (the token grant's 401 included),
    /// by HTTP status. A 404 depends on what was asked for, so it is the caller's to name
    /// ([`Cause::UnknownSmartAccount`], [`Cause::UnknownVirtualAccount`]); here it is a rejection.
    pub fn of_manager_status(status: u16) -> Cause {
        match status {
            401 => Cause::WrongCredentials,
            403 => Cause::NoAccessToAccount,
            500..=599 => Cause::ManagerInternalError,
            _ => Cause::ManagerRejected,
        }
    }

    /// The cause of a call to the manager that got no usable answer; the seed distinguishes
    /// refused, unknown host, timeout and no route, which the error's source chain tells apart.
    pub fn of_manager_error(error: &reqwest::Error) -> Cause {
        if error.is_builder() {
            return Cause::InvalidClientConfig;
        }
        if error.is_decode() {
            return Cause::ManagerResponseUnparsable;
        }
        if error.is_timeout() {
            return Cause::ManagerTimeout;
        }
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(e) = source {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => return Cause::ManagerRefusedConnection,
                    std::io::ErrorKind::TimedOut => return Cause::ManagerTimeout,
                    std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable => {
                        return Cause::ManagerNoRoute
                    }
                    _ => {}
                }
            }
            // hyper-util's resolver reports a failed lookup as "dns error" with no typed kind.
            if e.to_string().starts_with("dns error") {
                return Cause::ManagerUnknownHost;
            }
            source = e.source();
        }
        Cause::ManagerSendFailed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    /// The seed's code rows (`CODE<TAB>message<TAB>recommendation`), when the seed is present.
    fn seed_rows() -> Option<Vec<(String, String, String)>> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seeds");
        let file =
            std::fs::read_dir(&dir).ok()?.flatten().find(|f| f.file_name().to_string_lossy().starts_with("002_"))?;
        let text = std::fs::read_to_string(file.path()).ok()?;
        let rows = text
            .lines()
            .filter_map(|line| {
                let mut fields = line.split('\t');
                let code = fields.next()?;
                let known = ["CSSM", "CAA", "SLMCT", "SLM", "UCAPI"].iter().any(|p| {
                    code.strip_prefix(p).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                });
                let (message, recommendation) = (fields.next()?, fields.next()?);
                known.then(|| (code.to_string(), message.to_string(), recommendation.to_string()))
            })
            .collect();
        Some(rows)
    }

    #[test]
    fn table_is_the_seed_verbatim_each_code_once() {
        let Some(rows) = seed_rows() else {
            eprintln!("skipped: seed 002 not found at ../shared/seeds relative to the workspace");
            return;
        };
        assert_eq!(rows.len(), 150, "the seed's tables hold 150 codes");
        let table: Vec<_> = TABLE.iter().map(|e| (e.code.into(), e.message.into(), e.recommendation.into())).collect();
        assert_eq!(table, rows);
    }

    #[test]
    fn codes_are_unique_and_families_known() {
        let unique: BTreeSet<_> = TABLE.iter().map(|e| e.code).collect();
        assert_eq!(unique.len(), TABLE.len());
        let count = |f| TABLE.iter().filter(|e| e.family() == f).count();
        let counts = [Family::Cssm, Family::Caa, Family::Slmct, Family::Slm, Family::Ucapi].map(count);
        assert_eq!(counts, [20, 82, 17, 19, 12]);
        assert_eq!(code("SLMCT1001").unwrap().family(), Family::Slmct);
        assert_eq!(code("SLM1001").unwrap().family(), Family::Slm);
    }

    #[test]
    fn lookup_is_exact() {
        let wrong = code("CSSM1011").unwrap();
        assert_eq!(wrong.message, "CSSM API Authentication Failed Error");
        assert_eq!(wrong.recommendation, "Reconfigure client ID and Secret, and perform Smart Account Sync");
        assert_eq!(code("CAA1049").unwrap().recommendation, "");
        for missing in ["cssm1011", "CSSM1021", "CAA1013", "SLMCT", "", " CSSM1011"] {
            assert_eq!(code(missing), None, "{missing:?}");
        }
    }

    #[test]
    fn every_cause_names_a_seed_code_and_no_two_share_one() {
        let codes: BTreeSet<_> = Cause::ALL.iter().map(|c| c.entry().code).collect();
        assert_eq!(codes.len(), Cause::ALL.len());
        assert_eq!(Cause::UnknownVirtualAccount.entry().message, "Virtual Account is not valid");
        assert_eq!(Cause::SyncFailed.entry().message, "Smart Licensing Sync - an unknown error occured");
        assert_eq!(serde_json::to_value(Cause::NodeUnreachable).unwrap(), "node_unreachable");
    }

    #[test]
    fn node_answers_name_their_cause() {
        let cases = [
            (NodeCall::Register, 400, "INVALID_PARAMETER", "CAA1048"),
            (NodeCall::Register, 500, "INTERNAL_SERVER_ERROR", "CAA1081"),
            (NodeCall::Register, 405, "METHOD_NOT_ALLOWED", "CAA1081"),
            (NodeCall::Deregister, 405, "METHOD_NOT_ALLOWED", "CAA1042"),
            (NodeCall::Deregister, 500, "INTERNAL_SERVER_ERROR", "CAA1082"),
            (NodeCall::TransportSettings, 400, "INVALID_PARAMETER", "CAA1083"),
            (NodeCall::LicenseDetails, 404, "NOT_FOUND", "CAA1044"),
            (NodeCall::Deregister, 401, "NOT_AUTHORIZED", "CAA1035"),
        ];
        for (call, status, api_code, want) in cases {
            assert_eq!(Cause::of_node_answer(call, status, api_code).code(), want, "{call:?} {status} {api_code}");
        }
        let statuses = [(401, "CSSM1011"), (403, "CSSM1015"), (502, "CSSM1003"), (400, "CSSM1020"), (404, "CSSM1020")];
        for (status, want) in statuses {
            assert_eq!(Cause::of_manager_status(status).code(), want, "{status}");
        }
    }

    /// Real failed calls over loopback, classified from reqwest's errors.
    #[tokio::test]
    async fn transport_failures_name_their_cause() {
        // reqwest is built without a default TLS provider; the process picks one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client =
            reqwest::Client::builder().no_proxy().timeout(std::time::Duration::from_millis(300)).build().unwrap();
        // A port nobody listens on: refused.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let refused = client.get(format!("http://127.0.0.1:{port}/")).send().await.unwrap_err();
        assert_eq!(Cause::of_manager_error(&refused), Cause::ManagerRefusedConnection, "{refused:?}");
        // A listener that accepts and never answers: the client's timeout.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", silent.local_addr().unwrap());
        let hold = tokio::spawn(async move { silent.accept().await });
        let timeout = client.get(url).send().await.unwrap_err();
        assert_eq!(Cause::of_manager_error(&timeout), Cause::ManagerTimeout, "{timeout:?}");
        hold.abort();
        // A name that cannot resolve (RFC 6761 reserves .invalid).
        let unknown = client.get("http://manager.invalid/").send().await.unwrap_err();
        assert_eq!(Cause::of_manager_error(&unknown), Cause::ManagerUnknownHost, "{unknown:?}");
        let bad_url = client.get("http://[::1/").send().await.unwrap_err();
        assert_eq!(Cause::of_manager_error(&bad_url), Cause::InvalidClientConfig, "{bad_url:?}");
    }
}
