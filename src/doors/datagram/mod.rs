//! The example door kind: a door that opens on one UDP datagram with a fixed payload.
//!
//! ```yaml
//! doors:
//!   web:
//!     datagram: {port: 40000, payload_file: /etc/knockd/web.payload}
//!     open: {ports: [8080], timeout: 30s}
//! ```
//!
//! A datagram to `port` whose payload is exactly the file's bytes opens the door for its
//! source. The payload is compared in constant time, and is 1 to [`MAX_PAYLOAD`] bytes. It is
//! no better than a knock sequence of one port: whoever sees the datagram can send it again
//! (SPA and fwknop are the kinds that refuse replays). It is here to show what a kind is: this
//! one folder and one line in the kinds list (`doors/mod.rs`), nothing else in the program
//! (DEVELOPERS.md, "Adding a door kind").
//!
//! Its parts, in the order DEVELOPERS.md lists them: the settings ([`Datagram`], what config
//! holds and asks: `knockd check`, `status`, `--convert`, the policies), how knockd.yaml writes
//! them ([`RawDatagram`], [`ReadYaml`]), the description ([`DatagramKind`]: counters, build) and the doors at
//! run time ([`Datagrams`]).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, MapAccess};

use super::{Clock, Counter, DoorError, DoorId, DoorKind, Grant, Kind, Measure, Note, Outcomes, ReadYaml, Reading};
use crate::capture::Lane;
use crate::config::yaml::values::Port;
use crate::config::{Config, Door, PortProto, Proof, ProofSettings, Proto};
use crate::packet::Packet;
use crate::store::Store;

/// Longest payload a door takes: one datagram's, well within what the capture keeps.
pub const MAX_PAYLOAD: usize = 512;

/// A datagram door's settings: `datagram:` in knockd.yaml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// The UDP port the datagram is sent to.
    pub port: u16,
    /// The file that holds the payload (a secret: mode 600).
    pub payload_file: PathBuf,
}

/// `datagram:` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatagram {
    port: Port,
    payload_file: PathBuf,
}

/// `datagram:` as `--convert` writes it.
#[derive(serde::Serialize)]
struct DatagramOut<'a> {
    port: u16,
    payload_file: &'a Path,
}

impl ProofSettings for Datagram {
    fn key(&self) -> &'static str {
        "datagram"
    }

    fn to_yaml(&self) -> serde_yaml_ng::Value {
        let out = DatagramOut { port: self.port, payload_file: &self.payload_file };
        serde_yaml_ng::to_value(out).expect("plain data always serializes")
    }

    fn describe(&self, _door: &Door) -> String {
        format!("a datagram on {}/udp whose payload is {}", self.port, self.payload_file.display())
    }

    fn listens(&self) -> Vec<String> {
        vec![format!("{}/udp", self.port)]
    }

    fn files(&self) -> Vec<&Path> {
        vec![&self.payload_file]
    }

    fn files_mut(&mut self) -> Vec<&mut PathBuf> {
        vec![&mut self.payload_file]
    }
}

/// The datagram kind, as the kinds list names it.
pub struct DatagramKind;

static DATAGRAM_ACCEPTED: Counter =
    Counter::new("datagram_accepted", Measure::Total, "Datagrams whose payload opened a datagram door.");
static DATAGRAM_REJECTED: Counter = Counter::new(
    "datagram_rejected",
    Measure::Total,
    "Datagrams to a datagram door's port whose payload was not the door's.",
);

impl Kind for DatagramKind {
    fn name(&self) -> &'static str {
        "datagram"
    }

    fn counters(&self) -> &'static [&'static Counter] {
        static COUNTERS: [&Counter; 2] = [&DATAGRAM_ACCEPTED, &DATAGRAM_REJECTED];
        &COUNTERS
    }

    fn build(&self, config: &Config, store: &mut dyn Store) -> Result<Option<Box<dyn DoorKind>>, DoorError> {
        let mut doors = Vec::new();
        for (id, door) in config.doors.iter().enumerate() {
            let Some(datagram) = door.proof::<Datagram>() else { continue };
            let payload = read_payload(store, &datagram.payload_file)
                .map_err(|message| DoorError { door: door.name.clone(), message })?;
            doors.push(DatagramDoor { id, door: door.clone(), port: datagram.port, payload });
        }
        Ok((!doors.is_empty()).then(|| Box::new(Datagrams { doors, accepted: 0, rejected: 0 }) as Box<dyn DoorKind>))
    }
}

