//! Any text as a classic knockd.conf: an error or a config, never a panic; and its `--convert`
//! YAML loads to the same config.
#![no_main]

use knockd::doors::Kinds;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(mut config) = knockd::doors::sequence::knockd_conf::parse("fuzz.conf", text) {
        // Notices are about how the knockd.conf is written; the YAML says it plainly.
        config.notices.clear();
        let yaml = knockd::config::convert::to_yaml(&config);
        let again = knockd::config::yaml::parse("again.yaml", &yaml, &Kinds).expect("converted YAML loads");
        assert_eq!(again, config);
    }
});
