//! End-to-end tests: the real daemon in network namespaces, against the real kernel.
//! They need root; run them with `integration/test` (which `.ci/run` calls).

mod check_vs_kernel;
mod classic;
mod classic_logs;
mod client;
mod coexist;
mod commands;
mod control;
mod core;
mod counting;
mod datagram;
mod fail_closed;
mod fwknop;
mod fwknop_admin;
mod grants;
mod host;
mod install;
mod knocks;
mod logs;
mod ops;
mod owners;
mod processes;
mod reliability;
mod router;
mod spa;
mod spa_attack;
mod support;
