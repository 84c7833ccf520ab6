//! Any text as knockd.yaml: an error or a config, never a panic; and a config written back by
//! `--convert` loads again to the same config.
#![no_main]

use knockd::doors::Kinds;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(config) = knockd::config::yaml::parse("fuzz.yaml", text, &Kinds) {
        let yaml = knockd::config::convert::to_yaml(&config);
        let again = knockd::config::yaml::parse("again.yaml", &yaml, &Kinds).expect("converted YAML loads");
        assert_eq!(again, config);
    }
});
