//! Which providers Tollgate knows: LiteLLM's model prefixes, their API family, default base URL
//! and the environment variable that holds their key.

/// The wire protocol a provider speaks; one adapter per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// OpenAI Chat Completions at `{api_base}/chat/completions` with a Bearer key.
    OpenAiCompat,
    /// Azure OpenAI: `{api_base}/openai/deployments/{model}/chat/completions?api-version=`, `api-key`.
    Azure,
    /// Anthropic Messages API.
    Anthropic,
    /// Answers locally without a network call.
    Mock,
    /// A LiteLLM provider Tollgate recognises but cannot call yet.
    Unsupported,
}

#[derive(Debug, PartialEq, Eq)]
pub struct ProviderSpec {
    /// LiteLLM's prefix, e.g. `openai`, `groq`, `anthropic`.
    pub name: &'static str,
    pub family: Family,
    /// Base URL used when the deployment sets no `api_base`.
    pub default_base: &'static str,
    /// Environment variables tried, in order, when the deployment sets no `api_key`.
    pub key_env: &'static [&'static str],
    /// Environment variable that may override the base URL.
    pub base_env: Option<&'static str>,
}

const fn compat(
    name: &'static str,
    default_base: &'static str,
    key_env: &'static [&'static str],
) -> ProviderSpec {
    ProviderSpec {
        name,
        family: Family::OpenAiCompat,
        default_base,
        key_env,
        base_env: None,
    }
}

const fn unsupported(name: &'static str) -> ProviderSpec {
    ProviderSpec {
        name,
        family: Family::Unsupported,
        default_base: "",
        key_env: &[],
        base_env: None,
    }
}

pub static PROVIDERS: &[ProviderSpec] = &[
    ProviderSpec {
        name: "openai",
        family: Family::OpenAiCompat,
        default_base: "https://api.openai.com/v1",
        key_env: &["OPENAI_API_KEY"],
        base_env: Some("OPENAI_API_BASE"),
    },
    // `text-completion-openai` is routed to the same chat endpoint family; kept for config parity.
    compat("custom_openai", "", &["OPENAI_API_KEY"]),
    compat(
        "openrouter",
        "https://openrouter.ai/api/v1",
        &["OPENROUTER_API_KEY", "OR_API_KEY"],
    ),
    compat("groq", "https://api.groq.com/openai/v1", &["GROQ_API_KEY"]),
    compat(
        "deepseek",
        "https://api.deepseek.com/beta",
        &["DEEPSEEK_API_KEY"],
    ),
    compat(
        "together_ai",
        "https://api.together.ai/v1",
        &[
            "TOGETHERAI_API_KEY",
            "TOGETHER_AI_API_KEY",
            "TOGETHER_API_KEY",
        ],
    ),
    compat(
        "fireworks_ai",
        "https://api.fireworks.ai/inference/v1",
        &[
            "FIREWORKS_AI_API_KEY",
            "FIREWORKS_API_KEY",
            "FIREWORKSAI_API_KEY",
        ],
    ),
    compat("mistral", "https://api.mistral.ai/v1", &["MISTRAL_API_KEY"]),
    compat(
        "codestral",
        "https://codestral.mistral.ai/v1",
        &["CODESTRAL_API_KEY"],
    ),
    compat("xai", "https://api.x.ai/v1", &["XAI_API_KEY"]),
    compat(
        "perplexity",
        "https://api.perplexity.ai",
        &["PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"],
    ),
    compat(
        "deepinfra",
        "https://api.deepinfra.com/v1/openai",
        &["DEEPINFRA_API_KEY"],
    ),
    compat(
        "cerebras",
        "https://api.cerebras.ai/v1",
        &["CEREBRAS_API_KEY"],
    ),
    compat(
        "sambanova",
        "https://api.sambanova.ai/v1",
        &["SAMBANOVA_API_KEY"],
    ),
    compat(
        "nvidia_nim",
        "https://integrate.api.nvidia.com/v1",
        &["NVIDIA_NIM_API_KEY"],
    ),
    compat(
        "novita",
        "https://api.novita.ai/v3/openai",
        &["NOVITA_API_KEY"],
    ),
    compat(
        "meta_llama",
        "https://api.llama.com/compat/v1",
        &["LLAMA_API_KEY"],
    ),
    ProviderSpec {
        name: "hosted_vllm",
        family: Family::OpenAiCompat,
        default_base: "http://localhost:8000/v1",
        key_env: &["HOSTED_VLLM_API_KEY"],
        base_env: Some("HOSTED_VLLM_API_BASE"),
    },
    ProviderSpec {
        name: "vllm",
        family: Family::OpenAiCompat,
        default_base: "http://localhost:8000/v1",
        key_env: &["HOSTED_VLLM_API_KEY"],
        base_env: Some("HOSTED_VLLM_API_BASE"),
    },
    ProviderSpec {
        name: "lm_studio",
        family: Family::OpenAiCompat,
        default_base: "http://localhost:1234/v1",
        key_env: &["LM_STUDIO_API_KEY"],
        base_env: Some("LM_STUDIO_API_BASE"),
    },
    ProviderSpec {
        name: "ollama_chat",
        family: Family::OpenAiCompat,
        // Ollama's OpenAI-compatible API lives under /v1 of its server.
        default_base: "http://localhost:11434/v1",
        key_env: &["OLLAMA_API_KEY"],
        base_env: Some("OLLAMA_API_BASE"),
    },
    ProviderSpec {
        name: "ollama",
        family: Family::OpenAiCompat,
        default_base: "http://localhost:11434/v1",
        key_env: &["OLLAMA_API_KEY"],
        base_env: Some("OLLAMA_API_BASE"),
    },
    compat(
        "llamafile",
        "http://127.0.0.1:8080/v1",
        &["LLAMAFILE_API_KEY"],
    ),
    compat("litellm_proxy", "", &["LITELLM_PROXY_API_KEY"]),
    compat(
        "github",
        "https://models.inference.ai.azure.com",
        &["GITHUB_API_KEY"],
    ),
    // Gemini's OpenAI-compatible endpoint serves chat completions, streaming and tools.
    compat(
        "gemini",
        "https://generativelanguage.googleapis.com/v1beta/openai",
        &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
    ),
    ProviderSpec {
        name: "azure",
        family: Family::Azure,
        default_base: "",
        key_env: &["AZURE_API_KEY", "AZURE_OPENAI_API_KEY"],
        base_env: Some("AZURE_API_BASE"),
    },
    ProviderSpec {
        name: "anthropic",
        family: Family::Anthropic,
        default_base: "https://api.anthropic.com",
        key_env: &["ANTHROPIC_API_KEY"],
        base_env: Some("ANTHROPIC_API_BASE"),
    },
    ProviderSpec {
        name: "mock",
        family: Family::Mock,
        default_base: "",
        key_env: &[],
        base_env: None,
    },
    unsupported("bedrock"),
    unsupported("vertex_ai"),
    unsupported("vertex_ai_beta"),
    unsupported("cohere"),
    unsupported("cohere_chat"),
    unsupported("huggingface"),
    unsupported("sagemaker"),
    unsupported("watsonx"),
    unsupported("replicate"),
    unsupported("databricks"),
    unsupported("cloudflare"),
    unsupported("azure_ai"),
    unsupported("text-completion-openai"),
    unsupported("voyage"),
    unsupported("jina_ai"),
];

