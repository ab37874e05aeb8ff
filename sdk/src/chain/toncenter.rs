//! [`ChainApi`] over the toncenter HTTP API: v2 for state, get-methods and sending, v3 for
//! transactions (forward paging, lookup by message hash).

use std::str::FromStr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use reqwest::Method;
use serde_json::{Value, json};
use tracing::{debug, warn};

use super::error::{ChainError, ChainResult};
use super::rate_limit::{RateLimit, RateLimiter};
use super::retry::RetryPolicy;
use super::stack::StackEntry;
use super::types::{
    AccountState, AccountStatus, GetMethodResult, Message, SentMessage, Transaction, TxId,
};
use super::{ChainApi, Network};
use crate::tlb::{self, TonAddress};
use crate::wallet::normalized_hash;

/// Default timeout of one HTTP request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// Header toncenter reads the API key from.
pub const API_KEY_HEADER: &str = "X-API-Key";
/// Longest `Retry-After` the client honours; a server asking for more gets a normal backoff and,
/// when the retries run out, a clear error instead of a caller stuck for minutes.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Where and how to reach toncenter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TonCenterConfig {
    /// Base URL, without `/api/v2` (`https://toncenter.com`, `http://127.0.0.1:8081`).
    pub base_url: String,
    /// API key; without one toncenter throttles to about one request per second.
    pub api_key: Option<String>,
    /// Timeout of one request.
    pub timeout: Duration,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// The client's own request budget (toncenter's free-plan limits on toncenter by default).
    pub rate_limit: RateLimit,
}

impl TonCenterConfig {
    /// A config for `base_url` with default timeout and retries.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: None,
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            rate_limit: RateLimit::Auto,
        }
    }

    /// The default endpoint of a named network.
    pub fn for_network(network: Network) -> Self {
        Self::new(network.default_url())
    }
}

/// toncenter client (see the module doc).
#[derive(Debug, Clone)]
pub struct TonCenterClient {
    http: reqwest::Client,
    base: String,
    cfg: TonCenterConfig,
    budget: RateLimiter,
}

