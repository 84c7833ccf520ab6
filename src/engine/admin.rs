//! What the control socket asks of the engine: the doors and grants as they are, and an admin's
//! revoke and grant. Grants are read from the kernel (the truth, even after an `nft` by hand),
//! and the ledger adds who opened each.

use std::net::IpAddr;
use std::time::Duration;

use log::info;

use super::{Engine, describe};
use crate::config::{Door, OPEN_TIMEOUT_RANGE, PortProto, check_range};
use crate::control::{DoorStatus, GrantStatus};
use crate::doors::{Grant, Outcomes};
use crate::grant::ledger::Key;
use crate::grant::legacy_command::Spawner;
use crate::grant::sets::{door_sets, opens};
use crate::grant::{Firewall, FirewallError};
use crate::log_lines;

/// What a door listens on, as status shows it: its kinds, and one entry per port (or range).
fn listens(door: &Door) -> (Vec<String>, Vec<String>) {
    let kinds = door.proofs.iter().map(|p| p.name().to_owned()).collect();
    (kinds, door.proofs.iter().flat_map(|p| p.listens()).collect())
}

/// A door as `knockd status` shows it.
pub fn door_status(door: &Door) -> DoorStatus {
    let (kinds, listens) = listens(door);
    let mut opens: Vec<String> = match &door.open {
        None => Vec::new(),
        Some(o) if o.attach.is_some() => {
            let a = o.attach.as_ref().expect("checked");
            [&a.ipv4, &a.ipv6].into_iter().flatten().map(|s| format!("set {} {} {s}", a.family, a.table)).collect()
        }
        Some(o) if o.per_port && o.ports.is_empty() => vec!["any port a client asks for".into()],
        Some(o) => {
            o.ports.iter().map(PortProto::to_string).chain(o.forward.iter().map(|f| format!("forward {f}"))).collect()
        }
    };
    if !door.commands.is_empty() {
        opens.push("command".into());
    }
    let timeout_seconds = door.open.as_ref().map(|o| o.timeout.as_secs());
    DoorStatus { name: door.name.clone(), kinds, listens, opens, timeout_seconds, problems: Vec::new() }
}

impl<F: Firewall, S: Spawner> Engine<F, S> {
    /// A door's status with what stands in its way: other tables' drops, a missing set.
    fn with_problems(&self, mut status: DoorStatus) -> DoorStatus {
        for a in self.coexistence().iter().filter(|a| a.door == status.name && !a.answer.is_accepted()) {
            let subject = a.subject();
            let subject = subject.strip_prefix(&format!("door {}: ", a.door)).unwrap_or(&subject);
            status.problems.push(format!("{subject}: {}", a.answer));
        }
        if let Some((door, message)) = self.granter.attached_problem().filter(|(d, _)| *d == status.name) {
            let _ = door;
            status.problems.push(message.clone());
        }
        status
    }

    /// Every door, and every grant in the kernel with who opened it.
    pub fn status(&mut self) -> Result<(Vec<DoorStatus>, Vec<GrantStatus>), FirewallError> {
        let doors = self.config.doors.iter().map(|d| self.with_problems(door_status(d))).collect();
        let mut grants = Vec::new();
        let config = self.config.clone();
        for door in &config.doors {
            for (family, table, set) in door_sets(&config, door) {
                let listed = match self.firewall_mut().list_elements(family, &table, &set) {
                    Ok(listed) => listed,
                    // An attached set whose owner is restarting: the door's problems say so,
                    // and the other doors' grants are still worth showing.
                    Err(FirewallError::NotFound { .. }) => continue,
                    Err(e) => return Err(e),
                };
                for e in listed {
                    let key = Key { door: door.name.clone(), addr: e.addr, port: e.port };
                    let by = self.granter.ledger().get(&key).and_then(|entry| entry.by.clone());
                    let seconds_left = e.expires.map(|d| d.as_secs());
                    grants.push(GrantStatus {
                        door: door.name.clone(),
                        address: e.addr,
                        opens: opens(&config, &key),
                        by,
                        seconds_left,
                    });
                }
            }
        }
        Ok((doors, grants))
    }

    /// Removes `addr`'s grants (from `door`, or every door) now; says what was removed.
    pub fn revoke(&mut self, addr: IpAddr, door: Option<&str>, uid: u32) -> Result<String, String> {
        if let Some(name) = door.filter(|n| !self.config.doors.iter().any(|d| &d.name == n)) {
            return Err(format!("no door is named {name}"));
        }
        let revoked = self.granter.revoke(&self.config, addr, door, self.now).map_err(|e| e.to_string())?;
        if revoked.is_empty() {
            return Err(format!("{addr} has no grant{}", door.map_or_else(String::new, |d| format!(" on door {d}"))));
        }
        let who = describe(&mut self.names, addr);
        let mut what = Vec::new();
        for key in &revoked {
            let opens = opens(&self.config, key);
            info!("{}", log_lines::revoked(&key.door, &who, &opens, uid));
            what.push(format!("{}: {who}: {opens}", key.door));
        }
        Ok(format!("revoked: {}", what.join("; ")))
    }

    /// Opens `door` for `addr` on an admin's word (`knockd grant`), for `timeout` (else the
    /// door's), the `ports` of a door whose clients name ports.
    pub fn admin_grant(
        &mut self,
        addr: IpAddr,
        door: &str,
        timeout: Option<Duration>,
        ports: Vec<PortProto>,
        uid: u32,
    ) -> Result<String, String> {
        let id =
            self.config.doors.iter().position(|d| d.name == door).ok_or_else(|| format!("no door is named {door}"))?;
        if let Some(t) = timeout {
            check_range(t, OPEN_TIMEOUT_RANGE).map_err(|e| format!("--for {e}"))?;
        }
        let d = &self.config.doors[id];
        if d.open.is_none() && d.commands.is_empty() {
            return Err(format!("door {door} opens nothing and runs no command"));
        }
        let ports = match d.open.as_ref().filter(|o| o.per_port) {
            Some(o) if ports.is_empty() && o.ports.is_empty() => {
                return Err(format!("door {door} opens the ports a client asks for: name them with --port"));
            }
            Some(o) if ports.is_empty() => o.ports.clone(),
            Some(o) => match ports.iter().find(|p| !o.ports.is_empty() && !o.ports.contains(p)) {
                Some(p) => return Err(format!("door {door} does not open {p}")),
                None => ports,
            },
            None if !ports.is_empty() => return Err(format!("door {door} opens its own ports: leave --port out")),
            None => ports,
        };
        let by = Some(format!("admin uid {uid}"));
        let grant = Grant { by, timeout, ports, ..Grant::new(id, addr, addr, addr) };
        let mut outcomes = Outcomes::default();
        outcomes.grants.push(grant);
        let now = self.now;
        self.take(&mut outcomes, now);
        let before = self.stats().grant_errors;
        match self.flush() {
            0 if self.config.doors[id].open.is_some() || self.stats().grant_errors > before => {
                Err(format!("the firewall did not take the grant for {addr} (see the log)"))
            }
            _ => Ok(format!("door {door} opened for {addr}")),
        }
    }
}
