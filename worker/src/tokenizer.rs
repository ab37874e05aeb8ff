//! Tokenizers built from the model's own files: the GGUF's BPE vocabulary and merges (SmolLM2)
//! and a `tokenizer.json` (MiniLM). Also the ChatML chat template SmolLM2 ships.

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, Tokenizer};

use crate::error::{Error, Result};
use crate::gguf::Gguf;

/// ggml token type of control tokens (`<|im_start|>` and friends).
const TOKEN_TYPE_CONTROL: i64 = 3;

fn tok_err(e: impl std::fmt::Display) -> Error {
    Error::Tokenizer(e.to_string())
}

/// Builds a byte-level BPE tokenizer from `tokenizer.ggml.{tokens,merges,token_type}`.
///
/// Only the `gpt2` model with the `smollm` (or default) pre-tokenizer is supported: digits split
/// one by one, then GPT-2 byte-level splitting, which is what SmolLM2 was trained with.
pub fn from_gguf(g: &Gguf<'_>) -> Result<Tokenizer> {
    let model = g.get_str("tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(Error::Tokenizer(format!(
            "tokenizer model {model:?} is not supported (gpt2 only)"
        )));
    }
    let tokens = g.get_str_array("tokenizer.ggml.tokens")?;
    let merges = g.get_str_array("tokenizer.ggml.merges")?;
    let types = g.get_int_array("tokenizer.ggml.token_type")?;
    if types.len() != tokens.len() {
        return Err(Error::Tokenizer(
            "token_type and tokens differ in length".into(),
        ));
    }
    let vocab: ahash::AHashMap<String, u32> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), i as u32))
        .collect();
    let merges = merges
        .iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| Error::Tokenizer(format!("merge {m:?} has no space")))
        })
        .collect::<Result<Vec<_>>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(tok_err)?;
    let mut tk = Tokenizer::new(bpe);
    tk.with_pre_tokenizer(Some(Sequence::new(vec![
        Digits::new(true).into(),
        ByteLevel::new(false, true, true).into(),
    ])));
    tk.with_decoder(Some(ByteLevelDecoder::default()));
    let specials: Vec<AddedToken> = tokens
        .iter()
        .zip(&types)
        .filter(|(_, ty)| **ty == TOKEN_TYPE_CONTROL)
        .map(|(t, _)| AddedToken::from(t.to_string(), true))
        .collect();
    tk.add_special_tokens(specials).map_err(tok_err)?;
    Ok(tk)
}

/// Loads a `tokenizer.json` and turns off its fixed padding and truncation: the engine pads a
/// batch to its longest member and rejects over-long inputs itself.
pub fn from_json_bytes(bytes: &[u8]) -> Result<Tokenizer> {
    let mut tk = Tokenizer::from_bytes(bytes).map_err(tok_err)?;
    tk.with_padding(None);
    tk.with_truncation(None).map_err(tok_err)?;
    Ok(tk)
}

/// Token ids of `text`, special tokens in the text recognised.
pub fn encode(tk: &Tokenizer, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
    Ok(tk
        .encode(text, add_special_tokens)
        .map_err(tok_err)?
        .get_ids()
        .to_vec())
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl ChatMessage {
    /// A message with the given role.
    pub fn new(role: &str, content: &str) -> Self {
        Self {
            role: role.to_string(),
            content: content.to_string(),
        }
    }
}

/// The ChatML template (`<|im_start|>role\ncontent<|im_end|>\n`) that SmolLM2's GGUF carries.
///
/// The GGUF template is Jinja; rather than embed a Jinja engine we recognise ChatML and read the
/// default system prompt out of it, and refuse templates we do not recognise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTemplate {
    /// System prompt inserted when the conversation does not start with one.
    pub default_system: Option<String>,
}

impl ChatTemplate {
    /// Recognises the GGUF's `tokenizer.chat_template`.
    pub fn from_gguf(g: &Gguf<'_>) -> Result<Self> {
        let src = g.get_str("tokenizer.chat_template")?;
        if !src
            .contains("'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>'")
        {
            return Err(Error::Metadata {
                key: "tokenizer.chat_template".into(),
                reason: "not a ChatML template".into(),
            });
        }
        const SYS: &str = "'<|im_start|>system\n";
        let default_system = src.find(SYS).and_then(|i| {
            let rest = &src[i + SYS.len()..];
            rest.find("<|im_end|>").map(|j| rest[..j].to_string())
        });
        Ok(Self { default_system })
    }

    /// Renders messages and the assistant prompt that asks the model to answer.
    pub fn render(&self, messages: &[ChatMessage]) -> String {
        let mut out = String::new();
        if let (Some(sys), Some(first)) = (&self.default_system, messages.first())
            && first.role != "system"
        {
            out.push_str(&format!("<|im_start|>system\n{sys}<|im_end|>\n"));
        }
        for m in messages {
            out.push_str(&format!(
                "<|im_start|>{}\n{}<|im_end|>\n",
                m.role, m.content
            ));
        }
        out.push_str("<|im_start|>assistant\n");
        out
    }
}
