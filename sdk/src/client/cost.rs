//! What a job may cost before it runs: a bound on its tokens and the max cost locked in the
//! Escrow. The client does not tokenize, so the bound is one a worker can never exceed: byte-level
//! BPE and WordPiece tokenizers never emit more tokens than the text has bytes, plus the chat
//! template's and the special tokens' overhead.

use super::error::{ClientError, Result};
use crate::contracts::MAX_COST_LIMIT;
use crate::job::{JobRequest, Task};

/// Tokens a chat template adds per message (role markers, separators).
pub const TOKENS_PER_MESSAGE: u32 = 8;
/// Tokens a template adds per request (a default system prompt, BOS/EOS, the assistant header).
pub const TOKENS_PER_REQUEST: u32 = 64;
/// Tokens an embedding model adds per input (`[CLS]`, `[SEP]`).
pub const TOKENS_PER_EMBEDDING_INPUT: u32 = 2;

/// The most tokens a job can be billed for: (input, output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBound {
    /// Input tokens at most.
    pub input: u32,
    /// Output tokens at most.
    pub output: u32,
}

fn bytes_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The token bound of a request (see the module doc).
pub fn token_bound(request: &JobRequest) -> TokenBound {
    match &request.task {
        Task::Chat { messages, params } => {
            let text = messages.iter().fold(0u32, |acc, m| {
                acc.saturating_add(bytes_u32(m.content.len() + m.role.len()))
                    .saturating_add(TOKENS_PER_MESSAGE)
            });
            TokenBound {
                input: text.saturating_add(TOKENS_PER_REQUEST),
                output: params.max_tokens,
            }
        }
        Task::Completion { prompt, params } => TokenBound {
            input: bytes_u32(prompt.len()).saturating_add(TOKENS_PER_REQUEST),
            output: params.max_tokens,
        },
        Task::Embeddings { input } => TokenBound {
            input: input.iter().fold(0u32, |acc, s| {
                acc.saturating_add(bytes_u32(s.len()))
                    .saturating_add(TOKENS_PER_EMBEDDING_INPUT)
            }),
            output: 0,
        },
    }
}

/// `bound.input × price_in + bound.output × price_out`, or `None` on overflow.
pub fn cost_of(bound: TokenBound, price_in: u128, price_out: u128) -> Option<u128> {
    u128::from(bound.input)
        .checked_mul(price_in)?
        .checked_add(u128::from(bound.output).checked_mul(price_out)?)
}

/// The max cost to lock: `explicit` when given, else the bound's cost at the prices of the most
/// expensive candidate (any of them may end up serving the job). Refuses costs the Escrow cannot
/// lock (≥ 2^64) as [`ClientError::InsufficientBalance`] against `free`.
pub fn max_cost(
    explicit: Option<u128>,
    bound: TokenBound,
    prices: impl IntoIterator<Item = (u128, u128)>,
    free: u128,
) -> Result<u128> {
    let cost = match explicit {
        Some(c) => c,
        None => {
            let mut most = 0u128;
            for (pi, po) in prices {
                most = most.max(cost_of(bound, pi, po).unwrap_or(u128::MAX));
            }
            most
        }
    };
    if cost >= MAX_COST_LIMIT || cost > free {
        return Err(ClientError::InsufficientBalance { needed: cost, free });
    }
    Ok(cost)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{ChatMessage, GenerationParams};

    fn params(max_tokens: u32) -> GenerationParams {
        GenerationParams {
            max_tokens,
            ..GenerationParams::default()
        }
    }

    #[test]
    fn bounds_count_bytes_and_template_overhead() {
        let chat = JobRequest::chat(
            vec![
                ChatMessage::new("system", "be brief"),
                ChatMessage::new("user", "héllo"),
            ],
            params(50),
        );
        // "system"+"be brief" = 14, "user"+"héllo" = 10 (é is two bytes), 2 × 8 per message.
        assert_eq!(
            token_bound(&chat),
            TokenBound {
                input: 14 + 10 + 16 + TOKENS_PER_REQUEST,
                output: 50
            }
        );
        let completion = JobRequest::completion("abc", params(7));
        assert_eq!(
            token_bound(&completion),
            TokenBound {
                input: 3 + TOKENS_PER_REQUEST,
                output: 7
            }
        );
        let emb = JobRequest::embeddings(vec!["ab".into(), "".into()]);
        assert_eq!(
            token_bound(&emb),
            TokenBound {
                input: 2 + 2 * TOKENS_PER_EMBEDDING_INPUT,
                output: 0
            }
        );
    }

    #[test]
    fn max_cost_takes_the_most_expensive_candidate() {
        let b = TokenBound {
            input: 100,
            output: 10,
        };
        let prices = [(1_000, 3_000), (2_000, 1_000), (500, 9_000)];
        // 100×1000+10×3000 = 130_000; 100×2000+10×1000 = 210_000; 100×500+10×9000 = 140_000.
        assert_eq!(max_cost(None, b, prices, u128::MAX).unwrap(), 210_000);
        assert_eq!(max_cost(Some(5), b, prices, 5).unwrap(), 5);
    }

    #[test]
    fn max_cost_beyond_the_free_balance_is_refused_before_sending() {
        let b = TokenBound {
            input: 100,
            output: 10,
        };
        match max_cost(None, b, [(1_000, 3_000)], 129_999) {
            Err(ClientError::InsufficientBalance { needed, free }) => {
                assert_eq!((needed, free), (130_000, 129_999))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            max_cost(None, b, [(1_000, 3_000)], 130_000).unwrap(),
            130_000
        );
        // Overflowing prices and costs the Escrow cannot lock are refused, never wrapped.
        assert!(matches!(
            max_cost(None, b, [(u128::MAX, 1)], u128::MAX),
            Err(ClientError::InsufficientBalance { .. })
        ));
        assert!(matches!(
            max_cost(Some(MAX_COST_LIMIT), b, [], u128::MAX),
            Err(ClientError::InsufficientBalance { .. })
        ));
        assert_eq!(cost_of(b, u128::MAX, 0), None);
    }
}
