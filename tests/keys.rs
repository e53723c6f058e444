//! End-to-end: the management API for keys, teams, users, customers and budgets, on SQLite and
//! (when `TOLLGATE_TEST_DATABASE_URL` is set) on PostgreSQL.

mod common;
mod db;

use common::{Gateway, client, gateway};
use reqwest::StatusCode;
use serde_json::{Value, json};

const MASTER: &str = "sk-master";

fn config() -> String {
    r#"
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: mock/gpt-4o
    model_info:
      access_groups: ["beta"]
  - model_name: other
    litellm_params:
      model: mock/other
general_settings:
  master_key: sk-master
"#
    .to_owned()
}

fn start(db: Option<&str>) -> Gateway {
    let g = gateway(&config());
    match db {
        Some(url) => g.env("DATABASE_URL", url).start(),
        None => g.start(),
    }
}

struct Api {
    gw: Gateway,
    c: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = self.gw.url(path);
        let req = match method {
            "GET" => self.c.get(url),
            _ => self.c.post(url),
        }
        .bearer_auth(key);
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        let r = req.send().await.unwrap();
        let s = r.status();
        let text = r.text().await.unwrap();
        (
            s,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", path, MASTER, Some(body)).await
    }
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call("GET", path, MASTER, None).await
    }
    async fn chat(&self, key: &str, model: &str) -> (StatusCode, Value) {
        self.call(
            "POST",
            "/v1/chat/completions",
            key,
            Some(json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})),
        )
        .await
    }
}

