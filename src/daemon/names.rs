//! `--lookup`: host names in log lines, without ever waiting for DNS on the packet path.
//!
//! A source's name is looked up on a background thread the first time it is seen; log lines
//! show `198.18.0.2 (host.example.org)` once the answer is in. The cache and the queue of
//! lookups are bounded, so a flood of spoofed sources cannot grow memory or pile up work.

use std::collections::HashSet;
use std::hash::RandomState;
use std::net::IpAddr;
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex};

use hashlink::LinkedHashMap;

/// Names remembered; the oldest is forgotten first.
const CACHE: usize = 4096;
/// Lookups waiting for the resolver thread; more are skipped, not queued.
const QUEUE: usize = 256;

type Cache = LinkedHashMap<IpAddr, Option<String>, RandomState>;

/// Reverse-DNS names of knocking sources, as far as they are known yet.
#[derive(Default)]
pub struct Names {
    cache: Arc<Mutex<Cache>>,
    asked: HashSet<IpAddr>,
    resolver: Option<SyncSender<IpAddr>>,
}

impl Names {
    /// `addr`, with its host name in parentheses once known. Asks for the name if it is new.
    pub fn describe(&mut self, addr: IpAddr) -> String {
        let known = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&addr).cloned();
        match known {
            Some(Some(name)) => format!("{addr} ({name})"),
            Some(None) => addr.to_string(),
            None => {
                self.ask(addr);
                addr.to_string()
            }
        }
    }

    fn ask(&mut self, addr: IpAddr) {
        if self.asked.len() >= CACHE {
            self.asked.clear();
        }
        if !self.asked.insert(addr) {
            return;
        }
        let cache = Arc::clone(&self.cache);
        // Started on first use, so `knockd -d` forks before this thread exists.
        let resolver = self.resolver.get_or_insert_with(|| {
            let (tx, rx) = mpsc::sync_channel::<IpAddr>(QUEUE);
            std::thread::Builder::new()
                .name("lookup".into())
                .spawn(move || {
                    for addr in rx {
                        let name = dns_lookup::lookup_addr(&addr).ok().filter(|n| *n != addr.to_string());
                        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
                        if cache.len() >= CACHE {
                            cache.pop_front();
                        }
                        cache.insert(addr, name);
                    }
                })
                .expect("cannot start the lookup thread");
            tx
        });
        let _ = resolver.try_send(addr);
    }
}
