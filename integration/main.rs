//! End-to-end tests: the real daemon in network namespaces, against the real kernel.
//! They need root; run them with `integration/test` (which `.ci/run` calls).

mod classic;
mod classic_logs;
mod client;
mod control;
mod core;
mod counting;
mod daemon;
mod fail_closed;
mod frames;
mod fwknop;
mod install;
mod lab;
mod logs;
mod ops;
mod processes;
mod reliability;
mod spa;
mod spa_packets;
