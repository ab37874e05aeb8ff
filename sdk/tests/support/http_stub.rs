//! A one-thread HTTP/1.1 server standing in for AMD's KDS and Intel's PCCS: it answers GETs from
//! a route table and records every path asked for.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// One canned reply: headers and body.
#[derive(Debug, Clone, Default)]
pub struct Canned {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A running stub; it lives as long as the test process.
#[derive(Debug, Clone)]
pub struct HttpStub {
    pub base_url: String,
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl HttpStub {
    /// Serves `routes` (path with query → reply); anything else is a 404.
    pub fn start(routes: BTreeMap<String, Canned>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                // Drain the request headers.
                let mut h = String::new();
                while reader.read_line(&mut h).is_ok_and(|n| n > 2) {
                    h.clear();
                }
                seen.lock().unwrap().push(path.clone());
                let reply = match routes.get(&path) {
                    Some(c) => {
                        let mut head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n",
                            c.body.len()
                        );
                        for (k, v) in &c.headers {
                            head.push_str(&format!("{k}: {v}\r\n"));
                        }
                        head.push_str("\r\n");
                        let mut out = head.into_bytes();
                        out.extend_from_slice(&c.body);
                        out
                    }
                    None => {
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                let _ = stream.write_all(&reply);
            }
        });
        Self { base_url, requests }
    }

    pub fn requested(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// `%XX`-encodes everything but unreserved characters (as Intel encodes issuer chains).
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
