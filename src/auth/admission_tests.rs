//! Admission against a real store with an injected clock: budgets under concurrency, resets
//! across a calendar boundary (exactly once), rate limits and parallel slots.

use std::sync::Arc;

use axum::http::HeaderMap;
use serde_json::json;

use super::duration::{self, parse_iso};
use super::*;
use crate::config::{Env, parse};
use crate::store::keys::KeyRow;
use crate::store::teams::TeamRow;

fn cfg() -> Config {
    parse(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: mock/m\ngeneral_settings:\n  master_key: sk-master\n",
        Env::from_map([("X", "Y")]),
    )
    .unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    clock: Arc<ManualClock>,
    auth: Arc<Auth>,
}

async fn fixture(now: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&Store::sqlite_url(&dir.path().join("t.db")), 2)
        .await
        .unwrap();
    let clock = ManualClock::new(parse_iso(now).unwrap());
    let auth = Auth::start(&cfg(), store.clone(), clock.clone())
        .await
        .unwrap();
    Fixture {
        _dir: dir,
        store,
        clock,
        auth,
    }
}

fn key(k: &str) -> KeyRow {
    KeyRow {
        token: hash_token(k),
        aliases: json!({}),
        config: json!({}),
        model_max_budget: json!({}),
        model_spend: json!({}),
        metadata: json!({}),
        permissions: json!({}),
        extra: json!({}),
        ..KeyRow::default()
    }
}

async fn caller(auth: &Auth, k: &str) -> Result<Caller, ApiError> {
    let mut h = HeaderMap::new();
    h.insert("authorization", format!("Bearer {k}").parse().unwrap());
    auth.authenticate(&h).await
}

fn facts(cost: f64) -> CallFacts {
    CallFacts {
        model_group: "m".into(),
        estimated_prompt_tokens: 10,
        estimated_cost: cost,
        ..CallFacts::default()
    }
}

#[tokio::test]
async fn fifty_concurrent_calls_overshoot_by_at_most_the_estimate_error() {
    let f = fixture("2026-11-25T10:00:00Z").await;
    let mut k = key("sk-conc");
    k.max_budget = Some(10.0);
    f.store.put_key(&k).await.unwrap();
    f.auth.reload().await.unwrap();
    let c = caller(&f.auth, "sk-conc").await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let auth = f.auth.clone();
        let c = c.clone();
        tasks.push(tokio::spawn(
            async move { auth.admit(&c, &facts(1.0)).await },
        ));
    }
    let mut admitted = Vec::new();
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(a) => admitted.push(a),
            Err(e) => {
                assert_eq!(e.kind, "budget_exceeded");
                assert_eq!(e.status.as_u16(), 422);
                refused += 1;
            }
        }
    }
    // Reservations are seen by every concurrent call: exactly max_budget / estimate pass.
    assert_eq!((admitted.len(), refused), (10, 40));
    // Each really cost 1.2: the overshoot is the in-flight calls' estimation error.
    for a in admitted {
        a.settle(1.2, 100);
    }
    let spend = f
        .auth
        .live_spend(Kind::Key, &k.token, 0.0, None, None)
        .await;
    assert!((spend - 12.0).abs() < 1e-9, "{spend}");
    let e = f.auth.admit(&c, &facts(0.0)).await.unwrap_err();
    assert_eq!(
        e.message,
        "Budget has been exceeded! Current cost: 12, Max budget: 10"
    );
}

