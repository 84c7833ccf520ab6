//! Keeping knockd's ruleset in the kernel: replaced in one transaction on reload, put back
//! when someone removes or changes it, waited for while fw4 is away; the admin's attached sets
//! are watched and only reported, as they are not knockd's to create.

use std::time::Duration;

use log::{debug, error, info, warn};

use super::Granter;
use crate::config::Config;
use crate::grant::attach::{AttachError, check_attached_sets};
use crate::grant::legacy_command::Spawner;
use crate::grant::nft::Ruleset;
use crate::grant::{Firewall, FirewallError};
use crate::log_lines;

impl<F: Firewall, S: Spawner> Granter<F, S> {
    /// Checks the sets attach-mode doors of `config` name; reads only.
    pub fn check_attached(&mut self, config: &Config) -> Result<(), AttachError> {
        check_attached_sets(config, &mut self.firewall)
    }

    /// Replaces the ruleset with `config`'s in one transaction (removing the old table if it was
    /// renamed, and the sets of doors that are gone); on error the old one stays.
    pub fn reconfigure(&mut self, config: &Config) -> Result<(), FirewallError> {
        let ruleset = Ruleset::for_config(config);
        if !ruleset.is_empty() {
            self.firewall.install(&ruleset, self.installed.as_ref())?;
            self.installed = Some(ruleset);
        } else {
            // No door guards a port any more (all attach now, say): the old drops would keep
            // those ports shut for good. They go, where they were and under the new name.
            for old in self.installed.take().into_iter().chain([ruleset]) {
                clear(&mut self.firewall, &old, "the last config")?;
            }
        }
        self.refill.reset();
        // Doors that are gone took their sets, and their grants, with them.
        let names: Vec<&str> = config.doors.iter().filter(|d| d.open.is_some()).map(|d| d.name.as_str()).collect();
        self.ledger.retain_doors(&names);
        Ok(())
    }

    /// Checks that the kernel still holds exactly what the daemon installed, and puts it back
    /// if not (`nft flush ruleset`, a rule deleted or added by hand): the daemon's ports are
    /// never left unguarded. Grants held by sets that were removed are gone with them. Attached
    /// sets of the admin's are only reported: they are not ours to create.
    ///
    /// `others` says another table changed (a firewall reloaded): sets that someone else's
    /// reload emptied or made again get their live grants back, with the time each has left.
    pub fn verify(&mut self, config: &Config, now: Duration, others: bool) {
        let restored = self.installed.is_some() && self.restore(config);
        let back = self.report_attached(config);
        if restored || others || back {
            let reloaded = std::mem::take(&mut self.owner_reloaded);
            self.refill.run(config, &mut self.firewall, &mut self.ledger, now, restored, reloaded);
        }
    }

    /// Puts the daemon's objects back if someone changed them; whether it did. Inside fw4, a
    /// missing fw4 is said once, and waited for.
    fn restore(&mut self, config: &Config) -> bool {
        let ruleset = Ruleset::for_config(config);
        let what = match self.firewall.drift(&ruleset) {
            Ok(None) => return false,
            Ok(Some(what)) => what,
            Err(FirewallError::NotFound { operation }) if !ruleset.owns_table() => {
                if !std::mem::replace(&mut self.absent, true) {
                    warn!("{}", log_lines::waiting_for_fw4(&operation));
                }
                return false;
            }
            Err(e) => {
                debug!("{}", log_lines::cannot_check(&ruleset.describe(), &e));
                return false;
            }
        };
        warn!("{}", log_lines::putting_back(&what));
        match self.firewall.install(&ruleset, None) {
            Ok(()) => {
                self.absent = false;
                info!("{}", log_lines::restored(&ruleset.describe()));
                true
            }
            Err(e) => {
                error!("{}", log_lines::cannot_restore(&ruleset.describe(), &e));
                false
            }
        }
    }

    /// See [`Engine::note_owner_reload`](crate::engine::Engine::note_owner_reload).
    pub fn note_owner_reload(&mut self) {
        self.owner_reloaded = true;
    }

    /// Says once when an attached set goes missing, and once when they are all back (then
    /// returns true: their grants go back in).
    fn report_attached(&mut self, config: &Config) -> bool {
        match check_attached_sets(config, &mut self.firewall) {
            Ok(()) => {
                if self.missing_attached.take().is_some() {
                    info!("{}", log_lines::ATTACHED_SETS_BACK);
                    return true;
                }
            }
            Err(AttachError::Set { door, message }) => {
                let problem = Some((door, message));
                if self.missing_attached != problem {
                    if let Some((door, message)) = &problem {
                        error!("{}", log_lines::attached_set_unusable(door, message));
                    }
                    self.missing_attached = problem;
                }
            }
            Err(e) => debug!("{}", log_lines::cannot_check("the attached sets", &e)),
        }
        false
    }

    /// The attached set that is missing or unusable now, and why (for `knockd status`).
    pub fn attached_problem(&self) -> Option<&(String, String)> {
        self.missing_attached.as_ref()
    }
}

/// Removes what `ruleset`'s placement holds of knockd's: its own table, or its objects inside
/// fw4 (never fw4's own). `why` names whose they were, for the log.
pub(super) fn clear<F: Firewall>(firewall: &mut F, ruleset: &Ruleset, why: &str) -> Result<(), FirewallError> {
    if ruleset.owns_table() {
        if firewall.remove_table(&ruleset.table)? {
            info!("{}", log_lines::removed_table(&ruleset.table, why));
        }
        return Ok(());
    }
    match firewall.install(&ruleset.emptied(), None) {
        Err(FirewallError::NotFound { .. }) | Ok(()) => Ok(()),
        Err(e) => Err(e),
    }
}
