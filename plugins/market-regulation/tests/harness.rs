//! The market-regulation adapter's exports against a scripted department (`sdk::testing`): the
//! OAuth2 token obtained once, cached for its lifetime less the margin, renewed on a 401.

use market_regulation_adapter::MarketRegulation;
use market_regulation_adapter::protocol::{ENTERPRISE, TOKEN_CACHE_KEY};
use sdk::testing::{Exchange, Harness};
use sdk::{Adapter, AdapterError};
use serde_json::{Value, json};
use std::time::Duration;

const USCC: &str = "91350100M000100Y43";

fn harness() -> Harness {
    Harness::new()
        .setting("client-id", "gateway")
        .setting("client-secret", "p@ss word")
        .setting("callback-secret", "cb")
}

fn token_grant(token: &str, expires_in: u64) -> Exchange {
    Exchange::post("/oauth/token")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header_absent("Authorization")
        .body("grant_type=client_credentials&client_id=gateway&client_secret=p%40ss+word")
        .respond_json(
            200,
            &json!({"access_token": token, "token_type": "Bearer", "expires_in": expires_in}),
        )
}

fn enterprise(token: &str) -> Exchange {
    Exchange::get(format!("/api/enterprises/{USCC}"))
        .header("Authorization", format!("Bearer {token}"))
        .respond_json(
            200,
            &json!({"uscc": USCC, "name": "福州演示餐饮有限公司", "address": "福州市鼓楼区五四路2号",
                    "legalRepresentative": "李四", "registeredCapital": 100, "status": "存续"}),
        )
}

fn lookup() -> Result<String, AdapterError> {
    MarketRegulation::lookup(ENTERPRISE.into(), json!({"credit_code": USCC}).to_string())
}

#[test]
fn the_token_is_obtained_once_and_cached() {
    let harness = harness()
        .expect(token_grant("t-1", 3600))
        .expect(enterprise("t-1"))
        // The second lookup reuses the cached token: no grant in between.
        .expect(enterprise("t-1"));
    let answer: Value = serde_json::from_str(&lookup().unwrap()).unwrap();
    assert_eq!(answer["name"], "福州演示餐饮有限公司");
    assert_eq!(answer["legal_representative"], "李四");
    lookup().unwrap();
    assert_eq!(
        harness.cache_value(TOKEN_CACHE_KEY).as_deref(),
        Some(&b"t-1"[..])
    );
    harness.finish();
}

#[test]
fn the_token_expires_30_seconds_before_the_department_says() {
    let harness = harness()
        .expect(token_grant("t-1", 3600))
        .expect(enterprise("t-1"))
        .expect(enterprise("t-1"))
        .expect(token_grant("t-2", 3600))
        .expect(enterprise("t-2"));
    lookup().unwrap();
    harness.advance(Duration::from_secs(3600 - 30) - Duration::from_millis(1));
    lookup().unwrap();
    harness.advance(Duration::from_millis(1));
    assert_eq!(harness.cache_value(TOKEN_CACHE_KEY), None);
    lookup().unwrap();
    harness.finish();
}

#[test]
fn a_refused_token_is_renewed_and_the_call_retried_once() {
    let harness = harness()
        .cached(TOKEN_CACHE_KEY, "stale", 60_000)
        .expect(
            Exchange::get(format!("/api/enterprises/{USCC}"))
                .header("Authorization", "Bearer stale")
                .respond_json(401, &json!({"error": "invalid_token"})),
        )
        .expect(token_grant("t-2", 3600))
        .expect(enterprise("t-2"));
    lookup().unwrap();
    assert_eq!(
        harness.cache_value(TOKEN_CACHE_KEY).as_deref(),
        Some(&b"t-2"[..])
    );
    assert!(harness.logs().iter().any(|l| l.contains("token refused")));
    harness.finish();
}

#[test]
fn a_fresh_token_refused_again_is_a_protocol_error() {
    let refused = || {
        Exchange::get(format!("/api/enterprises/{USCC}"))
            .respond_json(401, &json!({"error": "invalid_token"}))
    };
    let harness = harness()
        .expect(token_grant("t-1", 3600))
        .expect(refused())
        .expect(token_grant("t-2", 3600))
        .expect(refused());
    assert!(matches!(lookup(), Err(AdapterError::Protocol(_))));
    harness.finish();
}

#[test]
fn wrong_client_credentials_are_for_an_operator() {
    let harness = harness().expect(
        Exchange::post("/oauth/token").respond_json(401, &json!({"error": "invalid_client"})),
    );
    let error = lookup().unwrap_err();
    assert!(matches!(error, AdapterError::Internal(m) if m.contains("client-secret")));
    harness.finish();
}