impl TonCenterClient {
    /// Builds a client; fails if the URL is not http(s).
    pub fn new(cfg: TonCenterConfig) -> ChainResult<Self> {
        let base = normalize_base_url(&cfg.base_url);
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ChainError::InvalidUrl {
                url: cfg.base_url.clone(),
                reason: "must start with http:// or https://".into(),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .build()
            .map_err(|e| ChainError::InvalidUrl {
                url: cfg.base_url.clone(),
                reason: e.to_string(),
            })?;
        let rps = cfg.rate_limit.resolve(&base, cfg.api_key.is_some());
        let budget = RateLimiter::shared(&base, cfg.api_key.as_deref(), rps);
        Ok(Self {
            http,
            base,
            cfg,
            budget,
        })
    }

    /// The base URL in use.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn call(
        &self,
        call: &'static str,
        method: Method,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> ChainResult<Value> {
        let max = self.cfg.retry.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            self.budget.acquire().await;
            match self.once(call, method.clone(), query, body).await {
                Ok(v) => return Ok(v),
                Err(Failure(e, retry_after)) if e.is_transient() && attempt < max => {
                    // The server's own hint wins over the backoff when it asks for longer.
                    let delay = self
                        .cfg
                        .retry
                        .delay(attempt)
                        .max(retry_after.unwrap_or_default().min(MAX_RETRY_AFTER));
                    warn!(target: "sdk::chain", call, attempt, ?delay, error = %e, "transient failure, retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(Failure(e, _)) if e.is_transient() && attempt > 1 => {
                    return Err(ChainError::RetriesExhausted {
                        call,
                        attempts: attempt,
                        last: Box::new(e),
                    });
                }
                Err(Failure(e, _)) => return Err(e),
            }
        }
    }

    async fn once(
        &self,
        call: &'static str,
        method: Method,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, Failure> {
        let url = format!("{}/api/{call}", self.base);
        let mut req = self.http.request(method, &url).query(query);
        if let Some(key) = &self.cfg.api_key {
            req = req.header(API_KEY_HEADER, key);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        debug!(target: "sdk::chain", call, "request");
        let resp = req.send().await.map_err(|e| self.transport(call, e))?;
        let status = resp.status().as_u16();
        let retry_after = retry_after(resp.headers());
        let text = resp.text().await.map_err(|e| self.transport(call, e))?;
        let json: Option<Value> = serde_json::from_str(&text).ok();
        let message = json
            .as_ref()
            .and_then(|j| j.get("error"))
            .map(|e| {
                e.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| e.to_string())
            })
            .unwrap_or_else(|| text.chars().take(300).collect());
        if is_rejected_external(&message) {
            return Err(ChainError::Rejected {
                call,
                exit_code: exit_code_in(&message),
                message,
            }
            .into());
        }
        if !(200..300).contains(&status) {
            return Err(Failure(
                ChainError::Http {
                    call,
                    status,
                    message,
                },
                retry_after,
            ));
        }
        let json = json.ok_or_else(|| {
            decode_err(
                call,
                format!("not JSON: {}", text.chars().take(200).collect::<String>()),
            )
        })?;
        if call.starts_with("v2/") {
            if json.get("ok").and_then(Value::as_bool) != Some(true) {
                return Err(ChainError::Http {
                    call,
                    status,
                    message,
                }
                .into());
            }
            return json
                .get("result")
                .cloned()
                .ok_or_else(|| decode_err(call, "no result").into());
        }
        Ok(json)
    }

    fn transport(&self, call: &'static str, e: reqwest::Error) -> Failure {
        Failure::from(if e.is_timeout() {
            ChainError::Timeout {
                call,
                after: self.cfg.timeout,
            }
        } else {
            ChainError::Transport { call, source: e }
        })
    }
}

/// A failed attempt, with the server's `Retry-After` when it sent one.
struct Failure(ChainError, Option<Duration>);

impl From<ChainError> for Failure {
    fn from(e: ChainError) -> Self {
        Failure(e, None)
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by toncenter and is ignored).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The base URL without a trailing slash or API path: `https://toncenter.com/api/v2/` and
/// `https://toncenter.com/api/v3` both mean `https://toncenter.com` (the client adds the path).
pub fn normalize_base_url(url: &str) -> String {
    let mut base = url.trim().trim_end_matches('/');
    for suffix in ["/jsonRPC", "/api/v2", "/api/v3", "/api"] {
        base = base
            .strip_suffix(suffix)
            .unwrap_or(base)
            .trim_end_matches('/');
    }
    base.to_owned()
}

fn is_rejected_external(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("external message was not accepted") || m.contains("cannot apply external message")
}

fn exit_code_in(msg: &str) -> Option<i32> {
    let m = msg.to_ascii_lowercase();
    for key in ["exit code: ", "exit code ", "exitcode=", "exit_code: "] {
        if let Some(i) = m.find(key) {
            let rest = &m[i + key.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '-'))
                .unwrap_or(rest.len());
            if let Ok(v) = rest[..end].parse() {
                return Some(v);
            }
        }
    }
    None
}

fn decode_err(call: &'static str, reason: impl Into<String>) -> ChainError {
    ChainError::Decode {
        call,
        reason: reason.into(),
    }
}

fn str_u128(v: &Value, call: &'static str, what: &str) -> ChainResult<u128> {
    match v {
        Value::String(s) => s
            .parse()
            .map_err(|_| decode_err(call, format!("{what}: not an integer: {s:?}"))),
        Value::Number(n) => n
            .as_u64()
            .map(u128::from)
            .ok_or_else(|| decode_err(call, format!("{what}: not an unsigned integer"))),
        _ => Err(decode_err(call, format!("{what}: missing"))),
    }
}

/// Decodes a 32-byte hash given as hex or (url-safe) base64, as toncenter does in different places.
pub(crate) fn parse_hash(s: &str) -> Option<[u8; 32]> {
    let bytes = if s.len() == 64 && s.bytes().all(|c| c.is_ascii_hexdigit()) {
        hex::decode(s).ok()?
    } else {
        STANDARD.decode(s).or_else(|_| URL_SAFE.decode(s)).ok()?
    };
    bytes.try_into().ok()
}

fn parse_cell_b64(s: &str) -> Option<tlb::ArcCell> {
    if s.is_empty() {
        return None;
    }
    let bytes = STANDARD.decode(s).ok()?;
    tlb::boc_root(&bytes).ok()
}

fn parse_addr(v: &Value) -> Option<TonAddress> {
    v.as_str()
        .filter(|s| !s.is_empty())
        .and_then(|s| TonAddress::from_str(s).ok())
}

fn parse_msg_v3(v: &Value) -> Option<Message> {
    if v.is_null() {
        return None;
    }
    let opcode = match v.get("opcode") {
        Some(Value::String(s)) => {
            let s = s.trim_start_matches("0x");
            u32::from_str_radix(s, 16).ok()
        }
        Some(Value::Number(n)) => n.as_i64().map(|x| x as u32),
        _ => None,
    };
    Some(Message {
        hash: v
            .get("hash")
            .and_then(Value::as_str)
            .and_then(parse_hash)
            .unwrap_or_default(),
        hash_norm: v
            .get("hash_norm")
            .and_then(Value::as_str)
            .and_then(parse_hash),
        source: v.get("source").and_then(parse_addr),
        destination: v.get("destination").and_then(parse_addr),
        value: v
            .get("value")
            .and_then(|x| x.as_str())
            .and_then(|s| s.parse().ok()),
        bounced: v.get("bounced").and_then(Value::as_bool).unwrap_or(false),
        opcode,
        body: v
            .pointer("/message_content/body")
            .and_then(Value::as_str)
            .and_then(parse_cell_b64),
    })
}

fn parse_tx_v3(v: &Value) -> ChainResult<Transaction> {
    const CALL: &str = "v3/transactions";
    let account = parse_addr(v.get("account").unwrap_or(&Value::Null))
        .ok_or_else(|| decode_err(CALL, "transaction without account"))?;
    let hash = v
        .get("hash")
        .and_then(Value::as_str)
        .and_then(parse_hash)
        .ok_or_else(|| decode_err(CALL, "transaction without hash"))?;
    let lt = str_u128(v.get("lt").unwrap_or(&Value::Null), CALL, "lt")? as u64;
    let desc = v.get("description").cloned().unwrap_or(Value::Null);
    let exit_code = desc
        .pointer("/compute_ph/exit_code")
        .and_then(Value::as_i64)
        .map(|x| x as i32);
    let action_result_code = desc
        .pointer("/action/result_code")
        .and_then(Value::as_i64)
        .map(|x| x as i32);
    Ok(Transaction {
        account,
        id: TxId { lt, hash },
        now: v.get("now").and_then(Value::as_u64).unwrap_or(0),
        in_msg: v.get("in_msg").and_then(parse_msg_v3),
        out_msgs: v
            .get("out_msgs")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(parse_msg_v3).collect())
            .unwrap_or_default(),
        exit_code,
        action_result_code,
        aborted: desc
            .get("aborted")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        total_fees: v
            .get("total_fees")
            .map(|f| str_u128(f, CALL, "total_fees"))
            .transpose()?
            .unwrap_or(0),
    })
}

fn parse_txs_v3(v: &Value, call: &'static str) -> ChainResult<Vec<Transaction>> {
    v.get("transactions")
        .and_then(Value::as_array)
        .ok_or_else(|| decode_err(call, "no transactions array"))?
        .iter()
        .map(parse_tx_v3)
        .collect()
}

impl ChainApi for TonCenterClient {
    async fn account(&self, address: &TonAddress) -> ChainResult<AccountState> {
        const CALL: &str = "v2/getAddressInformation";
        let r = self
            .call(
                CALL,
                Method::GET,
                &[("address", address.to_base64_url())],
                None,
            )
            .await?;
        let status = match r.get("state").and_then(Value::as_str) {
            Some("active") => AccountStatus::Active,
            Some("frozen") => AccountStatus::Frozen,
            Some("uninitialized") | Some("uninit") | Some("nonexist") => {
                AccountStatus::Uninitialized
            }
            other => return Err(decode_err(CALL, format!("unknown state {other:?}"))),
        };
        let last_tx = r.get("last_transaction_id").and_then(|t| {
            let lt: u64 = t.get("lt")?.as_str()?.parse().ok()?;
            let hash = parse_hash(t.get("hash")?.as_str()?)?;
            (lt != 0).then_some(TxId { lt, hash })
        });
        Ok(AccountState {
            balance: str_u128(r.get("balance").unwrap_or(&Value::Null), CALL, "balance")?,
            status,
            code: r
                .get("code")
                .and_then(Value::as_str)
                .and_then(parse_cell_b64),
            data: r
                .get("data")
                .and_then(Value::as_str)
                .and_then(parse_cell_b64),
            last_tx,
            sync_utime: r.get("sync_utime").and_then(Value::as_u64).unwrap_or(0),
        })
    }

