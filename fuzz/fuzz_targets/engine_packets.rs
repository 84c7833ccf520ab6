//! Any bytes as a stream of packets through the whole packet path (parser, matcher, engine):
//! never a panic, and the attempt table never exceeds its cap.
#![no_main]

use std::time::Duration;

use knockd::doors::Kinds;
use knockd::engine::Engine;
use knockd::grant::MemoryFirewall;
use knockd::grant::legacy_command::MemorySpawner;
use libfuzzer_sys::fuzz_target;

const CONFIG: &str = "limits: {max_attempts: 8}
doors:
  a: {sequence: [1, \"2/udp\", 1], seq_timeout: 1s, tcp_flags: [syn, \"!ack\"], open: {ports: [22], timeout: 5s}}
  b: {sequence: [2, 3], target: 198.18.0.1, command: \"true %IP%\", stop_command: \"true\"}
";

fuzz_target!(|data: &[u8]| {
    let config = knockd::config::yaml::parse("fuzz.yaml", CONFIG, &Kinds).unwrap();
    let mut engine = Engine::start(config, MemoryFirewall::default(), MemorySpawner::default()).unwrap();
    // Each packet: one byte of time step (ms), one byte of length, then that many bytes.
    let mut now = Duration::ZERO;
    let mut rest = data;
    while let [step, len, tail @ ..] = rest {
        now += Duration::from_millis(u64::from(*step) * 8);
        let len = usize::from(*len).min(tail.len());
        engine.packet(&tail[..len], now);
        assert!(engine.attempts() <= 8);
        engine.flush();
        engine.tick(now);
        rest = &tail[len..];
    }
});
