//! The memory budget of a node's adapter instances, in a test binary of its own: run beside
//! the other isolation tests' gateways on two cores, the bombs' admissions and growth waited
//! on busy cores and the figures it checks depended on the neighbours, not on the budget.
//! Each step waits for the state it needs on the gateway's own gauges (instances alive, memory
//! counted), never for a time.

use crate::hostile;

use hostile::{counter, hostile_env_with, metric_reaches, spawn_lookup};
use integration_tests::Setup;
use serde_json::json;
use std::sync::atomic::Ordering;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_department_is_bounded_in_instances_and_the_node_in_memory() {
    let (env, department) = hostile_env_with(Setup {
        admin: true,
        // The bombs hold their memory until the test opens the department's gate.
        hostile_limits: "max_instances = 4\ncall_timeout_ms = 30000".into(),
        plugins_extra: "memory_budget_mib = 80".into(),
        ..Setup::default()
    })
    .await;
    // Four instances held until the gate opens: the fifth is refused at once, busy.
    let held: Vec<_> = (0..4)
        .map(|_| spawn_lookup(&env, "busy", json!({"ms": 0, "until_open": true})))
        .collect();
    let instances = "gateway_adapter_instances{department=\"hostile\"}";
    metric_reaches(&env, instances, |n| n >= 4.0).await;
    let (status, retry, body) = spawn_lookup(&env, "echo", json!({})).await.unwrap();
    assert_eq!((status, retry.as_deref()), (503, Some("1")), "{body}");
    assert_eq!(body["error"]["code"], "adapter_busy");
    department.gate.store(true, Ordering::SeqCst);
    for call in held {
        assert_eq!(call.await.unwrap().0, 200);
    }
    // An answer is sent before its instance is dropped: the four are gone before the bombs.
    metric_reaches(&env, instances, |n| n == 0.0).await;
    let refused = "gateway_adapter_refusals_total{department=\"hostile\",bound=\"instances\"}";
    assert!(counter(&env, refused).await >= 1.0);

    department.gate.store(false, Ordering::SeqCst);
    // Two memory bombs of 24 MiB each hold their memory until the gate opens again; a third against
    // the 80 MiB budget (what the pool keeps resident from earlier calls counts too) cannot
    // grow into the last eighth, which is kept for starting calls, and is refused busy. Started
    // together, the three would race: whichever reached the ceiling first failed, and a second
    // one growing before the first one's memory was given back failed too — so the third
    // starts once the two hold theirs.
    let bombs: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|tag| {
            let bomb = json!({"mib": 24, "until_open": true, "tag": tag});
            spawn_lookup(&env, "bomb", bomb)
        })
        .collect();
    // Each bomb asks for the gate once it holds its memory. (The memory gauge is the whole
    // process's, which the other tests' gateways set too: not a signal for this one.)
    department
        .received(&["GET /gate?tag=a", "GET /gate?tag=b"])
        .await;
    assert!(
        bombs.iter().all(|bomb| !bomb.is_finished()),
        "a bomb ended before the gate opened"
    );
    let (status, retry, body) = spawn_lookup(&env, "bomb", json!({"mib": 24}))
        .await
        .unwrap();
    assert_eq!((status, retry.as_deref()), (503, Some("1")), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("memory budget"),
        "{body}"
    );
    // An ordinary call still starts meanwhile.
    let (status, _, body) = spawn_lookup(&env, "echo", json!({"ok": 1})).await.unwrap();
    assert_eq!(status, 200, "{body}");
    department.gate.store(true, Ordering::SeqCst);
    for bomb in bombs {
        let (status, _, body) = bomb.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let refused = "gateway_adapter_refusals_total{department=\"hostile\",bound=\"memory\"}";
    assert!(counter(&env, refused).await >= 1.0);
    // The memory came back: the three bombs fit again, one after another.
    for _ in 0..3 {
        let (status, _, body) = spawn_lookup(&env, "bomb", json!({"mib": 24}))
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
    }
}
