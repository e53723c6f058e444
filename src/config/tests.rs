use super::*;

fn env() -> Env {
    Env::from_map([
        ("ANTHROPIC_API_KEY", "sk-ant-test"),
        ("MASTER", "sk-master"),
    ])
}

#[test]
fn reads_the_seed_config() {
    let cfg = parse(
        r#"
model_list:
  - model_name: claude-opus-4-6
    litellm_params:
      model: claude-opus-4-6
      api_key: os.environ/ANTHROPIC_API_KEY
  - model_name: gpt-4o
    litellm_params:
      model: gpt-4o
      api_key: os.environ/OPENAI_API_KEY
general_settings:
  master_key: os.environ/MASTER
"#,
        env(),
    )
    .unwrap();
    assert_eq!(cfg.deployments.len(), 2);
    assert_eq!(cfg.deployments[0].provider.name, "anthropic");
    assert_eq!(
        cfg.deployments[0].api_key.as_ref().unwrap().expose(),
        "sk-ant-test"
    );
    assert_eq!(cfg.deployments[1].provider.name, "openai");
    assert!(cfg.deployments[1].api_key.is_none());
    assert!(cfg.warnings.iter().any(|w| w.contains("OPENAI_API_KEY")));
    assert_eq!(cfg.master_key.unwrap().expose(), "sk-master");
}

#[test]
fn unknown_provider_names_the_field_and_suggests() {
    let err = parse(
        "model_list:\n  - model_name: a\n    litellm_params: {model: gpt-4o}\n  - model_name: b\n    litellm_params: {model: gpt-4o}\n  - model_name: c\n    litellm_params:\n      model: antropic/claude-3\n",
        env(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "model_list[2].litellm_params.model: unknown provider \"antropic\" — did you mean \"anthropic\"?"
    );
}

#[test]
fn wrong_types_name_their_path() {
    let err = parse(
        "model_list:\n  - model_name: a\n    litellm_params: {model: gpt-4o, rpm: lots}\n",
        env(),
    )
    .unwrap_err();
    assert_eq!(err.path, "model_list[0].litellm_params.rpm");
    let err = parse("model_list:\n  - litellm_params: {model: gpt-4o}\n", env()).unwrap_err();
    assert!(err.to_string().contains("model_name"), "{err}");
    let err = parse("model_list: 3\n", env()).unwrap_err();
    assert_eq!(err.path, "model_list");
}

#[test]
fn fallbacks_must_name_configured_groups() {
    let err = parse(
        "model_list:\n  - model_name: gpt-4o\n    litellm_params: {model: gpt-4o}\nrouter_settings:\n  fallbacks: [{gpt-4o: [gpt-4oo]}]\n",
        env(),
    )
    .unwrap_err();
    assert_eq!(err.path, "router_settings.fallbacks[0].gpt-4o");
    assert!(err.message.contains("did you mean \"gpt-4o\""), "{err}");
}

#[test]
fn accepted_but_unsupported_keys_are_listed_not_fatal() {
    let cfg = parse(
        "model_list: []\nrouter_settings:\n  enable_pre_call_checks: true\ngeneral_settings:\n  alerting: [slack]\n  master_kye: x\n",
        env(),
    )
    .unwrap();
    assert!(
        cfg.not_yet_supported
            .contains(&"router_settings.enable_pre_call_checks".to_owned())
    );
    assert!(
        cfg.warnings
            .iter()
            .any(|w| w.contains("master_kye") && w.contains("did you mean \"master_key\"")),
        "{:?}",
        cfg.warnings
    );
}

#[test]
fn missing_master_key_variable_is_fatal() {
    let err = parse(
        "general_settings:\n  master_key: os.environ/NOPE\n",
        Env::from_map::<[(&str, &str); 0], &str, &str>([]),
    )
    .unwrap_err();
    assert_eq!(err.path, "general_settings.master_key");
}

#[test]
fn environment_variables_feed_os_environ() {
    let cfg = parse(
        "environment_variables:\n  MY_KEY: sk-x\nmodel_list:\n  - model_name: m\n    litellm_params: {model: openai/m, api_key: os.environ/MY_KEY, api_base: 'http://127.0.0.1:9/v1'}\n",
        env(),
    )
    .unwrap();
    assert_eq!(
        cfg.deployments[0].api_key.as_ref().unwrap().expose(),
        "sk-x"
    );
}

#[test]
fn redis_url_from_router_settings() {
    let cfg = parse(
        "router_settings:\n  redis_host: 127.0.0.1\n  redis_port: 6379\n  redis_password: pw\n",
        env(),
    )
    .unwrap();
    assert_eq!(cfg.redis.unwrap().url, "redis://:pw@127.0.0.1:6379");
}
