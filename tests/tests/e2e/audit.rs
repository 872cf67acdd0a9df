//! The audit log: department exchanges go into a hash-chained, sealed log, and `verify` finds
//! every edited, removed or reordered record and every forged seal.

use gateway_base::signature::{Algorithm, SigningKeyFile};
use gateway_store::audit::verify::{Report, public_key, verify};
use integration_tests::{Env, Setup, gateway_binary};
use serde_json::{Value, json};
use sqlx::{AnyPool, Row};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const ID_NUMBER: &str = "11010519491231002X";

fn key_file(key: &SigningKeyFile) -> String {
    format!(
        "id = \"{}\"\nalgorithm = \"{}\"\nsecret_key = \"{}\"\npublic_key = \"{}\"\n",
        key.id, key.algorithm, key.secret_key, key.public_key
    )
}

/// A gateway whose audit log is sealed every few records with a key made here, and that has
/// done a lookup (by a clerk) and a whole application.
async fn audited_gateway(hash: &str) -> (Env, SigningKeyFile, tempfile::TempDir) {
    let keys = tempfile::tempdir().unwrap();
    let key = SigningKeyFile::generate("audit-test", Algorithm::Ed25519);
    let key_path = keys.path().join("audit.key");
    std::fs::write(&key_path, key_file(&key)).unwrap();
    let env = Env::start_with(Setup {
        config_extra: format!(
            "[audit]\nhash = \"{hash}\"\nsigning_key = \"{}\"\nseal_every_records = 3\nseal_interval_ms = 100\n",
            key_path.display()
        ),
        ..Setup::default()
    })
    .await
    .unwrap();
    for name in ["张三", "李四", "王五"] {
        let answer = env
            .http
            .post(format!(
                "{}/api/v1/lookups/public-security.identity",
                env.gateway.url()
            ))
            .header("x-clerk-id", "clerk-007")
            .header("x-clerk-window", "3号窗口".as_bytes())
            .json(&json!({"name": name, "id_number": ID_NUMBER}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }
    let form = json!({
        "credit_code": "91350100M000100Y43",
        "enterprise_name": "福州测试科技有限公司",
        "legal_representative": {"name": "张三", "id_number": ID_NUMBER},
        "address": "福州市鼓楼区五四路1号",
        "business_scope": "软件开发"
    });
    let answer = env
        .http
        .post(format!(
            "{}/api/v1/services/tax.registration/applications",
            env.gateway.url()
        ))
        .header("x-clerk-id", "clerk-008")
        .header("x-clerk-hall", "鼓楼区政务服务中心".as_bytes())
        .json(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    let case_id = answer.json::<Value>().await.unwrap()["case_id"]
        .as_str()
        .unwrap()
        .to_string();
    env.wait_for_case(&case_id, WAIT, |v| v["matters"][0]["state"] == "approved")
        .await;
    (env, key, keys)
}

async fn pool(env: &Env) -> AnyPool {
    sqlx::any::install_default_drivers();
    AnyPool::connect(&env.store_url).await.unwrap()
}

/// Wait until the writer has caught up and sealed its head: the exchanges have all happened.
async fn sealed_head(pool: &AnyPool) -> (String, i64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let head = sqlx::query("SELECT node, MAX(seq) AS seq FROM audit_log GROUP BY node")
            .fetch_optional(pool)
            .await
            .unwrap()
            .map(|r| (r.get::<String, _>("node"), r.get::<i64, _>("seq")));
        let sealed = sqlx::query("SELECT MAX(seq) AS seq FROM audit_seals")
            .fetch_one(pool)
            .await
            .unwrap()
            .try_get::<i64, _>("seq")
            .unwrap_or(0);
        if let Some((node, seq)) = head.clone()
            && seq >= 6
            && sealed == seq
        {
            // Still the head a moment later: nothing more is coming.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let again: i64 = sqlx::query("SELECT MAX(seq) AS seq FROM audit_log")
                .fetch_one(pool)
                .await
                .unwrap()
                .get("seq");
            if again == seq {
                return (node, seq);
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the audit log was not written and sealed: head {head:?}, sealed {sealed}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn check(pool: &AnyPool, key: &SigningKeyFile) -> Report {
    verify(pool, &[public_key(&key.public_key).unwrap()])
        .await
        .unwrap()
}

fn problems(report: &Report) -> Vec<String> {
    report.problems.iter().map(ToString::to_string).collect()
}

async fn record(pool: &AnyPool, node: &str, seq: i64) -> Value {
    let text: String = sqlx::query("SELECT record FROM audit_log WHERE node = $1 AND seq = $2")
        .bind(node)
        .bind(seq)
        .fetch_one(pool)
        .await
        .unwrap()
        .get("record");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchanges_are_logged_chained_and_sealed_and_tampering_is_found() {
    let (env, key, _keys) = audited_gateway("sm3").await;
    let pool = pool(&env).await;
    let (node, head) = sealed_head(&pool).await;

    // What was recorded: every exchange, with its context.
    let records: Vec<Value> = {
        let mut all = Vec::new();
        for seq in 1..=head {
            all.push(record(&pool, &node, seq).await);
        }
        all
    };
    let lookup = records
        .iter()
        .find(|r| r["department"] == "public-security")
        .expect("the identity lookup was recorded");
    assert_eq!(lookup["kind"], "exchange");
    assert_eq!(lookup["clerk"]["id"], "clerk-007");
    assert_eq!(lookup["clerk"]["window"], "3号窗口");
    assert_eq!(lookup["adapter"]["call"], "lookup");
    assert_eq!(lookup["status"], 200);
    assert_eq!(lookup["request_digest"].as_str().unwrap().len(), 64);
    assert!(lookup["response_bytes"].as_u64().unwrap() > 0);
    assert_eq!(lookup["trace_id"].as_str().unwrap().len(), 32);
    let submit = records
        .iter()
        .find(|r| r["department"] == "tax" && r["adapter"]["call"] == "submit")
        .expect("the submission was recorded");
    assert!(submit["case_id"].as_str().is_some_and(|c| !c.is_empty()));
    assert_eq!(submit["step"], "tax.registration");
    // Delivered later, by the dispatcher: still the clerk who received the case.
    assert_eq!(submit["clerk"]["id"], "clerk-008");
    assert_eq!(submit["clerk"]["hall"], "鼓楼区政务服务中心");
    assert_eq!(
        submit["adapter"]["digest"].as_str().unwrap().len(),
        64,
        "{submit}"
    );
    assert!(
        records
            .iter()
            .any(|r| r["department"] == "tax" && r["adapter"]["call"] == "status"),
        "the polls were recorded"
    );
    let hash: String = sqlx::query("SELECT hash FROM audit_log WHERE seq = 1")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get("hash");
    assert!(hash.starts_with("sm3:"), "{hash}");

    // No identity number in the clear anywhere in the log.
    let everything: Vec<String> = sqlx::query("SELECT record FROM audit_log")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("record"))
        .collect();
    assert!(
        everything.iter().all(|r| !r.contains(ID_NUMBER)),
        "an identity number in the audit log"
    );

    let report = check(&pool, &key).await;
    assert!(report.ok(), "{report}");
    assert!(report.signatures_checked);
    assert!(report.chains[0].seals >= 2, "{report}");

    // An edited record.
    let original: String = sqlx::query("SELECT record FROM audit_log WHERE node = $1 AND seq = 2")
        .bind(&node)
        .fetch_one(&pool)
        .await
        .unwrap()
        .get("record");
    let mut edited: Value = serde_json::from_str(&original).unwrap();
    edited["duration_ms"] = json!(1);
    set_record(&pool, &node, 2, &edited.to_string()).await;
    let report = check(&pool, &key).await;
    assert!(!report.ok());
    assert_eq!(
        problems(&report),
        [format!(
            "node {node}: seq 2: edited: the record does not match its hash"
        )],
        "{report}"
    );
    set_record(&pool, &node, 2, &original).await;
    assert!(check(&pool, &key).await.ok());

    // A removed record.
    let removed = take_row(&pool, &node, 4).await;
    let report = check(&pool, &key).await;
    assert!(
        problems(&report).contains(&format!(
            "node {node}: seq 4: missing: seq 4 removed from the chain"
        )),
        "{report}"
    );
    put_row(&pool, &removed).await;
    assert!(check(&pool, &key).await.ok());

    // Two records swapped.
    renumber(&pool, &node, 4, -1).await;
    renumber(&pool, &node, 5, 4).await;
    renumber(&pool, &node, -1, 5).await;
    let report = check(&pool, &key).await;
    let found = problems(&report);
    for expected in [
        format!("node {node}: seq 4: holds the record written as seq 5: records were reordered"),
        format!("node {node}: seq 5: holds the record written as seq 4: records were reordered"),
    ] {
        assert!(found.contains(&expected), "{report}");
    }
    // Nothing else is blamed on the records around them (a seal may say its place changed).
    assert!(
        found
            .iter()
            .all(|p| p.contains("seq 4:") || p.contains("seq 5:")),
        "{report}"
    );
    renumber(&pool, &node, 4, -1).await;
    renumber(&pool, &node, 5, 4).await;
    renumber(&pool, &node, -1, 5).await;
    assert!(check(&pool, &key).await.ok());

    // The end cut off (behind the newest seal).
    let last = take_row(&pool, &node, head).await;
    let report = check(&pool, &key).await;
    assert_eq!(
        problems(&report),
        [format!(
            "node {node}: seq {head}: seal: sealed at seq {head} but the chain ends at seq {}: records were removed from its end",
            head - 1
        )],
        "{report}"
    );
    put_row(&pool, &last).await;
    assert!(check(&pool, &key).await.ok());

    // A forged seal: the first seal carrying another seal's signature.
    let seals: Vec<(i64, String)> =
        sqlx::query("SELECT seq, signature FROM audit_seals WHERE node = $1 ORDER BY seq")
            .bind(&node)
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get("seq"), r.get("signature")))
            .collect();
    let (seq, genuine) = seals[0].clone();
    set_signature(&pool, &node, seq, &seals[1].1).await;
    let report = check(&pool, &key).await;
    assert_eq!(
        problems(&report),
        [format!(
            "node {node}: seq {seq}: seal: the signature does not verify with the given public key (forged or altered seal)"
        )],
        "{report}"
    );
    // Nor does a seal signed by a key that is not the auditor's.
    let impostor = SigningKeyFile::generate("audit-test", Algorithm::Ed25519);
    let report = verify(&pool, &[public_key(&impostor.public_key).unwrap()])
        .await
        .unwrap();
    assert_eq!(report.problems.len(), seals.len(), "{report}");
    set_signature(&pool, &node, seq, &genuine).await;
    assert!(check(&pool, &key).await.ok());

    // The command line: OK exits 0, a problem exits non-zero and names it.
    let config = env.dir.path().join("gateway.toml");
    let run = |extra: &[&str]| {
        std::process::Command::new(gateway_binary())
            .args(["audit", "verify", "--config"])
            .arg(&config)
            .args(extra)
            .output()
            .unwrap()
    };
    let ok = run(&["--public-key", &key.public_key]);
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(out.contains("OK: 1 chains"), "{out}");
    set_record(&pool, &node, 2, &edited.to_string()).await;
    let failed = run(&[]);
    let out = String::from_utf8_lossy(&failed.stdout);
    assert!(!failed.status.success(), "{out}");
    assert!(out.contains("seq 2: edited"), "{out}");
    set_record(&pool, &node, 2, &original).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sha256_chains_verify_and_the_admin_api_reads_records() {
    let keys = tempfile::tempdir().unwrap();
    let key = SigningKeyFile::generate("audit-sm2", Algorithm::Sm2);
    let key_path = keys.path().join("audit.key");
    std::fs::write(&key_path, key_file(&key)).unwrap();
    let env = Env::start_with(Setup {
        admin: true,
        config_extra: format!(
            "[audit]\nhash = \"sha256\"\nsigning_key = \"{}\"\nseal_every_records = 1\n",
            key_path.display()
        ),
        ..Setup::default()
    })
    .await
    .unwrap();
    let (status, _) = env
        .post(
            "/api/v1/lookups/market-regulation.enterprise",
            &json!({"credit_code": "91350100M000100Y43"}),
        )
        .await;
    assert_eq!(status, 200);
    let pool = pool(&env).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let records = loop {
        let answer: Value = integration_tests::admin_client()
            .get(format!(
                "{}/admin/v1/audit?department=market-regulation",
                env.admin_url()
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let records = answer["records"].as_array().cloned().unwrap_or_default();
        if !records.is_empty() {
            break records;
        }
        assert!(tokio::time::Instant::now() < deadline, "{answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        records
            .iter()
            .all(|r| r["record"]["department"] == "market-regulation")
    );
    assert!(records[0]["hash"].as_str().unwrap().starts_with("sha256:"));
    // Sealed with SM2 after every record.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let report = check(&pool, &key).await;
        assert!(report.ok(), "{report}");
        if report.chains.iter().all(|c| c.sealed_seq == c.last_seq) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{report}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn set_record(pool: &AnyPool, node: &str, seq: i64, text: &str) {
    sqlx::query("UPDATE audit_log SET record = $1 WHERE node = $2 AND seq = $3")
        .bind(text)
        .bind(node)
        .bind(seq)
        .execute(pool)
        .await
        .unwrap();
}

async fn renumber(pool: &AnyPool, node: &str, from: i64, to: i64) {
    sqlx::query("UPDATE audit_log SET seq = $1 WHERE node = $2 AND seq = $3")
        .bind(to)
        .bind(node)
        .bind(from)
        .execute(pool)
        .await
        .unwrap();
}

/// A row taken out of the log, to put back.
struct Taken {
    node: String,
    seq: i64,
    at: i64,
    department: Option<String>,
    record: String,
    prev_hash: String,
    hash: String,
}

async fn take_row(pool: &AnyPool, node: &str, seq: i64) -> Taken {
    let r = sqlx::query(
        "SELECT at, department, record, prev_hash, hash FROM audit_log WHERE node = $1 AND seq = $2",
    )
    .bind(node)
    .bind(seq)
    .fetch_one(pool)
    .await
    .unwrap();
    let taken = Taken {
        node: node.to_string(),
        seq,
        at: r.get("at"),
        department: r.get("department"),
        record: r.get("record"),
        prev_hash: r.get("prev_hash"),
        hash: r.get("hash"),
    };
    sqlx::query("DELETE FROM audit_log WHERE node = $1 AND seq = $2")
        .bind(node)
        .bind(seq)
        .execute(pool)
        .await
        .unwrap();
    taken
}

async fn put_row(pool: &AnyPool, t: &Taken) {
    sqlx::query(
        "INSERT INTO audit_log (node, seq, at, department, record, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&t.node)
    .bind(t.seq)
    .bind(t.at)
    .bind(t.department.as_deref())
    .bind(&t.record)
    .bind(&t.prev_hash)
    .bind(&t.hash)
    .execute(pool)
    .await
    .unwrap();
}

async fn set_signature(pool: &AnyPool, node: &str, seq: i64, signature: &str) {
    sqlx::query("UPDATE audit_seals SET signature = $1 WHERE node = $2 AND seq = $3")
        .bind(signature)
        .bind(node)
        .bind(seq)
        .execute(pool)
        .await
        .unwrap();
}