/// Looks a provider up by its LiteLLM prefix.
pub fn by_name(name: &str) -> Option<&'static ProviderSpec> {
    PROVIDERS.iter().find(|p| p.name == name)
}

/// Splits `provider/model`. A bare name is given the provider LiteLLM would infer.
pub fn split_model(model: &str) -> Result<(&'static ProviderSpec, &str), UnknownProvider> {
    if let Some((prefix, rest)) = model.split_once('/') {
        if let Some(spec) = by_name(prefix) {
            return Ok((spec, rest));
        }
        return Err(UnknownProvider {
            given: prefix.to_owned(),
            suggestion: suggest(prefix),
        });
    }
    Ok((infer_bare(model), model))
}

/// Provider of a bare model name (`claude-*` → anthropic, `gemini-*` → gemini, else openai).
pub fn infer_bare(model: &str) -> &'static ProviderSpec {
    let name = if model.starts_with("claude") {
        "anthropic"
    } else if model.starts_with("gemini") {
        "gemini"
    } else if model == "mock" || model.starts_with("mock-") {
        "mock"
    } else {
        "openai"
    };
    by_name(name).unwrap_or(&PROVIDERS[0])
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownProvider {
    pub given: String,
    pub suggestion: Option<&'static str>,
}

impl std::fmt::Display for UnknownProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown provider \"{}\"", self.given)?;
        match self.suggestion {
            Some(s) => write!(f, " — did you mean \"{s}\"?"),
            None => write!(
                f,
                " — known providers: {}",
                PROVIDERS
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// The closest known provider name, if it is close enough to be a typo.
pub fn suggest(given: &str) -> Option<&'static str> {
    closest(given, PROVIDERS.iter().map(|p| p.name))
}

/// The candidate within a small edit distance of `given`.
pub fn closest<'a>(given: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let given = given.to_ascii_lowercase();
    candidates
        .map(|c| (levenshtein(&given, c), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_bare_names_like_litellm() {
        assert_eq!(infer_bare("claude-opus-4-6").name, "anthropic");
        assert_eq!(infer_bare("gpt-4o").name, "openai");
        assert_eq!(infer_bare("o1-mini").name, "openai");
        assert_eq!(infer_bare("gemini-2.5-pro").name, "gemini");
    }

    #[test]
    fn suggests_the_typoed_provider() {
        let err = split_model("antropic/claude-3").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown provider \"antropic\" — did you mean \"anthropic\"?"
        );
        assert_eq!(split_model("groq/llama").unwrap().1, "llama");
    }
}