async fn key_lifecycle(db: Option<String>) {
    let api = Api {
        gw: start(db.as_deref()),
        c: client(),
    };

    // The seed's command, as written.
    let (s, g) = api
        .post(
            "/key/generate",
            json!({"key_alias":"openclaw","max_budget":50.00,"budget_duration":"monthly"}),
        )
        .await;
    assert_eq!(s, 200, "{g}");
    let key = g["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk-"));
    assert_ne!(g["token"], g["key"]);
    assert_eq!(g["token"], g["token_id"]);
    assert_eq!(
        g["token"].as_str().unwrap(),
        tollgate::auth::hash_token(&key)
    );
    assert_eq!(g["key_name"], format!("sk-...{}", &key[key.len() - 4..]));
    assert_eq!(g["key_alias"], "openclaw");
    assert_eq!(g["max_budget"], 50.0);
    assert_eq!(g["budget_duration"], "monthly");
    for f in ["created_at", "updated_at", "budget_reset_at"] {
        assert!(g[f].is_string(), "{f} missing: {g}");
    }
    assert!(g["expires"].is_null());

    // The key works, and says what it may spend.
    let r = api
        .c
        .post(api.gw.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-litellm-key-max-budget"], "50");
    assert!(r.headers().contains_key("x-litellm-key-spend"));

    // /key/info: by key, by hash, as itself; others are refused; unknown is 404.
    let (s, i) = api.get(&format!("/key/info?key={key}")).await;
    assert_eq!(s, 200);
    assert_eq!(i["key"], key);
    assert_eq!(i["info"]["key_alias"], "openclaw");
    assert_eq!(i["info"]["token"], g["token"]);
    let (s, _) = api
        .get(&format!("/key/info?key={}", g["token"].as_str().unwrap()))
        .await;
    assert_eq!(s, 200);
    let (s, own) = api.call("GET", "/key/info", &key, None).await;
    assert_eq!(s, 200);
    assert_eq!(own["info"]["key_alias"], "openclaw");
    let (_, other) = api
        .post("/key/generate", json!({"key_alias": "other"}))
        .await;
    let other_key = other["key"].as_str().unwrap().to_owned();
    let (s, e) = api
        .call("GET", &format!("/key/info?key={other_key}"), &key, None)
        .await;
    assert_eq!(s, 403, "{e}");
    let (s, e) = api.get("/key/info?key=sk-nope").await;
    assert_eq!(s, 404, "{e}");

    // Management needs the master key; bad input is a 400.
    let (s, e) = api
        .call("POST", "/key/generate", &key, Some(json!({})))
        .await;
    assert_eq!(s, 403, "{e}");
    assert_eq!(e["error"]["type"], "auth_error");
    let r = api
        .c
        .post(api.gw.url("/key/generate"))
        .bearer_auth(MASTER)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (s, e) = api.post("/key/generate", json!({"max_budget": -1})).await;
    assert_eq!(s, 400, "{e}");
    let (s, e) = api
        .post("/key/generate", json!({"team_id": "no-such-team"}))
        .await;
    assert_eq!(s, 400, "{e}");
    let (s, e) = api
        .post("/key/generate", json!({"budget_duration": "fortnightly"}))
        .await;
    assert_eq!(s, 400, "{e}");
    let (s, e) = api.post("/key/generate", json!({"key": "not-sk"})).await;
    assert_eq!(s, 400, "{e}");
    let (s, _) = api
        .call("POST", "/key/generate", "sk-wrong", Some(json!({})))
        .await;
    assert_eq!(s, 401);

    // Update: metadata round-trips; models restrict the key, /v1/models follows.
    let (s, u) = api
        .post(
            "/key/update",
            json!({"key": key, "metadata": {"team": "core"}, "models": ["beta"]}),
        )
        .await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["metadata"], json!({"team": "core"}));
    let (s, _) = api.chat(&key, "gpt-4o").await;
    assert_eq!(s, 200, "access group beta holds gpt-4o");
    let (s, e) = api.chat(&key, "other").await;
    assert_eq!(s, 401, "{e}");
    assert_eq!(e["error"]["type"], "key_model_access_denied");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("key not allowed to access model")
    );
    let (_, models) = api.call("GET", "/v1/models", &key, None).await;
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["gpt-4o"]);
    let (s, e) = api
        .post("/key/update", json!({"key": "sk-unknown", "max_budget": 1}))
        .await;
    assert_eq!(s, 404, "{e}");
    let (s, e) = api
        .post("/key/update", json!({"key": key, "max_budget": -5}))
        .await;
    assert_eq!(s, 400, "{e}");
    let (_, u) = api
        .post("/key/update", json!({"key": key, "metadata": {}}))
        .await;
    assert_eq!(u["metadata"], json!({}));

    // Block and unblock.
    let (s, b) = api.post("/key/block", json!({"key": key})).await;
    assert_eq!((s, b["blocked"].clone()), (StatusCode::OK, json!(true)));
    let (s, e) = api.chat(&key, "gpt-4o").await;
    assert_eq!(s, 401);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("blocked"),
        "{e}"
    );
    let (_, b) = api.post("/key/unblock", json!({"key": key})).await;
    assert_eq!(b["blocked"], false);
    assert_eq!(api.chat(&key, "gpt-4o").await.0, 200);

    // List, paginated.
    let (s, l) = api.get("/key/list?page=1&size=1").await;
    assert_eq!(s, 200, "{l}");
    assert_eq!(l["total_count"], 2);
    assert_eq!(l["total_pages"], 2);
    assert_eq!(l["current_page"], 1);
    assert_eq!(l["keys"].as_array().unwrap().len(), 1);
    let (_, l) = api
        .get("/key/list?key_alias=openclaw&return_full_object=true")
        .await;
    assert_eq!(l["keys"][0]["key_alias"], "openclaw");
    let (s, _) = api.get("/key/list?size=1000").await;
    assert_eq!(s, 400);
    let (s, _) = api.call("GET", "/key/list", &key, None).await;
    assert_eq!(s, 403);

    // Regenerate: the old key stops working, the new one carries the settings.
    let (s, rg) = api.post(&format!("/key/{key}/regenerate"), json!({})).await;
    assert_eq!(s, 200, "{rg}");
    let new_key = rg["key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, key);
    assert_eq!(rg["key_alias"], "openclaw");
    assert_eq!(api.chat(&key, "gpt-4o").await.0, 401);
    assert_eq!(api.chat(&new_key, "gpt-4o").await.0, 200);
    let (s, rg2) = api
        .post(
            "/key/regenerate",
            json!({"key": new_key, "new_key": "sk-chosen-by-me"}),
        )
        .await;
    assert_eq!(s, 200, "{rg2}");
    assert_eq!(rg2["key"], "sk-chosen-by-me");

    assert_eq!(
        api.post("/key/regenerate", json!({"key": "sk-unknown"}))
            .await
            .0,
        404
    );
    assert_eq!(
        api.post(
            "/key/regenerate",
            json!({"key": rg2["key"], "new_key": "bad"})
        )
        .await
        .0,
        400
    );
    assert_eq!(
        api.post("/key/block", json!({"key": "sk-unknown"})).await.0,
        404
    );
    assert_eq!(api.post("/key/unblock", json!({})).await.0, 400);
    assert_eq!(
        api.call(
            "POST",
            "/key/block",
            &new_key,
            Some(json!({"key": new_key}))
        )
        .await
        .0,
        401,
        "the old key was replaced"
    );

    // Expired keys are refused with the reason.
    let (_, ex) = api.post("/key/generate", json!({"duration": "1s"})).await;
    let ex_key = ex["key"].as_str().unwrap().to_owned();
    assert!(ex["expires"].is_string());
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let (s, e) = api.chat(&ex_key, "gpt-4o").await;
    assert_eq!(s, 401, "{e}");
    assert_eq!(e["error"]["type"], "expired_key");

    // Delete by key and by alias; a deleted key is unknown.
    let (s, d) = api
        .post("/key/delete", json!({"keys": ["sk-chosen-by-me"]}))
        .await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["deleted_keys"], json!(["sk-chosen-by-me"]));
    assert_eq!(api.chat("sk-chosen-by-me", "gpt-4o").await.0, 401);
    let (s, _) = api
        .post("/key/delete", json!({"keys": ["sk-chosen-by-me"]}))
        .await;
    assert_eq!(s, 404);
    let (s, d) = api
        .post("/key/delete", json!({"key_aliases": ["other"]}))
        .await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["deleted_keys"], json!(["other"]));
    let (s, _) = api.post("/key/delete", json!({})).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn key_lifecycle_sqlite() {
    key_lifecycle(None).await;
}

