//! A TCP proxy between two components of the devnet: it records every byte of every connection,
//! per direction (to prove what an observer of the link sees; [`crate::wire`] decodes it the way
//! an observer would), and can be cut (a worker that disappears from the network without saying
//! goodbye).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The bytes of one proxied connection, per direction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flow {
    /// From the side that connected to the proxy to the upstream.
    pub up: Vec<u8>,
    /// From the upstream back.
    pub down: Vec<u8>,
}

/// A running proxy to one upstream address.
#[derive(Debug, Clone)]
pub struct TcpProxy {
    addr: SocketAddr,
    flows: Arc<Mutex<Vec<Flow>>>,
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
            flows: Arc::default(),
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

    /// Every connection so far with the bytes that crossed it in each direction.
    pub fn flows(&self) -> Vec<Flow> {
        self.flows.lock().expect("proxy record lock").clone()
    }

    /// How many bytes crossed the proxy so far, both directions.
    pub fn recorded_len(&self) -> usize {
        self.flows().iter().map(|f| f.up.len() + f.down.len()).sum()
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
        let index = {
            let mut flows = self.flows.lock().expect("proxy record lock");
            flows.push(Flow::default());
            flows.len() - 1
        };
        let up = copy(&mut ir, &mut ow, &self.flows, index, |f| &mut f.up);
        let down = copy(&mut or, &mut iw, &self.flows, index, |f| &mut f.down);
        tokio::select! {
            _ = async { tokio::join!(up, down) } => {}
            _ = cut.wait_for(|c| *c) => {}
        }
    }
}

async fn copy(
    from: &mut (impl AsyncReadExt + Unpin),
    to: &mut (impl AsyncWriteExt + Unpin),
    flows: &Mutex<Vec<Flow>>,
    index: usize,
    side: fn(&mut Flow) -> &mut Vec<u8>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        side(&mut flows.lock().expect("proxy record lock")[index]).extend_from_slice(&buf[..n]);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
