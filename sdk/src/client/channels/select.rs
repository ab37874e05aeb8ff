//! Which channels a request may use and what it may cost: the channel-mode counterpart of
//! [`crate::client::JobOptions`]. A channel's prices are fixed when it is opened, so the limits
//! are checked against a channel's own prices (and, before opening one, the worker's published
//! ones); a cost cap lowers the request's `max_tokens` to what the dearest chosen channel can pay
//! for within it.

use crate::attest::EvidenceKind;
use crate::client::cost::{TokenBound, cost_of};
use crate::client::job::attestation_rank;
use crate::job::{JobRequest, Task};
use crate::tlb::TonAddress;

/// Per-request limits in channel mode; `Default` limits nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestOptions {
    /// Only channels to this worker may serve the request.
    pub worker: Option<TonAddress>,
    /// Weakest attestation accepted: `SevSnp` or `Tdx` refuses Simulated workers.
    pub min_attestation: Option<EvidenceKind>,
    /// Highest price per input token accepted (the channel's), nanoTON.
    pub max_price_in: Option<u128>,
    /// Highest price per output token accepted (the channel's), nanoTON.
    pub max_price_out: Option<u128>,
    /// Workers whose channels are named first, in this order, when they qualify.
    pub preferred_workers: Vec<TonAddress>,
    /// Most one request may cost, nanoTON: `max_tokens` is lowered to fit, and a channel whose
    /// prices cannot pay for the input and one output token within it is not used.
    pub max_cost: Option<u128>,
}

/// What [`RequestOptions`] checks of one channel or worker.
#[derive(Debug, Clone, Copy)]
pub struct Offer<'a> {
    /// The worker.
    pub worker: &'a TonAddress,
    /// What its evidence proved.
    pub kind: EvidenceKind,
    /// Price per input token, nanoTON.
    pub price_in: u128,
    /// Price per output token, nanoTON.
    pub price_out: u128,
}

impl RequestOptions {
    /// Why `offer` may not serve a request of `bound`, or `None` when it may.
    pub fn refusal(&self, offer: Offer<'_>, bound: TokenBound) -> Option<Refusal> {
        if self.worker.as_ref().is_some_and(|w| w != offer.worker) {
            return Some(Refusal::NotPinned);
        }
        if let Some(min) = self.min_attestation
            && attestation_rank(offer.kind) < attestation_rank(min)
        {
            return Some(Refusal::Attestation);
        }
        if self.max_price_in.is_some_and(|m| offer.price_in > m)
            || self.max_price_out.is_some_and(|m| offer.price_out > m)
        {
            return Some(Refusal::Price);
        }
        if let Some(max) = self.max_cost {
            let least = TokenBound {
                input: bound.input,
                output: bound.output.min(1),
            };
            if cost_of(least, offer.price_in, offer.price_out).is_none_or(|c| c > max) {
                return Some(Refusal::Cost);
            }
        }
        None
    }

    /// Whether `offer` may serve a request of `bound`.
    pub fn admits(&self, offer: Offer<'_>, bound: TokenBound) -> bool {
        self.refusal(offer, bound).is_none()
    }

    /// Where `worker` goes in the order of preference (lower first; unlisted workers last).
    pub fn rank(&self, worker: &TonAddress) -> usize {
        self.preferred_workers
            .iter()
            .position(|p| p == worker)
            .unwrap_or(usize::MAX)
    }

    /// Why none of `total` workers qualified, the refusals being those of each one.
    pub fn explain(&self, total: usize, refusals: &[Refusal]) -> String {
        let worst = refusals.iter().max().copied();
        let any = |p: Option<u128>| p.map_or("any".to_owned(), |p| p.to_string());
        match worst {
            None => "no verified worker serves it".to_owned(),
            Some(Refusal::NotPinned) => format!(
                "the pinned worker {} is not among the {total} verified workers serving it",
                self.worker
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            ),
            Some(Refusal::Attestation) => format!(
                "none of the {total} verified workers meets the minimum attestation {}",
                self.min_attestation
                    .map(|k| k.to_string())
                    .unwrap_or_default()
            ),
            Some(Refusal::Price) => format!(
                "none of the {total} verified workers is within the price limits (in ≤ {}, out ≤ {})",
                any(self.max_price_in),
                any(self.max_price_out)
            ),
            Some(Refusal::Cost) => format!(
                "none of the {total} verified workers can serve the request within the max cost {} nanoTON",
                any(self.max_cost)
            ),
        }
    }
}