    async fn run_get_method(
        &self,
        address: &TonAddress,
        method: &str,
        stack: &[StackEntry],
    ) -> ChainResult<GetMethodResult> {
        const CALL: &str = "v2/runGetMethod";
        let stack_json = stack
            .iter()
            .map(StackEntry::to_json)
            .collect::<ChainResult<Vec<_>>>()?;
        let body =
            json!({ "address": address.to_base64_url(), "method": method, "stack": stack_json });
        let r = self.call(CALL, Method::POST, &[], Some(&body)).await?;
        let exit_code = r
            .get("exit_code")
            .and_then(Value::as_i64)
            .ok_or_else(|| decode_err(CALL, "no exit_code"))? as i32;
        if exit_code != 0 && exit_code != 1 {
            return Err(ChainError::GetMethodFailed {
                method: method.to_owned(),
                address: address.to_base64_url(),
                exit_code,
            });
        }
        let stack = r
            .get("stack")
            .and_then(Value::as_array)
            .ok_or_else(|| decode_err(CALL, "no stack"))?
            .iter()
            .map(|e| StackEntry::from_json(e).map_err(|reason| decode_err(CALL, reason)))
            .collect::<ChainResult<Vec<_>>>()?;
        Ok(GetMethodResult {
            exit_code,
            gas_used: r.get("gas_used").and_then(Value::as_u64).unwrap_or(0),
            stack,
        })
    }

