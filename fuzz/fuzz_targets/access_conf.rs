//! Any text as fwknopd's access.conf, and any text as its fwknopd.conf: an error or a config,
//! never a panic; a config whose stanzas are all served converts to YAML that loads to the same
//! doors.
#![no_main]

use knockd::doors::Kinds;
use knockd::doors::fwknop::FwknopDoor;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (access, fwknopd) = text.split_once("\n----\n").unwrap_or((text, ""));
    let Ok(mut config) = knockd::doors::fwknop::access_conf::parse("fuzz.conf", access) else { return };
    if knockd::doors::fwknop::fwknopd_conf::apply("fwknopd.conf", fwknopd, &mut config).is_err() {
        return;
    }
    if config.doors.iter().all(|d| d.fwknop().is_some_and(|f| f.refused.is_none() && f.nat == Default::default())) {
        let yaml = knockd::config::convert::to_yaml(&config);
        let again = knockd::config::yaml::parse("again.yaml", &yaml, &Kinds).expect("converted YAML loads");
        assert_eq!(again.doors, config.doors);
    }
});
