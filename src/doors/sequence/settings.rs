//! The sequence kind's settings, as config holds them ([`ProofSettings`]) and knockd.yaml
//! writes them (`sequence:`, `one_time_sequences:`, `rotating:`): a fixed sequence, a file of
//! one-time sequences, or a sequence derived from secrets and the time (doc/rotating.md).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, MapAccess};

use crate::config::convert::{duration, port};
use crate::config::yaml::values::{KnockSequence, PortRange, ProtoName, duration_in};
use crate::config::{Door, PortProto, Proof, ProofSettings, Proto};

/// A fixed knock sequence (`sequence:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedSequence(pub Vec<PortProto>);

/// A file of sequences, one per line, each used once (`one_time_sequences:`, the classic
/// `One_Time_Sequences`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeFile(pub PathBuf);

/// A rotating sequence: `length` ports in `ports`, derived from a secret every `step`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotating {
    /// The secrets the sequences are derived from, one per client (or group of clients): each
    /// derives its own sequence, used once per step, so clients never lock each other out.
    /// The file name (without extension) names the secret in logs and `knockd status`.
    pub secret_files: Vec<PathBuf>,
    /// How often the sequence changes.
    pub step: Duration,
    /// Knocks per sequence.
    pub length: usize,
    /// Inclusive port range the knocks are drawn from.
    pub ports: (u16, u16),
    /// The protocol of every knock.
    pub proto: Proto,
}

/// Defaults shared by the daemon and the `knock` client, so a door and a client that both
/// leave them out agree.
pub const ROTATING_STEP: Duration = Duration::from_secs(30);
/// Knocks per rotating sequence when the config does not say.
pub const ROTATING_LENGTH: usize = 4;
/// The port range rotating knocks are drawn from when the config does not say.
pub const ROTATING_PORTS: (u16, u16) = (20000, 40000);
/// Most knocks a rotating sequence can have: 32 bytes of HMAC, 4 per knock.
pub const ROTATING_MAX_LENGTH: usize = 8;

impl ProofSettings for FixedSequence {
    fn key(&self) -> &'static str {
        "sequence"
    }

    fn to_yaml(&self) -> serde_yaml_ng::Value {
        let ports: Vec<_> = self.0.iter().map(port).collect();
        serde_yaml_ng::to_value(ports).expect("plain data always serializes")
    }

    fn describe(&self, door: &Door) -> String {
        let knocks: Vec<String> = self.0.iter().map(PortProto::to_string).collect();
        format!("knock {} within {}", knocks.join(", "), humantime::format_duration(door.seq_timeout))
    }

    fn listens(&self) -> Vec<String> {
        self.0.iter().map(PortProto::to_string).collect()
    }

    fn is_sequence(&self) -> bool {
        true
    }

    fn knocks_on(&self, port: PortProto) -> bool {
        self.0.contains(&port)
    }
}

impl ProofSettings for OneTimeFile {
    fn key(&self) -> &'static str {
        "one_time_sequences"
    }

    fn name(&self) -> &'static str {
        "one_time"
    }

    fn to_yaml(&self) -> serde_yaml_ng::Value {
        serde_yaml_ng::to_value(&self.0).expect("plain data always serializes")
    }

    fn describe(&self, _door: &Door) -> String {
        format!("one-time sequences from {}", self.0.display())
    }

    fn listens(&self) -> Vec<String> {
        vec![format!("the next line of {}", self.0.display())]
    }

    fn is_sequence(&self) -> bool {
        true
    }

    /// The file is rewritten in its directory, which root owns.
    fn needs_root(&self) -> Option<&'static str> {
        Some("rewrites its one-time sequence file")
    }

    fn files(&self) -> Vec<&Path> {
        vec![&self.0]
    }

    fn files_mut(&mut self) -> Vec<&mut PathBuf> {
        vec![&mut self.0]
    }
}

/// `rotating:` as `--convert` writes it.
#[derive(serde::Serialize)]
struct RotatingOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_file: Option<&'a PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_files: Option<&'a [PathBuf]>,
    step: String,
    length: usize,
    ports: String,
    protocol: &'static str,
}