    async fn send_boc(&self, boc: &[u8]) -> ChainResult<SentMessage> {
        const CALL: &str = "v3/message";
        // The hashes are ours to compute: endpoints that do not return `message_hash_norm` (older
        // toncenter-compatible servers) must not turn a broadcast that happened into an error.
        let root =
            tlb::boc_root(boc).map_err(|e| decode_err(CALL, format!("the sent BOC: {e}")))?;
        let hash: [u8; 32] = root.cell_hash().into();
        let hash_norm =
            normalized_hash(&root).map_err(|e| decode_err(CALL, format!("the sent BOC: {e}")))?;
        // Re-sending the identical signed external is harmless: the wallet's seqno lets at most
        // one copy execute. So transient failures are retried like any other call.
        let body = json!({ "boc": STANDARD.encode(boc) });
        let r = self.call(CALL, Method::POST, &[], Some(&body)).await?;
        for (k, ours) in [("message_hash", hash), ("message_hash_norm", hash_norm)] {
            let theirs = r.get(k).and_then(Value::as_str).and_then(parse_hash);
            if theirs.is_some_and(|t| t != ours) {
                warn!(target: "sdk::chain", field = k, ours = %hex::encode(ours), "the node reports another hash for the sent message");
            }
        }
        Ok(SentMessage { hash, hash_norm })
    }

