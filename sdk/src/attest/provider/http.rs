//! Blocking HTTP GET for the providers (AMD KDS, Intel PCS/PCCS).
//!
//! Providers are called from blocking threads (the node runs them under `spawn_blocking`), and a
//! fetch happens once per attestation, so each request runs on a short-lived thread of its own
//! with a current-thread runtime: callable from anywhere, inside a runtime or not.

use std::collections::BTreeMap;
use std::time::Duration;

use super::super::error::{AttestError, Result};

/// Time limit of one request.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(60);

/// A successful (2xx) reply.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    /// Header names are lower-case.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// GETs `url`; anything but a 2xx is an [`AttestError::Http`].
pub(crate) fn get(url: &str) -> Result<Reply> {
    let err = |reason: String| AttestError::Http {
        url: url.to_owned(),
        reason,
    };
    let owned = url.to_owned();
    let fetch = move || -> std::result::Result<Reply, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async move {
            let client = reqwest::Client::builder()
                .timeout(HTTP_TIMEOUT)
                .build()
                .map_err(|e| e.to_string())?;
            let resp = client.get(&owned).send().await.map_err(|e| e.to_string())?;
            let status = resp.status();
            if !status.is_success() {
                return Err(format!("HTTP {status}"));
            }
            let headers = resp
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect();
            let body = resp.bytes().await.map_err(|e| e.to_string())?.to_vec();
            Ok(Reply { headers, body })
        })
    };
    std::thread::scope(|s| {
        s.spawn(fetch)
            .join()
            .unwrap_or_else(|_| Err("HTTP thread panicked".into()))
    })
    .map_err(err)
}

/// Decodes `%XX` escapes (Intel sends issuer chains URL-encoded in headers).
pub(crate) fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| AttestError::TdxCollateral(format!("bad %-escape in {s:.40}…")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| AttestError::TdxCollateral("header is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%0Ac").unwrap(), "a b\nc");
        assert!(percent_decode("bad%2").is_err());
        assert!(percent_decode("bad%zz").is_err());
    }
}