#[tokio::test]
async fn unknown_cost_reserves_what_the_model_cost_before_and_drop_releases() {
    let f = fixture("2026-11-25T10:00:00Z").await;
    let mut k = key("sk-learn");
    k.max_budget = Some(3.0);
    f.store.put_key(&k).await.unwrap();
    f.auth.reload().await.unwrap();
    let c = caller(&f.auth, "sk-learn").await.unwrap();
    f.auth.admit(&c, &facts(0.0)).await.unwrap().settle(1.0, 5);
    // Now 1.0 is reserved per call: two fit in the remaining 2.0, a third does not.
    let a = f.auth.admit(&c, &facts(0.0)).await.unwrap();
    let b = f.auth.admit(&c, &facts(0.0)).await.unwrap();
    assert!(f.auth.admit(&c, &facts(0.0)).await.is_err());
    // Dropped without settling (client went away before any cost): the reservation returns.
    drop(a);
    drop(b);
    let spend = f
        .auth
        .live_spend(Kind::Key, &k.token, 0.0, None, None)
        .await;
    assert!((spend - 1.0).abs() < 1e-9, "{spend}");
    assert!(f.auth.admit(&c, &facts(0.0)).await.is_ok());
}

#[tokio::test]
async fn budget_resets_at_midnight_exactly_once() {
    let f = fixture("2026-11-25T23:59:00Z").await;
    let now = f.clock.now_ms();
    let mut k = key("sk-daily");
    k.max_budget = Some(1.0);
    k.budget_duration = Some("1d".into());
    k.budget_reset_at = Some(duration::next_reset(duration::Span::Days(1), now));
    f.store.put_key(&k).await.unwrap();
    f.auth.reload().await.unwrap();
    let c = caller(&f.auth, "sk-daily").await.unwrap();
    f.auth.admit(&c, &facts(0.0)).await.unwrap().settle(1.0, 5);
    // What the spend writer would have stored.
    f.store.set_key_spend(&k.token, 1.0).await.unwrap();
    f.auth.reload().await.unwrap();
    let e = f.auth.admit(&c, &facts(0.0)).await.unwrap_err();
    assert_eq!(e.kind, "budget_exceeded");
    assert!(f.auth.run_resets().await.unwrap() == 0, "not due yet");

    // Past midnight: admitted at once (lazily), before any reset job ran.
    f.clock.set(parse_iso("2026-11-26T00:00:01Z").unwrap());
    f.auth.reload().await.unwrap();
    f.auth.admit(&c, &facts(0.0)).await.unwrap().settle(0.5, 5);

    // A second instance on the same database: only one of them resets the row.
    let other = Auth::start(&cfg(), f.store.clone(), f.clock.clone())
        .await
        .unwrap();
    assert_eq!(f.auth.run_resets().await.unwrap(), 1);
    assert_eq!(other.run_resets().await.unwrap(), 0);
    assert_eq!(f.auth.run_resets().await.unwrap(), 0);
    let row = f.store.get_key(&k.token).await.unwrap().unwrap();
    assert_eq!(row.spend, 0.0);
    assert_eq!(row.budget_reset_at, parse_iso("2026-11-27T00:00:00Z"));
    f.auth.reload().await.unwrap();
    f.auth.admit(&c, &facts(0.0)).await.unwrap().settle(0.5, 5);
    let e = f.auth.admit(&c, &facts(0.0)).await.unwrap_err();
    assert_eq!(
        e.message, "Budget has been exceeded! Current cost: 1, Max budget: 1",
        "this window: 0.5 before the reset job ran and 0.5 after"
    );
}

