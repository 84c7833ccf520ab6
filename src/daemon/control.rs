//! The daemon's side of the control socket ([`crate::control`]): answers `status`, `revoke`,
//! `grant` and `reload` between two rounds of packets, and writes the metrics textfile.

use std::collections::BTreeMap;
use std::time::Duration;

use log::{error, warn};

use super::Daemon;
use crate::config::PortProto;
use crate::control::{Request, Response, SCHEMA, Status, prometheus};
use crate::grant::Firewall;
use crate::grant::legacy_command::Spawner;
use crate::log_lines;

/// How often `metrics.textfile` is rewritten.
pub const METRICS_EVERY: Duration = Duration::from_secs(15);

impl<F: Firewall, S: Spawner> Daemon<F, S> {
    /// Answers every connection waiting on the control socket.
    pub(super) fn serve_control(&mut self) {
        // Bounded: connections that arrive meanwhile wait for the next round.
        for _ in 0..16 {
            let Some(mut connection) = self.control.as_ref().and_then(|c| c.accept()) else { return };
            let uid = connection.uid;
            let response = if uid != 0 && uid != nix::unistd::geteuid().as_raw() {
                warn!("{}", log_lines::control_refused(uid));
                Response::error("only root may ask knockd")
            } else {
                match connection.request() {
                    Ok(request) => self.answer(request, uid),
                    Err(e) => Response::error(e),
                }
            };
            connection.answer(&response);
        }
    }

    fn answer(&mut self, request: Request, uid: u32) -> Response {
        let result = match request {
            Request::Status => return self.status_response(),
            Request::Reload => self.reload(),
            Request::Revoke { address, door } => self.engine.revoke(address, door.as_deref(), uid),
            Request::Grant { address, door, seconds, ports } => {
                match ports.iter().map(|p| PortProto::parse(p)).collect::<Result<Vec<_>, _>>() {
                    Ok(ports) => {
                        let timeout = seconds.map(Duration::from_secs);
                        self.engine.admin_grant(address, &door, timeout, ports, uid)
                    }
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(message) => Response::ok(message),
            Err(message) => Response::error(message),
        }
    }

    fn status_response(&mut self) -> Response {
        match self.status() {
            Ok(status) => Response { status: Some(status), ..Response::ok("") },
            Err(e) => Response::error(format!("cannot read the grants from the kernel: {e}")),
        }
    }

    /// The status document.
    pub(super) fn status(&mut self) -> Result<Status, crate::grant::FirewallError> {
        let (doors, grants) = self.engine.status()?;
        let mut counters = self.counters();
        counters.insert("grants".into(), grants.len() as u64);
        let config = self.engine.config();
        Ok(Status {
            schema: SCHEMA,
            source: "daemon".into(),
            pid: Some(std::process::id()),
            config: self.source.path.display().to_string(),
            uptime_seconds: Some(self.started.elapsed().as_secs()),
            table: crate::grant::nft::Ruleset::for_config(config).table_if_any(),
            doors,
            grants,
            attempts: Some(self.engine.attempts() as u64),
            counters,
        })
    }

    /// Every counter by name: the engine's, the kinds', drops by reason, the kernel's.
    pub(super) fn counters(&self) -> BTreeMap<String, u64> {
        let mut counters: BTreeMap<String, u64> =
            self.engine.counters().into_iter().map(|r| (r.counter.name.to_owned(), r.value)).collect();
        let dropped = self.engine.stats().dropped;
        for reason in crate::packet::Drop::ALL {
            counters.insert(format!("dropped_{}", reason.key()), dropped[reason.index()]);
        }
        let kernel = self.capture.kernel_stats();
        counters.insert("kernel_packets".into(), kernel.packets);
        counters.insert("kernel_drops".into(), kernel.drops);
        counters
    }

    /// Rewrites `metrics.textfile` (atomically) when it is due.
    pub(super) fn write_metrics(&mut self, now: Duration) {
        let Some(path) = self.engine.config().metrics_textfile.clone() else { return };
        if self.metrics_written.is_some_and(|at| now.saturating_sub(at) < METRICS_EVERY) {
            return;
        }
        let first = self.metrics_written.is_none();
        self.metrics_written = Some(now);
        let text = match self.status() {
            Ok(status) => prometheus::render(&status, &crate::engine::counter_descriptions()),
            Err(e) => return error!("{}", log_lines::metrics_cannot_read(&e)),
        };
        if let Err(e) = crate::config::private_file::write_atomic(&path, text.as_bytes(), 0o644) {
            // Said once at start, and then at most every interval.
            let hint = if first { " (the daemon's user must be able to write in that directory)" } else { "" };
            error!("{}", log_lines::metrics_cannot_write(&path, &e, hint));
        }
    }
}