#[tokio::test]
async fn key_lifecycle_postgres() {
    let Some(url) = db::fresh_pg("key_lifecycle_postgres").await else {
        return;
    };
    key_lifecycle(Some(url)).await;
}

async fn teams_users_customers_budgets(db: Option<String>) {
    let api = Api {
        gw: start(db.as_deref()),
        c: client(),
    };

    // Teams.
    let (s, t) = api
        .post("/team/new", json!({"team_id": "core", "team_alias": "Core", "models": ["gpt-4o"], "max_budget": 10, "members_with_roles": [{"role": "admin", "user_id": "ann"}]}))
        .await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["team_id"], "core");
    assert_eq!(t["members_with_roles"][0]["user_id"], "ann");
    assert_eq!(
        api.post("/team/new", json!({"team_id": "core"})).await.0,
        400
    );
    assert_eq!(
        api.post("/team/new", json!({"max_budget": -1})).await.0,
        400
    );
    let (s, auto) = api.post("/team/new", json!({})).await;
    assert_eq!(s, 200);
    assert!(auto["team_id"].as_str().unwrap().len() > 8);
    let (s, m) = api
        .post(
            "/team/member_add",
            json!({"team_id": "core", "member": {"role": "user", "user_id": "bob"}}),
        )
        .await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["members_with_roles"].as_array().unwrap().len(), 2);
    assert_eq!(
        api.post(
            "/team/member_add",
            json!({"team_id": "nope", "member": {"user_id": "x"}})
        )
        .await
        .0,
        404
    );
    let (s, m) = api
        .post(
            "/team/member_delete",
            json!({"team_id": "core", "user_id": "bob"}),
        )
        .await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["members_with_roles"].as_array().unwrap().len(), 1);
    let (s, u) = api
        .post(
            "/team/update",
            json!({"team_id": "core", "tpm_limit": 1000}),
        )
        .await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["data"]["tpm_limit"], 1000);
    assert_eq!(
        api.post("/team/update", json!({"team_id": "nope"})).await.0,
        404
    );

    // A team key: the team's model list applies.
    let (s, k) = api.post("/key/generate", json!({"team_id": "core"})).await;
    assert_eq!(s, 200, "{k}");
    let tk = k["key"].as_str().unwrap().to_owned();
    assert_eq!(api.chat(&tk, "gpt-4o").await.0, 200);
    let (s, e) = api.chat(&tk, "other").await;
    assert_eq!(s, 401);
    assert_eq!(e["error"]["type"], "team_model_access_denied");
    let (s, i) = api.get("/team/info?team_id=core").await;
    assert_eq!(s, 200, "{i}");
    assert_eq!(i["team_info"]["team_alias"], "Core");
    assert_eq!(i["keys"].as_array().unwrap().len(), 1);
    assert_eq!(api.get("/team/info?team_id=nope").await.0, 404);
    let (s, l) = api.get("/team/list").await;
    assert_eq!(s, 200);
    assert_eq!(l.as_array().unwrap().len(), 2);
    assert_eq!(api.call("GET", "/team/list", &tk, None).await.0, 403);
    // Blocking the team blocks its keys.
    api.post("/team/block", json!({"team_id": "core"})).await;
    assert_eq!(api.chat(&tk, "gpt-4o").await.0, 401);
    api.post("/team/unblock", json!({"team_id": "core"})).await;
    assert_eq!(api.chat(&tk, "gpt-4o").await.0, 200);

    // Users.
    let (s, u) = api.post("/user/new", json!({"user_id": "carol", "user_email": "c@example.com", "max_budget": 5, "teams": ["core"]})).await;
    assert_eq!(s, 200, "{u}");
    assert!(u["key"].as_str().unwrap().starts_with("sk-"));
    assert_eq!(u["teams"], json!(["core"]));
    assert_eq!(
        api.post("/user/new", json!({"user_id": "carol"})).await.0,
        400
    );
    assert_eq!(
        api.post("/user/new", json!({"teams": ["nope"]})).await.0,
        400
    );
    assert_eq!(
        api.post("/user/new", json!({"max_budget": -2})).await.0,
        400
    );
    let (s, i) = api.get("/user/info?user_id=carol").await;
    assert_eq!(s, 200, "{i}");
    assert_eq!(i["user_info"]["user_email"], "c@example.com");
    assert_eq!(i["keys"].as_array().unwrap().len(), 1);
    let ukey = u["key"].as_str().unwrap();
    assert_eq!(api.call("GET", "/user/info", ukey, None).await.0, 200);
    assert_eq!(
        api.call("GET", "/user/info?user_id=ann", ukey, None)
            .await
            .0,
        403
    );
    assert_eq!(api.get("/user/info?user_id=nobody").await.0, 404);
    let (s, u2) = api
        .post(
            "/user/update",
            json!({"user_id": "carol", "user_alias": "C"}),
        )
        .await;
    assert_eq!(s, 200, "{u2}");
    assert_eq!(u2["user_alias"], "C");
    let (s, l) = api.get("/user/list").await;
    assert_eq!(s, 200);
    assert_eq!(l["total"], 3, "ann and bob (from the team) and carol: {l}");
    let (s, d) = api
        .post("/user/delete", json!({"user_ids": ["carol"]}))
        .await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(
        api.post("/user/delete", json!({"user_ids": ["carol"]}))
            .await
            .0,
        404
    );

    // Budgets.
    let (s, b) = api.post("/budget/new", json!({"budget_id": "small", "max_budget": 0.5, "rpm_limit": 100, "budget_duration": "daily"})).await;
    assert_eq!(s, 200, "{b}");
    assert!(b["budget_reset_at"].is_string());
    assert_eq!(
        api.post("/budget/new", json!({"budget_id": "small"}))
            .await
            .0,
        400
    );
    assert_eq!(
        api.post("/budget/new", json!({"max_budget": -1})).await.0,
        400
    );
    let (s, b) = api.get("/budget/info?budget_id=small").await;
    assert_eq!((s, b["max_budget"].clone()), (StatusCode::OK, json!(0.5)));
    let (s, bl) = api
        .post("/budget/info", json!({"budgets": ["small"]}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(bl[0]["budget_id"], "small");
    let (s, b) = api
        .post(
            "/budget/update",
            json!({"budget_id": "small", "max_budget": 1.5}),
        )
        .await;
    assert_eq!((s, b["max_budget"].clone()), (StatusCode::OK, json!(1.5)));
    assert_eq!(
        api.post("/budget/update", json!({"budget_id": "nope"}))
            .await
            .0,
        404
    );
    let (_, l) = api.get("/budget/list").await;
    assert_eq!(l.as_array().unwrap().len(), 1);

    // Customers: inline budget fields make a budget row; budget_id links to one.
    let (s, c) = api
        .post(
            "/customer/new",
            json!({"user_id": "cust-1", "max_budget": 2.0, "alias": "Acme"}),
        )
        .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["litellm_budget_table"]["max_budget"], 2.0);
    let (s, c2) = api
        .post(
            "/end_user/new",
            json!({"user_id": "cust-2", "budget_id": "small"}),
        )
        .await;
    assert_eq!(s, 200, "{c2}");
    assert_eq!(c2["budget_id"], "small");
    assert_eq!(
        api.post("/customer/new", json!({"user_id": "cust-1"}))
            .await
            .0,
        400
    );
    assert_eq!(
        api.post("/customer/new", json!({"alias": "no id"})).await.0,
        400
    );
    assert_eq!(
        api.post("/customer/new", json!({"user_id": "x", "max_budget": -3}))
            .await
            .0,
        400
    );
    assert_eq!(
        api.post(
            "/customer/new",
            json!({"user_id": "y", "budget_id": "nope"})
        )
        .await
        .0,
        400
    );
    let (s, i) = api.get("/customer/info?end_user_id=cust-1").await;
    assert_eq!(s, 200);
    assert_eq!(i["alias"], "Acme");
    assert_eq!(api.get("/customer/info?end_user_id=nope").await.0, 404);
    let (s, u) = api
        .post(
            "/customer/update",
            json!({"user_id": "cust-1", "max_budget": 3.0}),
        )
        .await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["litellm_budget_table"]["max_budget"], 3.0);
    // A blocked customer is refused.
    api.post("/customer/block", json!({"user_ids": ["cust-1"]}))
        .await;
    let (s, _) = api
        .call("POST", "/v1/chat/completions", MASTER, Some(json!({"model": "gpt-4o", "user": "cust-1", "messages": [{"role": "user", "content": "hi"}]})))
        .await;
    assert_eq!(s, 403);
    api.post("/customer/unblock", json!({"user_ids": ["cust-1"]}))
        .await;
    let (s, l) = api.get("/customer/list").await;
    assert_eq!((s, l.as_array().unwrap().len()), (StatusCode::OK, 2));
    let (s, _) = api
        .post("/customer/delete", json!({"user_ids": ["cust-2"]}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        api.post("/customer/delete", json!({"user_ids": ["cust-2"]}))
            .await
            .0,
        404
    );
    assert_eq!(
        api.post("/budget/delete", json!({"id": "small"})).await.0,
        200
    );
    assert_eq!(
        api.post("/budget/delete", json!({"id": "small"})).await.0,
        404
    );

    // Deleting a team deletes its keys too (LiteLLM does): a key left behind would escape the
    // team's budget and model list.
    let (s, d) = api
        .post("/team/delete", json!({"team_ids": ["core"]}))
        .await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(api.chat(&tk, "gpt-4o").await.0, 401);
    assert_eq!(api.get(&format!("/key/info?key={tk}")).await.0, 404);
    assert_eq!(
        api.post("/team/delete", json!({"team_ids": ["core"]}))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn teams_users_customers_budgets_sqlite() {
    teams_users_customers_budgets(None).await;
}

#[tokio::test]
async fn teams_users_customers_budgets_postgres() {
    let Some(url) = db::fresh_pg("teams_users_customers_budgets_postgres").await else {
        return;
    };
    teams_users_customers_budgets(Some(url)).await;
}

/// Keys survive a restart: they live in the store, hashed.
#[tokio::test]
async fn keys_persist_across_restarts_sqlite() {
    let api = Api {
        gw: start(None),
        c: client(),
    };
    let (_, g) = api
        .post("/key/generate", json!({"key_alias": "keep"}))
        .await;
    let key = g["key"].as_str().unwrap().to_owned();
    let dir = api.gw.into_dir();
    let db = std::fs::read(dir.path().join("tollgate.db")).unwrap();
    assert!(
        !db.windows(key.len()).any(|w| w == key.as_bytes()),
        "plaintext key stored"
    );
    let gw = gateway(&config()).dir(dir).start();
    let api = Api { gw, c: client() };
    assert_eq!(api.chat(&key, "gpt-4o").await.0, 200);
}

/// `POST /v2/key/info`, `GET /key/aliases` and `POST /key/{key}/reset_spend`.
async fn key_info_v2_aliases_and_reset_spend(db: Option<String>) {
    let api = Api {
        gw: start(db.as_deref()),
        c: client(),
    };
    let mut keys = Vec::new();
    for alias in ["alpha", "beta"] {
        let (s, g) = api
            .post(
                "/key/generate",
                json!({"key_alias": alias, "max_budget": 10.0}),
            )
            .await;
        assert_eq!(s, 200, "{g}");
        keys.push(g["key"].as_str().unwrap().to_owned());
    }

    let (s, v) = api
        .post(
            "/v2/key/info",
            json!({"keys": [keys[0], keys[1], "sk-nope"]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["key"].as_array().unwrap().len(), 3);
    let aliases: Vec<&str> = v["info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key_alias"].as_str().unwrap())
        .collect();
    assert_eq!(aliases, ["alpha", "beta"]);
    // A key may ask about itself, not about another.
    let (s, _) = api
        .call(
            "POST",
            "/v2/key/info",
            &keys[0],
            Some(json!({"keys": [keys[0]]})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = api
        .call(
            "POST",
            "/v2/key/info",
            &keys[0],
            Some(json!({"keys": [keys[1]]})),
        )
        .await;
    assert_eq!(s, 403);
    let (s, e) = api.post("/v2/key/info", json!({})).await;
    assert_eq!(s, 400, "{e}");
    assert_eq!(e["error"]["param"], "keys");

    let (s, a) = api.get("/key/aliases").await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["aliases"], json!(["alpha", "beta"]));
    let (s, _) = api.call("GET", "/key/aliases", &keys[0], None).await;
    assert_eq!(s, 403);

    // Spend set to 2.5, then reset: not above it, not negative, admin only.
    let (s, u) = api
        .post("/key/update", json!({"key": keys[0], "spend": 2.5}))
        .await;
    assert_eq!(s, 200, "{u}");
    let path = format!("/key/{}/reset_spend", keys[0]);
    let (s, e) = api.post(&path, json!({"reset_to": 3.0})).await;
    assert_eq!(s, 400, "{e}");
    let (s, e) = api.post(&path, json!({"reset_to": -1})).await;
    assert_eq!(s, 400, "{e}");
    let (s, _) = api
        .call("POST", &path, &keys[0], Some(json!({"reset_to": 0})))
        .await;
    assert_eq!(s, 403);
    let (s, r) = api.post(&path, json!({"reset_to": 1.0})).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["spend"], 1.0);
    assert_eq!(r["previous_spend"], 2.5);
    assert_eq!(
        r["key_hash"].as_str().unwrap(),
        tollgate::auth::hash_token(&keys[0])
    );
    let (s, i) = api.get(&format!("/key/info?key={}", keys[0])).await;
    assert_eq!(s, 200, "{i}");
    assert_eq!(i["info"]["spend"], 1.0);
    let (s, _) = api
        .post("/key/sk-unknown/reset_spend", json!({"reset_to": 0}))
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn key_info_v2_aliases_and_reset_spend_sqlite() {
    key_info_v2_aliases_and_reset_spend(None).await;
}

#[tokio::test]
async fn key_info_v2_aliases_and_reset_spend_postgres() {
    let Some(url) = db::fresh_pg("key_info_v2_aliases_and_reset_spend_postgres").await else {
        return;
    };
    key_info_v2_aliases_and_reset_spend(Some(url)).await;
}