impl ProofSettings for Rotating {
    fn key(&self) -> &'static str {
        "rotating"
    }

    fn to_yaml(&self) -> serde_yaml_ng::Value {
        let out = RotatingOut {
            secret_file: match self.secret_files.as_slice() {
                [one] => Some(one),
                _ => None,
            },
            secret_files: (self.secret_files.len() != 1).then_some(self.secret_files.as_slice()),
            step: duration(self.step),
            length: self.length,
            ports: format!("{}-{}", self.ports.0, self.ports.1),
            protocol: self.proto.name(),
        };
        serde_yaml_ng::to_value(out).expect("plain data always serializes")
    }

    fn describe(&self, _door: &Door) -> String {
        format!(
            "rotating sequence of {} {} knocks in {}-{}, new every {} (secrets {})",
            self.length,
            self.proto,
            self.ports.0,
            self.ports.1,
            humantime::format_duration(self.step),
            self.secret_files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
        )
    }

    fn listens(&self) -> Vec<String> {
        vec![format!("{}-{}/{} (rotating)", self.ports.0, self.ports.1, self.proto)]
    }

    fn is_sequence(&self) -> bool {
        true
    }

    fn knocks_on(&self, port: PortProto) -> bool {
        self.proto == port.proto && (self.ports.0..=self.ports.1).contains(&port.port)
    }

    /// Clients derive the sequence from the door's name.
    fn sends_door_name(&self) -> bool {
        true
    }

    /// The sequences used, in `<state_dir>/<door>.rotating`.
    fn keeps_state(&self) -> bool {
        true
    }

    fn files(&self) -> Vec<&Path> {
        self.secret_files.iter().map(PathBuf::as_path).collect()
    }

    fn files_mut(&mut self) -> Vec<&mut PathBuf> {
        self.secret_files.iter_mut().collect()
    }
}

/// `rotating.step`: 5 s to an hour.
struct StepDuration(Duration);

impl<'de> Deserialize<'de> for StepDuration {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = crate::config::yaml::values::TextValue::deserialize(d)?.0;
        duration_in(&text, (Duration::from_secs(5), Duration::from_secs(3600)))
            .map(StepDuration)
            .map_err(de::Error::custom)
    }
}

/// `rotating:` as written (doc/rotating.md).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRotating {
    #[serde(default)]
    secret_file: Option<PathBuf>,
    #[serde(default)]
    secret_files: Vec<PathBuf>,
    #[serde(default)]
    step: Option<StepDuration>,
    #[serde(default)]
    length: Option<usize>,
    #[serde(default)]
    ports: Option<PortRange>,
    #[serde(default)]
    protocol: Option<ProtoName>,
}

impl RawRotating {
    fn into_rotating<E: de::Error>(self) -> Result<Rotating, E> {
        let length = self.length.unwrap_or(ROTATING_LENGTH);
        if !(2..=ROTATING_MAX_LENGTH).contains(&length) {
            // One knock to one of a few thousand ports, three steps valid: a port scan opens it.
            return Err(E::custom(format!(
                "rotating.length {length} is out of range: use 2 to {ROTATING_MAX_LENGTH} (a single knock is found by \
                 any port scan)"
            )));
        }
        let secret_files = match (self.secret_file, self.secret_files) {
            (Some(one), many) if many.is_empty() => vec![one],
            (None, many) if !many.is_empty() => many,
            (Some(_), _) => {
                return Err(E::custom(
                    "rotating has both `secret_file` and `secret_files`: keep one (a list takes one)",
                ));
            }
            (None, _) => {
                return Err(E::custom(
                    "rotating needs `secret_file:` (or `secret_files:`, one per client): the shared secret(s)",
                ));
            }
        };
        Ok(Rotating {
            secret_files,
            step: self.step.map_or(ROTATING_STEP, |s| s.0),
            length,
            ports: self.ports.map_or(ROTATING_PORTS, |p| p.0),
            proto: self.protocol.map_or(Proto::Tcp, |p| p.0),
        })
    }
}

/// Reads the sequence kind's keys.
pub(super) fn read<'de, A: MapAccess<'de>>(key: &str, map: &mut A) -> Result<Proof, A::Error> {
    Ok(match key {
        "sequence" => Proof::new(FixedSequence(map.next_value::<KnockSequence>()?.0)),
        "one_time_sequences" => Proof::new(OneTimeFile(map.next_value()?)),
        _ => Proof::new(map.next_value::<RawRotating>()?.into_rotating::<A::Error>()?),
    })
}

/// The door's fixed sequence and rotating settings, for the kind and its checks.
pub trait SequenceDoor {
    /// The sequence if it is fixed; one-time and rotating sequences are known only at run time.
    fn fixed_sequence(&self) -> Option<&[PortProto]>;
}

impl SequenceDoor for Door {
    fn fixed_sequence(&self) -> Option<&[PortProto]> {
        self.proof::<FixedSequence>().map(|s| s.0.as_slice())
    }
}