impl ReadYaml for DatagramKind {
    const KEYS: &'static [&'static str] = &["datagram"];

    fn read<'de, A: MapAccess<'de>>(_key: &str, _door: &str, map: &mut A) -> Result<Proof, A::Error> {
        let raw: RawDatagram = map.next_value()?;
        if raw.port.0.proto != Proto::Tcp {
            // A bare number reads as TCP; the datagram is UDP whatever is written.
            return Err(de::Error::custom("datagram.port: write the port's number (the datagram is UDP)"));
        }
        Ok(Proof::new(Datagram { port: raw.port.0.port, payload_file: raw.payload_file }))
    }
}

/// The payload: the file's bytes, 1 to [`MAX_PAYLOAD`]; a secret, so other users must not be
/// able to read or write the file.
fn read_payload(store: &mut dyn Store, path: &Path) -> Result<Vec<u8>, String> {
    let payload =
        store.read(path, MAX_PAYLOAD as u64, true).map_err(|e| format!("payload file {}: {e}", path.display()))?;
    if payload.is_empty() {
        return Err(format!("payload file {} is empty: write the payload into it", path.display()));
    }
    Ok(payload)
}

/// Whether `a` and `b` are the same bytes, in time that depends on their lengths only.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

/// One datagram door, its payload read.
struct DatagramDoor {
    id: DoorId,
    door: Door,
    port: u16,
    payload: Vec<u8>,
}

/// The datagram door kind at run time.
pub struct Datagrams {
    doors: Vec<DatagramDoor>,
    accepted: u64,
    rejected: u64,
}

impl DoorKind for Datagrams {
    fn ports(&self, out: &mut Vec<PortProto>) {
        out.extend(self.doors.iter().map(|d| PortProto::udp(d.port)));
    }

    /// The datagrams' socket: a flood of them never crowds out knocks.
    fn lane(&self) -> Lane {
        Lane::Datagrams
    }

    /// Opens each door on the packet's port whose payload the datagram carries, for its
    /// source when the door admits it; says when none does.
    fn packet(&mut self, packet: &Packet<'_>, _clock: &Clock, _store: &mut dyn Store, out: &mut Outcomes) {
        let knock = &packet.knock;
        if knock.port.proto != Proto::Udp {
            return;
        }
        let payload = packet.payload.unwrap_or_default();
        let mut opened = false;
        for d in self.doors.iter().filter(|d| d.port == knock.port.port && d.door.admits(&knock.src)) {
            if same_bytes(payload, &d.payload) {
                out.grants.push(Grant::new(d.id, knock.src, knock.src, knock.dst));
                opened = true;
            }
        }
        if opened {
            self.accepted += 1;
        } else {
            self.rejected += 1;
            let reason = "datagram rejected: not a door's payload (or not from where the door admits)".into();
            out.notes.push(Note::Rejected { door: None, src: knock.src, reason });
        }
    }

    /// Nothing carries over: the payloads are read again, and nothing is remembered.
    fn carry_over(&mut self, old: Datagrams) {
        self.accepted += old.accepted;
        self.rejected += old.rejected;
    }

