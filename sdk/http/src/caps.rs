//! Connection caps: how many connections are open overall and per peer IP. A [`Permit`] is
//! held by the connection's socket, so an upgraded connection (a worker's WebSocket) still
//! counts until it closes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts open connections against the two caps.
#[derive(Debug)]
pub struct ConnectionCaps {
    total: usize,
    per_ip: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Permit {
    caps: Arc<ConnectionCaps>,
    ip: IpAddr,
}

impl ConnectionCaps {
    /// Caps of `total` connections, `per_ip` of them from one peer IP (0: no cap).
    pub fn new(total: usize, per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            total,
            per_ip,
            open: Mutex::default(),
        })
    }

    /// A place for a connection from `ip`, or `None` when a cap is reached.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Permit> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let mine = open.by_ip.get(&ip).copied().unwrap_or(0);
        if (self.total != 0 && open.total >= self.total)
            || (self.per_ip != 0 && mine >= self.per_ip)
        {
            return None;
        }
        open.total += 1;
        *open.by_ip.entry(ip).or_insert(0) += 1;
        Some(Permit {
            caps: self.clone(),
            ip,
        })
    }

    /// Connections open now (overall, and from `ip`).
    pub fn open(&self, ip: IpAddr) -> (usize, usize) {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        (open.total, open.by_ip.get(&ip).copied().unwrap_or(0))
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.caps.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.by_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_per_ip_and_overall_and_free_on_drop() {
        let caps = ConnectionCaps::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = caps.admit(a).unwrap();
        let _a2 = caps.admit(a).unwrap();
        assert!(caps.admit(a).is_none(), "per-IP cap");
        let _b1 = caps.admit(b).unwrap();
        assert!(caps.admit(b).is_none(), "overall cap");
        drop(a1);
        assert_eq!(caps.open(a), (2, 1));
        assert!(caps.admit(b).is_some());
        let unlimited = ConnectionCaps::new(0, 0);
        let held: Vec<_> = (0..1000).map(|_| unlimited.admit(a).unwrap()).collect();
        assert_eq!(unlimited.open(a), (1000, 1000));
        drop(held);
        assert_eq!(unlimited.open(a), (0, 0));
    }
}
