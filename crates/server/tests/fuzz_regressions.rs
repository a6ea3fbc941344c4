//! Inputs the fuzz targets (`fuzz/`, FUZZING.md) found mishandled, kept as plain tests over
//! real HTTPS.

use crate::common;

use common::Harness;

/// fuzz target `api_v1_body`: a method a path does not serve got axum's bare 405, no body.
#[tokio::test]
async fn a_method_the_path_does_not_serve_is_refused_with_a_reason() {
    let h = Harness::new().await;
    let a = h.admin("GET", "/api/v1/accounts/example.com/virtual-accounts/Default", None).await;
    assert_eq!(a.status, 405);
    assert_eq!(a.code(), "METHOD_NOT_ALLOWED");
    let message = a.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("GET is not allowed on /api/v1/accounts/example.com/virtual-accounts/Default"),
        "{message}"
    );
    let a = h.admin("DELETE", "/api/v1/clock", None).await;
    assert_eq!((a.status, a.code()), (405, "METHOD_NOT_ALLOWED"));
}
