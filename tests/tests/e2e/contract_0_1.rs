//! Components built against contract 0.1.0 keep loading and serving in a host of contract 0.2.
//!
//! The fixture `tests/fixtures/tax-adapter-0.1.0.wasm` is the tax adapter as it was built before
//! contract 0.2 (see `tests/fixtures/README.md`). It is described, detected as 0.1 from its own
//! imports, serves a tax lookup and a tax registration end to end in place of today's tax
//! adapter, is never handed what 0.2 added, and is refused for a matter the catalogue gives
//! materials.

use gateway_base::config::Limits;
use gateway_base::model::Fault;
use gateway_plugins::adapters::admission;
use gateway_plugins::host::contract::{FileInfo, Material, MaterialSource, Submission};
use gateway_plugins::host::{CallError, Contract, PluginEngine};
use integration_tests::{Env, Setup, adapters_dir, workspace_root};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

fn fixture() -> Vec<u8> {
    std::fs::read(workspace_root().join("tests/fixtures/tax-adapter-0.1.0.wasm"))
        .expect("the 0.1.0 fixture is committed")
}

/// A plugins folder with today's components, the tax adapter replaced by the 0.1.0 fixture.
fn plugins_with_the_fixture(dir: &std::path::Path) -> PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for name in [
        "real_estate_adapter.wasm",
        "public_security_adapter.wasm",
        "market_regulation_adapter.wasm",
    ] {
        std::fs::copy(adapters_dir().join(name), plugins.join(name)).unwrap();
    }
    std::fs::write(plugins.join("tax_adapter.wasm"), fixture()).unwrap();
    plugins
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_1_component_is_described_and_never_handed_what_0_2_added() {
    let engine = PluginEngine::new(4, None).unwrap();
    let old = admission::describe(&engine, &fixture(), Limits::default())
        .await
        .unwrap();
    assert_eq!(old.contract(), Contract::V0_1);
    let d = old.description();
    assert_eq!(
        (d.department.as_str(), d.contract_version.as_str()),
        ("tax", "0.1.0")
    );
    let matters: Vec<&str> = d.matters.iter().map(|m| m.code.as_str()).collect();
    assert_eq!(matters, ["tax.registration", "tax.deed-tax"]);
    assert_eq!(d.lookups[0].name, "tax.clearance");
    assert_eq!(admission::contract(&old), Ok(()));

    // Today's tax adapter is the same adapter built against 0.3.
    let today = std::fs::read(adapters_dir().join("tax_adapter.wasm")).unwrap();
    let new = admission::describe(&engine, &today, Limits::default())
        .await
        .unwrap();
    assert_eq!(new.contract(), Contract::V0_3);
    assert_eq!(new.description().contract_version, "0.3.0");

    // What 0.2 added is refused with a typed error before anything is called.
    use gateway_plugins::host::contract::{Supplement, Withdrawal};
    let supplement = old
        .supplement(Supplement {
            case_id: "c".into(),
            matter: "tax.registration".into(),
            reference: "SW1".into(),
            idempotency_key: "k".into(),
            payload: "{}".into(),
            materials: Vec::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        supplement.to_string(),
        "the adapter implements contract 0.1.0, which has no supplement"
    );
    assert!(matches!(
        supplement,
        CallError::Unsupported {
            contract: Contract::V0_1,
            what: "supplement"
        }
    ));
    assert_eq!(supplement.fault(), Fault::Gateway);
    let withdraw = old
        .withdraw(Withdrawal {
            case_id: "c".into(),
            matter: "tax.registration".into(),
            reference: Some("SW1".into()),
            idempotency_key: "k".into(),
            reason: "不办了".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        withdraw.to_string(),
        "the adapter implements contract 0.1.0, which has no withdraw"
    );
    let with_materials = old
        .submit(Submission {
            case_id: "c".into(),
            matter: "tax.registration".into(),
            idempotency_key: "k".into(),
            payload: "{}".into(),
            callback_url: String::new(),
            materials: vec![Material {
                code: "articles-of-association".into(),
                name: "公司章程".into(),
                source: MaterialSource::File(FileInfo {
                    media_type: "application/pdf".into(),
                    size: 1,
                    sm3: "0".repeat(64),
                }),
            }],
        })
        .await
        .unwrap_err();
    assert_eq!(
        with_materials.to_string(),
        "the adapter implements contract 0.1.0, which has no materials"
    );

    // A 0.2 component's own `supplement` answers: the tax adapter's, which goes as far as
    // signing its request (no settings here: its own error naming the missing one).
    let answered = new
        .supplement(Supplement {
            case_id: "c".into(),
            matter: "tax.registration".into(),
            reference: "SW1".into(),
            idempotency_key: "k".into(),
            payload: "{}".into(),
            materials: Vec::new(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&answered, CallError::Adapter(gateway_plugins::host::contract::AdapterError::Internal(m)) if m.contains("`app-key`")),
        "{answered:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_1_component_serves_a_lookup_and_a_registration_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start_with(Setup {
        plugins_dir: Some(plugins_with_the_fixture(dir.path())),
        tax_secret_setting: true,
        ..Setup::default()
    })
    .await
    .unwrap();
    // The catalogue lists the 0.1 adapter's matters and lookup, with its schemas.
    let (status, form) = env.get("/api/v1/services/tax.registration/form").await;
    assert_eq!(status, 200, "{form}");

    let (status, clear) = env
        .post(
            "/api/v1/lookups/tax.clearance",
            &json!({"taxpayer_id": "91350100M000100Y43"}),
        )
        .await;
    assert_eq!(status, 200, "{clear}");
    assert_eq!(clear["result"]["cleared"], true);

    let form = json!({
        "credit_code": "91350100M000100Y43",
        "enterprise_name": "福州旧版适配器测试有限公司",
        "legal_representative": {"name": "张三", "id_number": "11010519491231002X"},
        "address": "福州市鼓楼区五四路1号",
        "business_scope": "软件开发"
    });
    let case_id = env.apply("tax.registration", &form).await;
    let view = env
        .wait_for_case(&case_id, Duration::from_secs(20), |v| {
            v["matters"][0]["state"] == "approved"
        })
        .await;
    let step = &view["matters"][0];
    assert!(
        step["reference"].as_str().unwrap().starts_with("SW"),
        "{step}"
    );
    assert_eq!(step["outputs"]["taxpayer_id"], "91350100M000100Y43");
    assert_eq!(env.departments.tax.applications(), 1);
    assert!(
        env.departments.tax.stats().rejected.is_empty(),
        "{:?}",
        env.departments.tax.stats()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_1_component_is_refused_for_a_matter_with_materials() {
    let dir = tempfile::tempdir().unwrap();
    // This catalogue gives `tax.registration` a material.
    let refused = Env::start_with(Setup {
        plugins_dir: Some(plugins_with_the_fixture(dir.path())),
        catalogue: Some(workspace_root().join("tests/catalogues/materials.toml")),
        ..Setup::default()
    })
    .await
    .err()
    .expect("a 0.1 component cannot serve a matter with materials");
    let refusal = format!("{refused:#}");
    assert!(
        refusal.contains("contract_version")
            && refusal.contains("tax.registration")
            && refusal.contains("0.2.0")
            && refusal.contains("implements 0.1.0"),
        "{refusal}"
    );
}

/// Components built against contract 0.2.0 keep loading beside 0.3 ones: the fixture
/// `tests/fixtures/tax-adapter-0.2.0.wasm` (the tax adapter before `crypto`, reading its app
/// secret as a setting) is detected as 0.2 from its imports, admitted, and serves a tax lookup
/// end to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_2_component_keeps_loading_and_serving() {
    let bytes = std::fs::read(workspace_root().join("tests/fixtures/tax-adapter-0.2.0.wasm"))
        .expect("the 0.2.0 fixture is committed");
    let engine = PluginEngine::new(4, None).unwrap();
    let old = admission::describe(&engine, &bytes, Limits::default())
        .await
        .unwrap();
    assert_eq!(old.contract(), Contract::V0_2);
    assert_eq!(old.description().contract_version, "0.2.0");
    assert_eq!(admission::contract(&old), Ok(()));

    let dir = tempfile::tempdir().unwrap();
    let plugins = plugins_with_the_fixture(dir.path());
    std::fs::write(plugins.join("tax_adapter.wasm"), &bytes).unwrap();
    let env = Env::start_with(Setup {
        plugins_dir: Some(plugins),
        tax_secret_setting: true,
        ..Setup::default()
    })
    .await
    .unwrap();
    let (status, body) = env
        .post(
            "/api/v1/lookups/tax.clearance",
            &json!({"taxpayer_id": "91350100M000100Y43"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}
