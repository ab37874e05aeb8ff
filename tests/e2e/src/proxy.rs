//! A TCP proxy between two components of the devnet: it records every byte in both directions
//! (to prove what an observer of the link sees) and can be cut (a worker that disappears from the
//! network without saying goodbye).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy to one upstream address.
#[derive(Debug, Clone)]
pub struct TcpProxy {
    addr: SocketAddr,
    recorded: Arc<Mutex<Vec<u8>>>,
    cut: Arc<AtomicBool>,
    cut_tx: watch::Sender<bool>,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let (cut_tx, _) = watch::channel(false);
        let proxy = Self {
            addr: listener.local_addr()?,
            recorded: Arc::default(),
            cut: Arc::default(),
            cut_tx,
        };
        let p = proxy.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if p.cut.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let p = p.clone();
                tokio::spawn(async move {
                    if let Ok(outbound) = TcpStream::connect(upstream).await {
                        p.pipe(inbound, outbound).await;
                    }
                });
            }
        });
        Ok(proxy)
    }

    /// Where to connect instead of the upstream.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every byte that crossed the proxy so far, both directions interleaved in arrival order.
    pub fn recorded(&self) -> Vec<u8> {
        self.recorded.lock().expect("proxy record lock").clone()
    }

    /// Drops every open connection and refuses new ones, without closing handshakes: to the
    /// peers it looks like the link went dead.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        let _ = self.cut_tx.send(true);
    }

    async fn pipe(&self, inbound: TcpStream, outbound: TcpStream) {
        let (mut ir, mut iw) = inbound.into_split();
        let (mut or, mut ow) = outbound.into_split();
        let mut cut = self.cut_tx.subscribe();
        let up = copy(&mut ir, &mut ow, &self.recorded);
        let down = copy(&mut or, &mut iw, &self.recorded);
        tokio::select! {
            _ = async { tokio::join!(up, down) } => {}
            _ = cut.wait_for(|c| *c) => {}
        }
    }
}

async fn copy(
    from: &mut (impl AsyncReadExt + Unpin),
    to: &mut (impl AsyncWriteExt + Unpin),
    record: &Mutex<Vec<u8>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        record
            .lock()
            .expect("proxy record lock")
            .extend_from_slice(&buf[..n]);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
