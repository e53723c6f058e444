//! One suite over keys, teams, users, end users and budgets, run on SQLite and (when
//! `TOLLGATE_TEST_DATABASE_URL` is set) on a fresh PostgreSQL schema.

use serde_json::json;

use super::Store;
use super::budgets::{BudgetRow, SpendTable};
use super::end_users::EndUserRow;
use super::keys::{KeyFilter, KeyRow};
use super::teams::{MemberRow, TeamRow};
use super::users::UserRow;

fn key(token: &str, created_at: i64) -> KeyRow {
    KeyRow {
        token: token.into(),
        aliases: json!({}),
        config: json!({}),
        model_max_budget: json!({}),
        model_spend: json!({}),
        metadata: json!({}),
        permissions: json!({}),
        extra: json!({}),
        created_at,
        updated_at: created_at,
        ..KeyRow::default()
    }
}

async fn suite(s: &Store) {
    // Keys: NULLs then values through the same statements (the Any-driver trap).
    let mut a = key("aaa", 1);
    s.put_key(&a).await.unwrap();
    a.max_budget = Some(2.5);
    a.budget_duration = Some("1d".into());
    a.budget_reset_at = Some(100);
    a.models = vec!["gpt-4o".into()];
    a.metadata = json!({"x": 1});
    a.key_alias = Some("alias-a".into());
    a.team_id = Some("t".into());
    a.blocked = true;
    assert!(s.update_key(&a).await.unwrap());
    let got = s.get_key("aaa").await.unwrap().unwrap();
    assert_eq!(got, a);
    let mut b = key("bbb", 2);
    b.max_budget = Some(1.0);
    b.user_id = Some("u".into());
    s.put_key(&b).await.unwrap();
    s.put_key(&key("ccc", 3)).await.unwrap();
    let (page, total) = s.list_keys(&KeyFilter::default(), 1, 2).await.unwrap();
    assert_eq!(total, 3);
    assert_eq!(
        page.iter().map(|k| k.token.as_str()).collect::<Vec<_>>(),
        ["ccc", "bbb"]
    );
    let (page, total) = s
        .list_keys(
            &KeyFilter {
                team_id: Some("t".into()),
                ..KeyFilter::default()
            },
            1,
            10,
        )
        .await
        .unwrap();
    assert_eq!((page.len(), total), (1, 1));
    assert_eq!(s.keys_by_alias("alias-a").await.unwrap().len(), 1);
    assert!(s.rename_key("ccc", "ddd", "sk-...dddd", 5).await.unwrap());
    assert!(s.get_key("ccc").await.unwrap().is_none());
    assert!(s.delete_key("ddd").await.unwrap());
    assert!(!s.delete_key("ddd").await.unwrap());

    // The spend writer's statements (contract with the spend helper).
    sqlx::query("UPDATE tollgate_keys SET spend = spend + $1 WHERE token = $2")
        .bind(0.25)
        .bind("aaa")
        .execute(&s.pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO tollgate_end_users (user_id, spend, created_at, updated_at) VALUES ($1, $2, $3, $3) ON CONFLICT (user_id) DO UPDATE SET spend = tollgate_end_users.spend + excluded.spend")
        .bind("eu-new")
        .bind(0.5)
        .bind(7i64)
        .execute(&s.pool)
        .await
        .unwrap();
    assert_eq!(s.get_key("aaa").await.unwrap().unwrap().spend, 0.25);
    let eu = s.get_end_user("eu-new").await.unwrap().unwrap();
    assert_eq!((eu.spend, eu.blocked, eu.budget_id), (0.5, false, None));
    // Editing a key never touches its spend.
    assert!(s.update_key(&a).await.unwrap());
    assert_eq!(s.get_key("aaa").await.unwrap().unwrap().spend, 0.25);

    // Teams and members.
    let t = TeamRow {
        team_id: "t".into(),
        max_budget: Some(5.0),
        metadata: json!({}),
        extra: json!({"tags": ["x"]}),
        created_at: 1,
        updated_at: 1,
        ..TeamRow::default()
    };
    s.put_team(&t).await.unwrap();
    assert_eq!(s.get_team("t").await.unwrap().unwrap(), t);
    s.put_member(&MemberRow {
        team_id: "t".into(),
        user_id: "u".into(),
        role: "admin".into(),
        created_at: 1,
        ..MemberRow::default()
    })
    .await
    .unwrap();
    assert_eq!(s.team_members("t").await.unwrap()[0].role, "admin");
    assert_eq!(s.user_teams("u").await.unwrap(), ["t"]);
    assert!(s.delete_member("t", "u").await.unwrap());
    // Deleting a team takes its keys with it.
    let mut gone = t.clone();
    gone.team_id = "gone".into();
    s.put_team(&gone).await.unwrap();
    let mut gk = key("ggg", 9);
    gk.team_id = Some("gone".into());
    s.put_key(&gk).await.unwrap();
    assert_eq!(
        s.delete_team("gone").await.unwrap(),
        (true, vec!["ggg".to_owned()])
    );
    assert!(s.get_team("gone").await.unwrap().is_none());
    assert!(s.get_key("ggg").await.unwrap().is_none());
    assert!(s.get_key("aaa").await.unwrap().is_some());
    assert_eq!(s.delete_team("gone").await.unwrap(), (false, vec![]));

    // Users.
    let mut u = UserRow {
        user_id: "u".into(),
        metadata: json!({}),
        extra: json!({}),
        created_at: 1,
        updated_at: 1,
        ..UserRow::default()
    };
    s.put_user(&u).await.unwrap();
    u.user_email = Some("u@example.com".into());
    u.max_budget = Some(3.0);
    assert!(s.update_user(&u).await.unwrap());
    assert_eq!(s.get_user("u").await.unwrap().unwrap(), u);
    assert_eq!(s.all_users().await.unwrap().len(), 1);
    assert!(s.delete_user("u").await.unwrap());

    // Budgets and end users.
    let mut bud = BudgetRow {
        budget_id: "b".into(),
        model_max_budget: json!({}),
        created_at: 1,
        updated_at: 1,
        ..BudgetRow::default()
    };
    s.put_budget(&bud).await.unwrap();
    bud.max_budget = Some(9.0);
    bud.budget_duration = Some("1mo".into());
    s.put_budget(&bud).await.unwrap();
    assert_eq!(s.get_budget("b").await.unwrap().unwrap(), bud);
    let mut e = EndUserRow {
        user_id: "eu".into(),
        extra: json!({}),
        created_at: Some(1),
        updated_at: Some(1),
        ..EndUserRow::default()
    };
    s.put_end_user(&e).await.unwrap();
    e.budget_id = Some("b".into());
    e.budget_reset_at = Some(50);
    assert!(s.update_end_user(&e).await.unwrap());
    assert_eq!(s.get_end_user("eu").await.unwrap().unwrap(), e);

    // Resets: due rows, reset once (conditional on the old reset time).
    let due = s.due_resets(SpendTable::Keys, 100).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].budget_reset_at, Some(100));
    assert!(
        s.reset_spend(SpendTable::Keys, "aaa", Some(100), 200)
            .await
            .unwrap()
    );
    assert!(
        !s.reset_spend(SpendTable::Keys, "aaa", Some(100), 200)
            .await
            .unwrap()
    );
    let k = s.get_key("aaa").await.unwrap().unwrap();
    assert_eq!((k.spend, k.budget_reset_at), (0.0, Some(200)));
    let due = s.due_resets(SpendTable::EndUsers, 60).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].budget_duration, "1mo");
    assert!(
        s.reset_spend(SpendTable::EndUsers, "eu", Some(50), 90)
            .await
            .unwrap()
    );
    assert!(s.delete_end_user("eu").await.unwrap());
    assert!(s.delete_budget("b").await.unwrap());
}

#[tokio::test]
async fn identity_store_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&Store::sqlite_url(&dir.path().join("t.db")), 2)
        .await
        .unwrap();
    suite(&s).await;
}

#[tokio::test]
async fn identity_store_on_postgres() {
    let Ok(base) = std::env::var("TOLLGATE_TEST_DATABASE_URL") else {
        println!("TOLLGATE_TEST_DATABASE_URL not set: skipping identity_store_on_postgres");
        return;
    };
    sqlx::any::install_default_drivers();
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::AnyPool::connect(&base)
        .await
        .expect("TOLLGATE_TEST_DATABASE_URL is set but PostgreSQL is unreachable");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let s = Store::open(&format!("{base}{sep}options=-csearch_path%3D{schema}"), 1)
        .await
        .unwrap();
    // One connection: every statement is reused, as on a busy pool.
    suite(&s).await;
    s.pool.close().await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
}