#[tokio::test]
async fn rpm_tpm_and_parallel_limits() {
    let f = fixture("2026-11-25T10:00:10Z").await;
    let mut k = key("sk-rl");
    k.rpm_limit = Some(2);
    k.tpm_limit = Some(25);
    f.store.put_key(&k).await.unwrap();
    let mut p = key("sk-par");
    p.max_parallel_requests = Some(1);
    f.store.put_key(&p).await.unwrap();
    f.auth.reload().await.unwrap();

    let c = caller(&f.auth, "sk-rl").await.unwrap();
    let a = f.auth.admit(&c, &facts(0.0)).await.unwrap();
    let h: std::collections::HashMap<_, _> = a.response_headers().iter().cloned().collect();
    assert_eq!(h["x-ratelimit-limit-requests"], "2");
    assert_eq!(h["x-ratelimit-remaining-requests"], "1");
    assert_eq!(h["x-ratelimit-limit-tokens"], "25");
    a.settle(0.0, 10);
    f.auth.admit(&c, &facts(0.0)).await.unwrap().settle(0.0, 10);
    let e = f.auth.admit(&c, &facts(0.0)).await.unwrap_err();
    assert_eq!(e.status.as_u16(), 429);
    assert!(e.message.contains("Limit type: requests"), "{}", e.message);
    let retry = e.headers.iter().find(|(n, _)| n == "retry-after").unwrap();
    assert_eq!(retry.1, "50");
    // The next minute: requests allowed again; tokens were 20 of 25 then, now 0.
    f.clock.advance(60_000);
    f.auth.admit(&c, &facts(0.0)).await.unwrap().settle(0.0, 30);
    let e = f.auth.admit(&c, &facts(0.0)).await.unwrap_err();
    assert!(e.message.contains("Limit type: tokens"), "{}", e.message);

    let c = caller(&f.auth, "sk-par").await.unwrap();
    let held = f.auth.admit(&c, &facts(0.0)).await.unwrap();
    let e = f.auth.admit(&c, &facts(0.0)).await.unwrap_err();
    assert_eq!(e.status.as_u16(), 429);
    assert!(e.message.contains("Max parallel request limit reached"));
    drop(held);
    f.auth.admit(&c, &facts(0.0)).await.unwrap();
}

#[tokio::test]
async fn the_tightest_budget_wins_and_names_its_owner() {
    let f = fixture("2026-11-25T10:00:00Z").await;
    let team = TeamRow {
        team_id: "t1".into(),
        max_budget: Some(1.0),
        metadata: json!({}),
        extra: json!({}),
        ..TeamRow::default()
    };
    f.store.put_team(&team).await.unwrap();
    let mut k = key("sk-team");
    k.max_budget = Some(100.0);
    k.team_id = Some("t1".into());
    f.store.put_key(&k).await.unwrap();
    f.auth.reload().await.unwrap();
    let c = caller(&f.auth, "sk-team").await.unwrap();
    f.auth.admit(&c, &facts(0.0)).await.unwrap().settle(1.5, 1);
    let e = f.auth.admit(&c, &facts(0.0)).await.unwrap_err();
    assert_eq!(
        e.message,
        "Budget has been exceeded! Team=t1 Current cost: 1.5, Max budget: 1"
    );
}

#[tokio::test]
async fn a_key_made_elsewhere_is_found_in_the_store_and_a_hash_is_no_credential() {
    let f = fixture("2026-11-25T10:00:00Z").await;
    assert!(caller(&f.auth, "sk-later").await.is_err());
    f.store.put_key(&key("sk-later")).await.unwrap();
    // Remembered as missing for a moment, then looked up once.
    f.clock.advance(keys::NEGATIVE_TTL_MS);
    assert!(caller(&f.auth, "sk-later").await.is_ok());
    assert!(caller(&f.auth, &hash_token("sk-later")).await.is_err());
}

#[tokio::test]
async fn remembered_key_hashes_never_outlive_the_key() {
    let f = fixture("2026-11-25T10:00:00Z").await;
    f.store.put_key(&key("sk-memo")).await.unwrap();
    f.auth.directory.put_key(key("sk-memo"));
    // Twice: the second call takes the remembered hash.
    for _ in 0..2 {
        let c = caller(&f.auth, "sk-memo").await.unwrap();
        assert_eq!(c.key_hash.as_deref(), Some(hash_token("sk-memo").as_str()));
    }
    assert!(f.auth.key_hashes.get("sk-memo").is_some());
    // Wrong keys are not remembered, and the master key still authenticates.
    assert!(caller(&f.auth, "sk-wrong").await.is_err());
    assert!(f.auth.key_hashes.get("sk-wrong").is_none());
    assert!(caller(&f.auth, "sk-master").await.unwrap().is_admin);
    assert!(f.auth.key_hashes.get("sk-master").is_none());
    // A blocked key is refused and not remembered.
    f.auth.directory.put_key(KeyRow {
        blocked: true,
        ..key("sk-blocked")
    });
    assert!(caller(&f.auth, "sk-blocked").await.is_err());
    assert!(f.auth.key_hashes.get("sk-blocked").is_none());
    // A deleted key is refused although its hash is remembered.
    f.store.delete_key(&hash_token("sk-memo")).await.unwrap();
    f.auth.directory.remove_key(&hash_token("sk-memo"));
    assert!(caller(&f.auth, "sk-memo").await.is_err());
    // Bounded: a full memo starts over.
    for i in 0..KEY_HASH_MEMO + 1 {
        f.auth.key_hashes.remember(&format!("k{i}"), "h");
    }
    assert!(f.auth.key_hashes.0.read().len() <= KEY_HASH_MEMO);
}