    fn counters(&self, out: &mut Vec<Reading>) {
        out.extend([
            Reading { counter: &DATAGRAM_ACCEPTED, value: self.accepted },
            Reading { counter: &DATAGRAM_REJECTED, value: self.rejected },
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Knock;
    use crate::store::MemoryStore;

    const DOORS: &str = "doors:\n  web:\n    datagram: {port: 40000, payload_file: /keys/web}\n    \
                         from: [198.18.0.0/16]\n    open: {ports: [8080], timeout: 30s}\n";

    fn datagrams(store: &mut MemoryStore) -> Box<dyn DoorKind> {
        let config = crate::config::yaml::parse("test.yaml", DOORS, &super::super::Kinds).unwrap();
        DatagramKind.build(&config, store).unwrap().expect("a datagram door")
    }

    fn send(kind: &mut dyn DoorKind, src: &str, port: u16, payload: &[u8]) -> Outcomes {
        let knock = Knock::new(src.parse().unwrap(), "198.18.0.1".parse().unwrap(), PortProto::udp(port), 0);
        let mut out = Outcomes::default();
        kind.packet(
            &Packet { knock, payload: Some(payload) },
            &Clock::default(),
            &mut MemoryStore::default(),
            &mut out,
        );
        out
    }

    #[test]
    fn the_payload_opens_and_nothing_else_does() {
        let mut store = MemoryStore::default();
        store.files.insert("/keys/web".into(), b"open sesame".to_vec());
        let mut kind = datagrams(&mut store);
        let mut ports = Vec::new();
        kind.ports(&mut ports);
        assert_eq!((ports, kind.lane()), (vec![PortProto::udp(40000)], Lane::Datagrams));
        let granted = send(kind.as_mut(), "198.18.0.2", 40000, b"open sesame");
        assert_eq!(granted.grants.len(), 1);
        assert_eq!(granted.grants[0].addr.to_string(), "198.18.0.2");
        for (src, payload) in
            [("198.18.0.2", &b"open sesamE"[..]), ("198.18.0.2", b"open sesame!"), ("198.18.0.2", b"")]
        {
            let refused = send(kind.as_mut(), src, 40000, payload);
            assert!(refused.grants.is_empty() && matches!(refused.notes[..], [Note::Rejected { .. }]), "{payload:?}");
        }
        let stranger = send(kind.as_mut(), "198.19.0.2", 40000, b"open sesame");
        assert!(stranger.grants.is_empty(), "outside the door's `from`");
        let mut readings = Vec::new();
        kind.counters(&mut readings);
        assert_eq!(readings.iter().map(|r| r.value).collect::<Vec<_>>(), [1, 4]);
    }

    #[test]
    fn the_settings_round_trip_and_say_what_they_are() {
        let kinds = super::super::Kinds;
        let config = crate::config::yaml::parse("test.yaml", DOORS, &kinds).unwrap();
        let door = &config.doors[0];
        let datagram = door.proof::<Datagram>().unwrap();
        assert_eq!((datagram.port, datagram.payload_file.as_path()), (40000, Path::new("/keys/web")));
        assert_eq!(door.proofs[0].listens(), ["40000/udp"]);
        assert_eq!(config.door_files(), [Path::new("/keys/web")]);
        let yaml = crate::config::convert::to_yaml(&config);
        assert!(yaml.contains("datagram:\n      port: 40000\n      payload_file: /keys/web"), "{yaml}");
        assert_eq!(crate::config::yaml::parse("again.yaml", &yaml, &kinds).unwrap(), config);
        let error = |text: &str| crate::config::yaml::parse("t.yaml", text, &kinds).unwrap_err().to_string();
        assert!(error(&DOORS.replace("40000,", "\"40000/udp\",")).contains("the datagram is UDP"));
        let typo = error(&DOORS.replace("payload_file", "payload"));
        assert!(typo.contains("unknown key `payload` (the keys here: `port`, `payload_file`)"), "{typo}");
    }

    #[test]
    fn a_payload_file_that_is_empty_or_missing_stops_the_start() {
        let config = crate::config::yaml::parse("test.yaml", DOORS, &super::super::Kinds).unwrap();
        let error = |store: &mut MemoryStore| DatagramKind.build(&config, store).err().unwrap().to_string();
        assert!(error(&mut MemoryStore::default()).contains("payload file /keys/web"));
        let mut empty = MemoryStore::default();
        empty.files.insert("/keys/web".into(), Vec::new());
        assert!(error(&mut empty).contains("is empty"));
        let mut long = MemoryStore::default();
        long.files.insert("/keys/web".into(), vec![b'x'; MAX_PAYLOAD + 1]);
        assert!(error(&mut long).contains("too large"));
    }
}
