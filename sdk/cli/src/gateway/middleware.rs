//! The gateway's own API key and CORS.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::error::GatewayError;

/// Methods a browser may use.
const CORS_METHODS: &str = "GET, POST, OPTIONS";
/// Request headers a browser may send (what the OpenAI JS client sends).
const CORS_HEADERS: &str = "authorization, content-type, openai-organization, openai-project, x-stainless-arch, x-stainless-lang, x-stainless-os, x-stainless-package-version, x-stainless-retry-count, x-stainless-runtime, x-stainless-runtime-version, x-stainless-timeout";
/// How long a browser may cache a preflight answer, seconds.
const CORS_MAX_AGE: &str = "600";

/// The expected key, kept as a digest so comparing it takes the same time whatever the input.
#[derive(Debug, Clone)]
pub struct ApiKey(Option<[u8; 32]>);

impl ApiKey {
    /// `None` lets every request through.
    pub fn new(key: Option<&str>) -> Self {
        Self(key.map(|k| Sha256::digest(k.as_bytes()).into()))
    }

    /// Checks the `Authorization: Bearer` header.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), GatewayError> {
        let Some(want) = &self.0 else { return Ok(()) };
        let got = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
            .filter(|k| !k.is_empty())
            .ok_or(GatewayError::MissingApiKey)?;
        let got: [u8; 32] = Sha256::digest(got.as_bytes()).into();
        // Constant time over the digests: no early exit on the first differing byte.
        let diff = want
            .iter()
            .zip(got.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff == 0 {
            Ok(())
        } else {
            Err(GatewayError::InvalidApiKey)
        }
    }
}

/// The token of `Authorization: Bearer <token>`. The scheme name is case-insensitive (RFC 9110
/// §11.1: `BEARER`, `bearer` and `Bearer` are the same scheme) and may be followed by several
/// spaces.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Refuses requests without the gateway's key.
pub async fn require_key(State(key): State<Arc<ApiKey>>, req: Request, next: Next) -> Response {
    match key.check(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// Allowed browser origins; empty means CORS off (no headers at all).
#[derive(Debug, Clone, Default)]
pub struct Cors {
    origins: Vec<String>,
}

impl Cors {
    /// From the configured list (`*` = any origin).
    pub fn new(origins: &[String]) -> Self {
        Self {
            origins: origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_owned())
                .collect(),
        }
    }

    /// Whether any origin is configured.
    pub fn enabled(&self) -> bool {
        !self.origins.is_empty()
    }

    fn allows(&self, origin: &str) -> bool {
        self.origins
            .iter()
            .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    }
}

/// Answers preflights and adds the CORS headers for allowed origins.
pub async fn cors(State(cors): State<Arc<Cors>>, req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_owned);
    let Some(origin) = origin.filter(|o| cors.allows(o)) else {
        return next.run(req).await;
    };
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut res = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.append(header::VARY, HeaderValue::from_static("origin"));
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("x-cocoon-attestation"),
    );
    if preflight {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(CORS_METHODS),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(CORS_HEADERS),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(CORS_MAX_AGE),
        );
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    #[test]
    fn api_key_is_checked_only_when_set() {
        assert!(ApiKey::new(None).check(&HeaderMap::new()).is_ok());
        let k = ApiKey::new(Some("sekret"));
        assert_eq!(k.check(&HeaderMap::new()), Err(GatewayError::MissingApiKey));
        assert_eq!(
            k.check(&headers("Bearer ")),
            Err(GatewayError::MissingApiKey)
        );
        assert_eq!(
            k.check(&headers("Basic sekret")),
            Err(GatewayError::MissingApiKey)
        );
        assert_eq!(
            k.check(&headers("Bearer sekreT")),
            Err(GatewayError::InvalidApiKey)
        );
        assert!(k.check(&headers("Bearer sekret")).is_ok());
        // Scheme names are case-insensitive; the key is not.
        for ok in ["BEARER sekret", "bearer sekret", "BeArEr  sekret"] {
            assert!(k.check(&headers(ok)).is_ok(), "{ok}");
        }
        assert_eq!(
            k.check(&headers("BEARER SEKRET")),
            Err(GatewayError::InvalidApiKey)
        );
        assert_eq!(
            k.check(&headers("Bearersekret")),
            Err(GatewayError::MissingApiKey)
        );
    }

    #[test]
    fn cors_origins() {
        assert!(!Cors::new(&[]).enabled());
        let c = Cors::new(&["https://app.example/".into()]);
        assert!(c.allows("https://app.example"));
        assert!(!c.allows("https://evil.example"));
        assert!(Cors::new(&["*".into()]).allows("http://x"));
    }
}