/// Why a channel or worker was not used, in the order the checks run: the last one reached by
/// any worker says the most about what to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Refusal {
    /// Another worker is pinned.
    NotPinned,
    /// Its attestation is weaker than the minimum.
    Attestation,
    /// A price is above its limit.
    Price,
    /// Even the input and one output token cost more than the max cost.
    Cost,
}

/// `request` with `max_tokens` lowered so that its bound costs at most `max_cost` at each of
/// `prices` (a request names several channels and any of them may serve it); `None` when not
/// even one output token fits. Embeddings have no output to cap and are returned unchanged.
pub fn cap_to_cost(
    mut request: JobRequest,
    bound: TokenBound,
    prices: impl IntoIterator<Item = (u128, u128)>,
    max_cost: u128,
) -> Option<JobRequest> {
    let mut output = bound.output;
    for (price_in, price_out) in prices {
        let left = u128::from(bound.input)
            .checked_mul(price_in)
            .and_then(|c| max_cost.checked_sub(c))?;
        if let Some(fit) = left.checked_div(price_out) {
            output = output.min(u32::try_from(fit).unwrap_or(u32::MAX));
        }
    }
    match &mut request.task {
        Task::Chat { params, .. } | Task::Completion { params, .. } => {
            if output == 0 {
                return None;
            }
            params.max_tokens = output;
        }
        Task::Embeddings { .. } => {}
    }
    Some(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::cost::token_bound;
    use crate::job::{ChatMessage, GenerationParams};

    fn addr(b: u8) -> TonAddress {
        TonAddress::new(0, [b; 32].into())
    }

    fn offer(w: &TonAddress, kind: EvidenceKind, price_in: u128, price_out: u128) -> Offer<'_> {
        Offer {
            worker: w,
            kind,
            price_in,
            price_out,
        }
    }

    const B: TokenBound = TokenBound {
        input: 10,
        output: 100,
    };

    #[test]
    fn no_limit_admits_every_channel() {
        let w = addr(1);
        let o = RequestOptions::default();
        assert!(o.admits(offer(&w, EvidenceKind::Simulated, u128::MAX, u128::MAX), B));
        assert_eq!(o.rank(&w), usize::MAX);
    }

    #[test]
    fn a_pinned_worker_refuses_the_others() {
        let (a, b) = (addr(1), addr(2));
        let o = RequestOptions {
            worker: Some(a.clone()),
            ..Default::default()
        };
        assert!(o.admits(offer(&a, EvidenceKind::Tdx, 1, 1), B));
        assert_eq!(
            o.refusal(offer(&b, EvidenceKind::Tdx, 1, 1), B),
            Some(Refusal::NotPinned)
        );
        assert!(
            o.explain(2, &[Refusal::NotPinned])
                .contains("pinned worker")
        );
    }

    #[test]
    fn minimum_attestation_refuses_simulated_workers_only() {
        let w = addr(1);
        let o = RequestOptions {
            min_attestation: Some(EvidenceKind::Tdx),
            ..Default::default()
        };
        assert_eq!(
            o.refusal(offer(&w, EvidenceKind::Simulated, 1, 1), B),
            Some(Refusal::Attestation)
        );
        // Hardware TEEs rank equal: SEV-SNP meets a TDX minimum.
        assert!(o.admits(offer(&w, EvidenceKind::SevSnp, 1, 1), B));
        assert!(
            o.explain(1, &[Refusal::Attestation])
                .contains("minimum attestation")
        );
    }

    #[test]
    fn price_limits_apply_to_each_price_inclusively() {
        let w = addr(1);
        let o = RequestOptions {
            max_price_in: Some(1_000),
            max_price_out: Some(3_000),
            ..Default::default()
        };
        assert!(o.admits(offer(&w, EvidenceKind::Tdx, 1_000, 3_000), B));
        for (pi, po) in [(1_001, 3_000), (1_000, 3_001)] {
            assert_eq!(
                o.refusal(offer(&w, EvidenceKind::Tdx, pi, po), B),
                Some(Refusal::Price)
            );
        }
        let why = o.explain(2, &[Refusal::Price, Refusal::Price]);
        assert!(why.contains("in ≤ 1000, out ≤ 3000"), "{why}");
    }

    #[test]
    fn max_cost_refuses_channels_that_cannot_pay_for_the_input_and_one_token() {
        let w = addr(1);
        let o = RequestOptions {
            max_cost: Some(10 * 1_000 + 3_000),
            ..Default::default()
        };
        assert!(o.admits(offer(&w, EvidenceKind::Tdx, 1_000, 3_000), B));
        assert_eq!(
            o.refusal(offer(&w, EvidenceKind::Tdx, 1_000, 3_001), B),
            Some(Refusal::Cost)
        );
        // An embedding request has no output token to pay for.
        let emb = TokenBound {
            input: 10,
            output: 0,
        };
        assert!(o.admits(offer(&w, EvidenceKind::Tdx, 1_300, u128::MAX), emb));
        assert_eq!(
            o.refusal(offer(&w, EvidenceKind::Tdx, u128::MAX, 0), emb),
            Some(Refusal::Cost),
            "an overflowing cost is refused"
        );
    }

    #[test]
    fn preferred_workers_rank_in_the_given_order() {
        let (a, b, c) = (addr(1), addr(2), addr(3));
        let o = RequestOptions {
            preferred_workers: vec![b.clone(), a.clone()],
            ..Default::default()
        };
        assert_eq!((o.rank(&b), o.rank(&a), o.rank(&c)), (0, 1, usize::MAX));
    }

    fn chat(max_tokens: u32) -> JobRequest {
        JobRequest::chat(
            vec![ChatMessage::new("user", "hi")],
            GenerationParams {
                max_tokens,
                ..GenerationParams::default()
            },
        )
    }

    fn max_tokens(r: &JobRequest) -> u32 {
        match &r.task {
            Task::Chat { params, .. } | Task::Completion { params, .. } => params.max_tokens,
            Task::Embeddings { .. } => 0,
        }
    }

    #[test]
    fn a_cost_cap_lowers_max_tokens_to_the_dearest_channel() {
        let r = chat(500);
        let b = token_bound(&r);
        let input = u128::from(b.input);
        // 40 output tokens fit at 3_000, 24 at 5_000: the lower wins.
        let cap = input * 1_000 + 120_000;
        let capped = cap_to_cost(r.clone(), b, [(1_000, 3_000), (1_000, 5_000)], cap).unwrap();
        assert_eq!(max_tokens(&capped), 24);
        let nb = token_bound(&capped);
        assert!(cost_of(nb, 1_000, 5_000).unwrap() <= cap);
        // A cap above the request's own bound changes nothing.
        let same = cap_to_cost(r.clone(), b, [(1, 1)], u128::MAX).unwrap();
        assert_eq!(same, r);
        // A free output price leaves max_tokens alone.
        assert_eq!(
            max_tokens(&cap_to_cost(r.clone(), b, [(1, 0)], input).unwrap()),
            500
        );
        // Not one output token, or not even the input: refused.
        assert!(cap_to_cost(r.clone(), b, [(1_000, 3_000)], input * 1_000 + 2_999).is_none());
        assert!(cap_to_cost(r, b, [(1_000, 3_000)], input * 1_000 - 1).is_none());
    }

    #[test]
    fn embeddings_are_not_capped_but_their_input_must_fit() {
        let r = JobRequest::embeddings(vec!["abc".into()]);
        let b = token_bound(&r);
        let input = u128::from(b.input);
        assert_eq!(
            cap_to_cost(r.clone(), b, [(10, 99)], input * 10).unwrap(),
            r
        );
        assert!(cap_to_cost(r, b, [(10, 99)], input * 10 - 1).is_none());
    }
}