    async fn transactions(
        &self,
        address: &TonAddress,
        after_lt: u64,
        limit: u32,
    ) -> ChainResult<Vec<Transaction>> {
        const CALL: &str = "v3/transactions";
        let q = [
            ("account", address.to_hex()),
            ("start_lt", (after_lt + 1).to_string()),
            ("sort", "asc".to_owned()),
            ("limit", limit.to_string()),
            ("offset", "0".to_owned()),
        ];
        let r = self.call(CALL, Method::GET, &q, None).await?;
        parse_txs_v3(&r, CALL)
    }

    async fn transactions_by_message(&self, msg_hash: &[u8; 32]) -> ChainResult<Vec<Transaction>> {
        const CALL: &str = "v3/transactionsByMessage";
        let q = [
            ("msg_hash", hex::encode(msg_hash)),
            ("direction", "in".to_owned()),
        ];
        let r = self.call(CALL, Method::GET, &q, None).await?;
        parse_txs_v3(&r, CALL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_externals_are_recognised_with_exit_code() {
        let m = "LITE_SERVER_UNKNOWN: cannot apply external message to current state : External message was not accepted\nError executing transaction: exit code: 33";
        assert!(is_rejected_external(m));
        assert_eq!(exit_code_in(m), Some(33));
        assert!(!is_rejected_external("rate limit exceeded"));
        assert_eq!(exit_code_in("nothing"), None);
    }

    #[test]
    fn hashes_parse_from_hex_and_base64() {
        let h = [0xabu8; 32];
        assert_eq!(parse_hash(&hex::encode(h)), Some(h));
        assert_eq!(parse_hash(&STANDARD.encode(h)), Some(h));
        assert_eq!(parse_hash(&URL_SAFE.encode(h)), Some(h));
        assert_eq!(parse_hash("short"), None);
    }

    #[test]
    fn api_paths_in_the_base_url_are_dropped() {
        for url in [
            "https://toncenter.com",
            "https://toncenter.com/",
            "https://toncenter.com/api/v2",
            "https://toncenter.com/api/v2/",
            "https://toncenter.com/api/v3",
            "https://toncenter.com/api/v2/jsonRPC",
            " https://toncenter.com/api ",
        ] {
            assert_eq!(normalize_base_url(url), "https://toncenter.com", "{url}");
        }
        let c =
            TonCenterClient::new(TonCenterConfig::new("http://127.0.0.1:8081/api/v2/")).unwrap();
        assert_eq!(c.base_url(), "http://127.0.0.1:8081");
    }

    #[test]
    fn bad_urls_are_refused() {
        let err = TonCenterClient::new(TonCenterConfig::new("ftp://x")).unwrap_err();
        assert!(matches!(err, ChainError::InvalidUrl { .. }));
    }

    #[test]
    fn transaction_json_decodes() {
        let v = json!({
            "account": "0:8333F406820677A8C6BF7F79513E4E3FA8B0E72D3A9D8BA3A4300576341F6BE5",
            "hash": STANDARD.encode([1u8; 32]), "lt": "3000000", "now": 5, "total_fees": "77",
            "in_msg": {"hash": STANDARD.encode([2u8; 32]), "opcode": "0x0000000a", "value": "5", "bounced": false,
                       "message_content": {"body": "te6cckEBAQEAAgAAAEysuc0="}},
            "out_msgs": [],
            "description": {"aborted": false, "compute_ph": {"exit_code": 0}, "action": {"result_code": 0}}
        });
        let tx = parse_tx_v3(&v).unwrap();
        assert_eq!(tx.id.lt, 3_000_000);
        assert_eq!(tx.total_fees, 77);
        assert_eq!(tx.in_msg.as_ref().unwrap().opcode, Some(10));
        assert!(tx.succeeded());
        assert!(parse_tx_v3(&json!({"lt": "1"})).is_err());
    }
}