/// `cargo test --release --lib admission_cost -- --ignored --nocapture`: what admission adds
/// per call (authenticate + admit + settle) with a budget and rpm/tpm limits, in memory.
#[tokio::test]
#[ignore]
async fn admission_cost() {
    let f = fixture("2026-11-25T10:00:00Z").await;
    let mut k = key("sk-bench");
    k.max_budget = Some(1e12);
    k.budget_duration = Some("monthly".into());
    k.budget_reset_at = Some(parse_iso("2026-12-01T00:00:00Z").unwrap());
    k.rpm_limit = Some(i64::MAX / 2);
    k.tpm_limit = Some(i64::MAX / 2);
    f.store.put_key(&k).await.unwrap();
    f.auth.reload().await.unwrap();
    let mut h = HeaderMap::new();
    h.insert("authorization", "Bearer sk-bench".parse().unwrap());
    let n = 200_000;
    let t = std::time::Instant::now();
    for _ in 0..n {
        let c = f.auth.authenticate(&h).await.unwrap();
        f.auth
            .admit(&c, &facts(0.001))
            .await
            .unwrap()
            .settle(0.001, 20);
    }
    let per = t.elapsed().as_nanos() as f64 / n as f64;
    println!("authenticate + admit + settle: {per:.0} ns per call");
}

#[tokio::test]
async fn unknown_end_users_get_the_default_budget_even_when_concurrent() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&Store::sqlite_url(&dir.path().join("t.db")), 2)
        .await
        .unwrap();
    let cfg = parse(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: mock/m\ngeneral_settings:\n  master_key: sk-master\nlitellm_settings:\n  max_end_user_budget: 2.0\n",
        Env::from_map([("X", "Y")]),
    )
    .unwrap();
    let auth = Auth::start(&cfg, store, ManualClock::new(0)).await.unwrap();
    let c = caller(&auth, "sk-master").await.unwrap();
    let f = CallFacts {
        end_user: Some("first-timer".into()),
        ..facts(1.0)
    };
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let auth = auth.clone();
        let (c, f) = (c.clone(), f.clone());
        tasks.push(tokio::spawn(async move { auth.admit(&c, &f).await }));
    }
    let mut admitted = Vec::new();
    for t in tasks {
        if let Ok(a) = t.await.unwrap() {
            admitted.push(a);
        }
    }
    assert_eq!(admitted.len(), 2);
    for a in admitted {
        a.settle(1.0, 1);
    }
    let e = auth.admit(&c, &f).await.unwrap_err();
    assert_eq!(
        e.message,
        "Budget has been exceeded! End User=first-timer Current cost: 2, Max budget: 2"
    );
}

#[tokio::test]
async fn a_full_load_read_before_an_admin_change_does_not_undo_it() {
    let f = fixture("2026-11-25T10:00:00Z").await;
    f.store.put_key(&key("sk-gen")).await.unwrap();
    let seen = f.auth.directory.generation();
    let stale = keys::Loaded::read(&f.store).await.unwrap();
    // Meanwhile an admin blocks the key on this instance.
    let mut blocked = key("sk-gen");
    blocked.blocked = true;
    f.auth.directory.put_key(blocked);
    assert!(!f.auth.directory.replace_if_unchanged(&stale, seen));
    assert!(caller(&f.auth, "sk-gen").await.is_err(), "still blocked");
}
