//! Tokenizers built from the model's own files: the GGUF's BPE vocabulary and merges (SmolLM2,
//! Qwen2) and a `tokenizer.json` (MiniLM). Also the ChatML chat template both GGUFs ship.

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use crate::error::{Error, Result};
use crate::gguf::Gguf;

/// ggml token type of control tokens (`<|im_start|>` and friends).
const TOKEN_TYPE_CONTROL: i64 = 3;
/// ggml token type of user-defined added tokens (Qwen2.5's `<tool_call>` and friends): matched
/// whole in the text like control tokens, but ordinary text when decoding.
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// The word splitting Qwen2 was trained with (`tokenizer.ggml.pre = "qwen2"`): contractions,
/// letters with one leading non-letter, single digits, punctuation runs, newlines, spaces.
const QWEN2_SPLIT: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

fn tok_err(e: impl std::fmt::Display) -> Error {
    Error::Tokenizer(e.to_string())
}

/// Builds a byte-level BPE tokenizer from `tokenizer.ggml.{tokens,merges,token_type}`.
///
/// The `gpt2` model with one of these pre-tokenizers (`tokenizer.ggml.pre`):
/// - `smollm` (or none): digits split one by one, then GPT-2's byte-level splitting (SmolLM2);
/// - `qwen2`: NFC, then Qwen2's own split ([`QWEN2_SPLIT`]), then bytes mapped without GPT-2's
///   regex.
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
    let pre = match g.metadata.get("tokenizer.ggml.pre") {
        None => "smollm",
        Some(_) => g.get_str("tokenizer.ggml.pre")?,
    };
    match pre {
        "smollm" | "default" => {
            tk.with_pre_tokenizer(Some(Sequence::new(vec![
                Digits::new(true).into(),
                ByteLevel::new(false, true, true).into(),
            ])));
        }
        "qwen2" => {
            let split = Split::new(
                SplitPattern::Regex(QWEN2_SPLIT.into()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(tok_err)?;
            tk.with_normalizer(Some(NFC)).map_err(tok_err)?;
            tk.with_pre_tokenizer(Some(Sequence::new(vec![
                split.into(),
                ByteLevel::new(false, false, false).into(),
            ])));
        }
        other => {
            return Err(Error::Tokenizer(format!(
                "pre-tokenizer {other:?} is not supported (smollm, qwen2)"
            )));
        }
    }
    tk.with_decoder(Some(ByteLevelDecoder::default()));
    let specials: Vec<AddedToken> = tokens
        .iter()
        .zip(&types)
        .filter(|(_, ty)| **ty == TOKEN_TYPE_CONTROL)
        .map(|(t, _)| AddedToken::from(t.to_string(), true))
        .collect();
    tk.add_special_tokens(specials).map_err(tok_err)?;
    let user: Vec<AddedToken> = tokens
        .iter()
        .zip(&types)
        .filter(|(_, ty)| **ty == TOKEN_TYPE_USER_DEFINED)
        .map(|(t, _)| AddedToken::from(t.to_string(), false))
        .collect();
    if !user.is_empty() {
        tk.add_tokens(user).map_err(tok_err)?;
    }
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

/// The ChatML template (`<|im_start|>role\ncontent<|im_end|>\n`) that SmolLM2's and Qwen2's
/// GGUFs carry.
///
/// The GGUF template is Jinja; rather than embed a Jinja engine we recognise ChatML and read the
/// default system prompt out of it, and refuse templates we do not recognise. (Qwen2.5's template
/// also renders tool calls; plain conversations render as here.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTemplate {
    /// System prompt inserted when the conversation does not start with one.
    pub default_system: Option<String>,
}

impl ChatTemplate {
    /// Recognises the GGUF's `tokenizer.chat_template`.
    pub fn from_gguf(g: &Gguf<'_>) -> Result<Self> {
        Self::parse(g.get_str("tokenizer.chat_template")?)
    }

    /// Recognises a ChatML Jinja template. Newlines inside its string literals may be written
    /// as they are (SmolLM2) or as `\n` escapes (Qwen2, converted from JSON).
    pub fn parse(src: &str) -> Result<Self> {
        let src = src.replace("\\n", "\n");
        let chatml = [
            "'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>'",
            "'<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>'",
        ];
        if !chatml.iter().any(|c| src.contains(c)) {
            return Err(Error::Metadata {
                key: "tokenizer.chat_template".into(),
                reason: "not a ChatML template".into(),
            });
        }
        // The literal default system turn: the first `'<|im_start|>system\n…<|im_end|>` whose
        // text is plain (not the branch that splices in the caller's own system message).
        const SYS: &str = "'<|im_start|>system\n";
        let default_system = src.match_indices(SYS).find_map(|(i, _)| {
            let rest = &src[i + SYS.len()..];
            let text = &rest[..rest.find("<|im_end|>")?];
            (!text.contains('\'')).then(|| text.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_smollm2_and_qwen2_chatml_templates() {
        // SmolLM2: real newlines inside the literals, `message['role']`.
        let smol = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are SmolLM<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}";
        let t = ChatTemplate::parse(smol).unwrap();
        assert_eq!(t.default_system.as_deref(), Some("You are SmolLM"));
        // Qwen2.5: `\n` escapes, `message.role`, and a first system literal that splices in the
        // caller's message (skipped) before the default one.
        let qwen = r"{%- if tools %}{{- '<|im_start|>system\n' }}{%- endif %}{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}{%- else %}{{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}{%- endif %}{%- for message in messages %}{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}{%- endfor %}";
        let t = ChatTemplate::parse(qwen).unwrap();
        assert_eq!(
            t.default_system.as_deref(),
            Some("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")
        );
        assert_eq!(
            t.render(&[ChatMessage::new("user", "Hi")]),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful \
             assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert!(ChatTemplate::parse("{{ bos_token }}[INST] {{ message }} [/INST]").is_err());
    }
}
