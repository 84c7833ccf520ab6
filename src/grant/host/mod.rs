//! The host's firewall: every table, chain, rule and set the kernel holds, and what they do
//! with what a door opens.
//!
//! In nftables every base chain on a hook votes, and a drop anywhere is final: a grant in
//! knockd's table cannot overrule another table's drop. So knockd reads the whole ruleset
//! (over netlink: `grant::nft::dump`) and runs the packet a grant lets in through every other
//! table's base chains ([`answer`]), at start, in `knockd check`, on reload and whenever
//! nftables reports a change. What it cannot know (a named set's members, a rate limit, an
//! xtables match) makes the answer "cannot tell", naming it; never a guess.

pub mod answer;
pub mod cond;
pub mod domain;
pub mod eval;
mod lookup;
pub mod model;
pub mod probe;
pub mod regs;
pub mod text;

pub use answer::{Answer, Blocker, answer};
pub use domain::Domain;
pub use model::{Hook, HostRuleset, Table};
pub use probe::{Interface, Probe};
