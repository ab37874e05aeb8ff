//! A fault-injecting HTTP/1.1 proxy for tests: sits between the client and localnet and, per
//! request path, answers with an error status, drops the connection (before or after forwarding),
//! or delays the answer. One request per connection (it forces `Connection: close`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What to do with a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this HTTP status without forwarding.
    Status(u16),
    /// Close the connection without forwarding or answering.
    Drop,
    /// Forward (so the request takes effect), then close without answering.
    DropAfterForward,
    /// Forward, then wait this long before answering (to trip client timeouts).
    Delay(Duration),
    /// Answer 429 with `Retry-After: N` (seconds) without forwarding.
    RetryAfter(u16),
    /// Forward (so the request takes effect), then answer 200 with this JSON body instead of the
    /// upstream's (an older or different toncenter-compatible server).
    ReplaceBody(&'static str),
}

#[derive(Debug)]
struct Rule {
    path: String,
    fault: Fault,
    remaining: usize,
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    /// Requests seen per path (before faults).
    seen: HashMap<String, usize>,
    /// Requests forwarded to upstream per path.
    forwarded: HashMap<String, usize>,
}

/// A running proxy.
#[derive(Debug, Clone)]
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`: where to send requests instead of the upstream.
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
                let up = upstream.clone();
                tokio::spawn(async move {
                    let _ = serve(sock, &up, st).await;
                });
            }
        });
        Self { url, state }
    }

    /// Applies `fault` to the next `times` requests whose path contains `path`.
    pub fn inject(&self, path: &str, fault: Fault, times: usize) {
        self.state.lock().unwrap().rules.push(Rule {
            path: path.to_owned(),
            fault,
            remaining: times,
        });
    }

    /// Removes every pending fault.
    pub fn clear(&self) {
        self.state.lock().unwrap().rules.clear();
    }

    /// Requests seen whose path contains `path`.
    pub fn seen(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|(k, _)| k.contains(path))
            .map(|(_, v)| v)
            .sum()
    }

    /// Requests forwarded upstream whose path contains `path`.
    pub fn forwarded(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .forwarded
            .iter()
            .filter(|(k, _)| k.contains(path))
            .map(|(_, v)| v)
            .sum()
    }
}

async fn read_request(sock: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    loop {
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            return Ok(buf);
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Ok(buf);
            }
        }
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn force_close(req: &[u8]) -> Vec<u8> {
    let end = find(req, b"\r\n\r\n").unwrap_or(req.len());
    let head = String::from_utf8_lossy(&req[..end]);
    let mut out = String::new();
    for line in head.split("\r\n") {
        if line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut v = out.into_bytes();
    v.extend_from_slice(req.get(end + 4..).unwrap_or(&[]));
    v
}

async fn serve(mut sock: TcpStream, upstream: &str, st: Arc<Mutex<State>>) -> std::io::Result<()> {
    let req = read_request(&mut sock).await?;
    if req.is_empty() {
        return Ok(());
    }
    let first =
        String::from_utf8_lossy(&req[..find(&req, b"\r\n").unwrap_or(req.len())]).to_string();
    let path = first
        .split(' ')
        .nth(1)
        .unwrap_or("")
        .split('?')
        .next()
        .unwrap_or("")
        .to_owned();
    let fault = {
        let mut s = st.lock().unwrap();
        *s.seen.entry(path.clone()).or_default() += 1;
        let r = s
            .rules
            .iter_mut()
            .find(|r| r.remaining > 0 && path.contains(&r.path));
        r.map(|r| {
            r.remaining -= 1;
            r.fault
        })
    };
    match fault {
        Some(Fault::Status(code)) => {
            let body = format!("{{\"ok\":false,\"error\":\"injected {code}\",\"code\":{code}}}");
            let resp = format!(
                "HTTP/1.1 {code} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            sock.write_all(resp.as_bytes()).await?;
            return sock.shutdown().await;
        }
        Some(Fault::RetryAfter(secs)) => {
            let body = "{\"ok\":false,\"error\":\"Ratelimit exceed\",\"code\":429}";
            let resp = format!(
                "HTTP/1.1 429 Too Many Requests\r\nRetry-After: {secs}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            sock.write_all(resp.as_bytes()).await?;
            return sock.shutdown().await;
        }
        Some(Fault::Drop) => return Ok(()),
        _ => {}
    }
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(&force_close(&req)).await?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp).await?;
    *st.lock().unwrap().forwarded.entry(path).or_default() += 1;
    match fault {
        Some(Fault::DropAfterForward) => Ok(()),
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            let _ = sock.write_all(&resp).await;
            Ok(())
        }
        Some(Fault::ReplaceBody(body)) => {
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            sock.write_all(resp.as_bytes()).await?;
            sock.shutdown().await
        }
        _ => {
            sock.write_all(&resp).await?;
            sock.shutdown().await
        }
    }
}
