//! What a job may cost: the worker bills `tokens_in × price_in + tokens_out × price_out` at its
//! registered prices (the Worker contract checks exactly that), and the Escrow refuses any
//! settlement above the job's max cost — so the node caps output tokens to stay within it.

use cocoon_sdk::receipt::expected_cost;

/// Why a job cannot be afforded at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// Even the input (and the minimum output) costs more than the job's max cost.
    #[error("max cost {max_cost} nanoTON does not cover {needed} nanoTON ({what})")]
    TooLow {
        /// The job's max cost.
        max_cost: u128,
        /// The least the job would cost.
        needed: u128,
        /// What that covers.
        what: &'static str,
    },
}

/// The most output tokens a text job may produce: at most `max_tokens`, and no more than the max
/// cost leaves after the input. At least one output token must be affordable.
pub fn output_budget(
    tokens_in: u32,
    max_tokens: u32,
    price_in: u128,
    price_out: u128,
    max_cost: u128,
) -> Result<u32, BudgetError> {
    let input = expected_cost(tokens_in, 0, price_in, price_out).map_err(|_| overflow(max_cost))?;
    let left = max_cost.checked_sub(input).ok_or(BudgetError::TooLow {
        max_cost,
        needed: input,
        what: "the input tokens",
    })?;
    // A free output token makes any length affordable.
    let affordable = left
        .checked_div(price_out)
        .unwrap_or(u128::from(max_tokens));
    let budget = u32::try_from(affordable.min(u128::from(max_tokens))).unwrap_or(max_tokens);
    if budget == 0 {
        return Err(BudgetError::TooLow {
            max_cost,
            needed: input.saturating_add(price_out),
            what: "the input and one output token",
        });
    }
    Ok(budget)
}

/// A cost beyond u128 is never affordable.
fn overflow(max_cost: u128) -> BudgetError {
    BudgetError::TooLow {
        max_cost,
        needed: u128::MAX,
        what: "the input tokens (overflow)",
    }
}

/// The cost of an embeddings job (input tokens only), if within `max_cost`.
pub fn input_only_cost(
    tokens_in: u32,
    price_in: u128,
    max_cost: u128,
) -> Result<u128, BudgetError> {
    let cost = expected_cost(tokens_in, 0, price_in, 0).map_err(|_| overflow(max_cost))?;
    if cost > max_cost {
        return Err(BudgetError::TooLow {
            max_cost,
            needed: cost,
            what: "the input tokens",
        });
    }
    Ok(cost)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn budget_boundaries() {
        // 10 in × 2 = 20; 3 per output token.
        assert_eq!(output_budget(10, 100, 2, 3, 20 + 3 * 5), Ok(5));
        assert_eq!(output_budget(10, 100, 2, 3, 20 + 3 * 5 + 2), Ok(5));
        assert_eq!(output_budget(10, 4, 2, 3, 1_000), Ok(4));
        assert!(matches!(
            output_budget(10, 4, 2, 3, 20 + 2),
            Err(BudgetError::TooLow { needed: 23, .. })
        ));
        assert!(matches!(
            output_budget(10, 4, 2, 3, 19),
            Err(BudgetError::TooLow { needed: 20, .. })
        ));
        assert_eq!(output_budget(10, 4, 0, 0, 0), Ok(4));
        assert_eq!(input_only_cost(7, 3, 21), Ok(21));
        assert!(input_only_cost(7, 3, 20).is_err());
        assert!(input_only_cost(u32::MAX, u128::MAX, u128::MAX).is_err());
    }

    proptest! {
        #[test]
        fn the_billed_cost_never_exceeds_max_cost(
            tokens_in in 0u32..100_000,
            max_tokens in 1u32..5_000,
            price_in in 0u128..1_000_000,
            price_out in 0u128..1_000_000,
            max_cost in 0u128..1_000_000_000_000,
        ) {
            if let Ok(out) = output_budget(tokens_in, max_tokens, price_in, price_out, max_cost) {
                prop_assert!(out >= 1 && out <= max_tokens);
                let cost = expected_cost(tokens_in, out, price_in, price_out).unwrap();
                prop_assert!(cost <= max_cost);
            }
        }
    }
}
