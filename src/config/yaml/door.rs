//! One door of knockd.yaml: the keys every door has, read here, and the keys of its proofs,
//! read by their kinds ([`Kinds`]). Then the rules between them: at most one proof of a kind,
//! at least one proof, a knock sequence first, a name clients can send.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

use super::open::RawOpen;
use super::values::{CmdTimeout, CommandText, DoorName, Flags, Prefix, SeqTimeout};
use crate::config::{Commands, DEFAULT_CMD_TIMEOUT, DEFAULT_SEQ_TIMEOUT, Door, Kinds, Proof, TcpFlags};

/// The keys every door has, in the order they are listed after the proofs' (aliases after the
/// key they stand for).
pub(super) const COMMON_KEYS: [&str; 13] = [
    "seq_timeout",
    "tcp_flags",
    "target",
    "from",
    "not_from",
    "open",
    "command",
    "start_command",
    "command_6",
    "start_command_6",
    "stop_command",
    "stop_command_6",
    "cmd_timeout",
];

/// Every key a door takes: its proofs' first, then the common ones.
pub(super) fn door_keys<K: Kinds>(kinds: &K) -> Vec<&'static str> {
    kinds.keys().into_iter().chain(COMMON_KEYS).collect()
}

/// A door as written, its proofs read by their kinds.
#[derive(Default)]
pub(super) struct RawDoor {
    proofs: Vec<(usize, Proof)>,
    seq_timeout: Option<SeqTimeout>,
    tcp_flags: Option<Flags>,
    target: Option<std::net::IpAddr>,
    from: Option<Vec<Prefix>>,
    not_from: Option<Vec<Prefix>>,
    open: Option<RawOpen>,
    command: Option<CommandText>,
    command_6: Option<CommandText>,
    stop_command: Option<CommandText>,
    stop_command_6: Option<CommandText>,
    cmd_timeout: Option<CmdTimeout>,
}

/// A door key: a common one (by its place in [`COMMON_KEYS`]) or a proof's.
enum Key {
    Common(usize),
    Proof(&'static str),
}

/// Reads a door key, refusing one no door takes where it stands (so the error points at it).
struct KeySeed<'a>(&'a [&'static str]);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a door key")
    }

    /// Refused here, while the key is read, so the error points at it.
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        if let Some(i) = COMMON_KEYS.iter().position(|k| *k == key) {
            return Ok(Key::Common(i));
        }
        match self.0.iter().find(|k| **k == key) {
            Some(k) => Ok(Key::Proof(k)),
            // serde's own wording, which the hints turn into "did you mean".
            None => {
                let list: Vec<String> = self.0.iter().map(|k| format!("`{k}`")).collect();
                Err(E::custom(format!("unknown field `{key}`, expected one of {}", list.join(", "))))
            }
        }
    }
}

/// Reads one door's mapping with the kinds' help.
pub(super) struct DoorSeed<'a, K> {
    pub(super) kinds: &'a K,
    pub(super) name: &'a str,
}

impl<'de, K: Kinds> DeserializeSeed<'de> for DoorSeed<'_, K> {
    type Value = RawDoor;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawDoor, D::Error> {
        d.deserialize_map(self)
    }
}

/// Sets a key's value once: a key written twice is an error, as serde says it.
fn once<T, E: de::Error>(slot: &mut Option<T>, key: &'static str, value: T) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(key));
    }
    *slot = Some(value);
    Ok(())
}

impl<'de, K: Kinds> Visitor<'de> for DoorSeed<'_, K> {
    type Value = RawDoor;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a door: its knock and what it opens")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawDoor, A::Error> {
        let keys = door_keys(self.kinds);
        let mut door = RawDoor::default();
        while let Some(key) = map.next_key_seed(KeySeed(&keys))? {
            match key {
                Key::Proof(key) => {
                    let (kind, proof) = self.kinds.read(key, self.name, &mut map).expect("a kind's own key")?;
                    if door.proofs.iter().any(|(k, p)| *k == kind && p.key() == key) {
                        return Err(de::Error::duplicate_field(key));
                    }
                    door.proofs.push((kind, proof));
                }
                Key::Common(i) => door.read_common(COMMON_KEYS[i], &mut map)?,
            }
        }
        Ok(door)
    }
}

impl RawDoor {
    /// Reads the value of common key `key`.
    fn read_common<'de, A: MapAccess<'de>>(&mut self, key: &'static str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "seq_timeout" => once(&mut self.seq_timeout, key, map.next_value()?),
            "tcp_flags" => once(&mut self.tcp_flags, key, map.next_value()?),
            "target" => once(&mut self.target, key, map.next_value()?),
            "from" => once(&mut self.from, key, map.next_value()?),
            "not_from" => once(&mut self.not_from, key, map.next_value()?),
            "open" => once(&mut self.open, key, map.next_value()?),
            "command" | "start_command" => once(&mut self.command, "command", map.next_value()?),
            "command_6" | "start_command_6" => once(&mut self.command_6, "command_6", map.next_value()?),
            "stop_command" => once(&mut self.stop_command, key, map.next_value()?),
            "stop_command_6" => once(&mut self.stop_command_6, key, map.next_value()?),
            _ => once(&mut self.cmd_timeout, key, map.next_value()?),
        }
    }

    /// The door named `name`, once its proofs agree with each other.
    pub(super) fn into_door<E: de::Error, K: Kinds>(mut self, name: String, kinds: &K) -> Result<Door, E> {
        if let Some(kind) =
            self.proofs.iter().map(|(k, _)| *k).find(|k| self.proofs.iter().filter(|(o, _)| o == k).count() > 1)
        {
            let keys: Vec<String> = kinds.keys_of(kind).iter().map(|k| format!("`{k}`")).collect();
            let (last, rest) = keys.split_last().expect("a kind has keys");
            return Err(E::custom(format!(
                "door `{name}` has more than one of {} and {last}: keep one",
                rest.join(", ")
            )));
        }
        // The kinds' order, whatever the file's: a knock sequence first.
        let order = kinds.keys();
        self.proofs.sort_by_key(|(_, p)| order.iter().position(|k| *k == p.key()));
        let proofs: Vec<Proof> = self.proofs.into_iter().map(|(_, p)| p).collect();
        if proofs.iter().any(|p| p.sends_door_name()) {
            crate::config::check_sent_name(&name).map_err(|e| E::custom(format!("door `{name}`: {e}")))?;
        }
        let per_port = proofs.iter().find(|p| p.client_ports().is_some());
        if let Some(p) = per_port.filter(|_| proofs.first().is_some_and(|first| first.is_sequence())) {
            // Its clients name ports, so the door's sets hold address and port: a knock, which
            // names none, would open nothing.
            let key = p.key();
            return Err(E::custom(format!(
                "door `{name}` has both a knock sequence and `{key}`: a completed knock would open nothing there \
                 ({key}'s grants name ports): make them two doors"
            )));
        }
        if proofs.is_empty() {
            let keys: Vec<String> = order.iter().map(|k| format!("`{k}:`")).collect();
            let (last, rest) = keys.split_last().expect("kinds have keys");
            return Err(E::custom(format!(
                "door `{name}` has no knock: add {} (or {} or {last})",
                rest[0],
                rest[1..].join(", ")
            )));
        }
        let allowed = per_port.map(|p| (p.key(), p.client_ports().unwrap_or_default().to_vec()));
        let open = self.open.map(|o| o.into_action(&name, allowed)).transpose()?;
        let text = |c: Option<CommandText>| c.map(|c| c.0);
        Ok(Door {
            name,
            proofs,
            seq_timeout: self.seq_timeout.map_or(DEFAULT_SEQ_TIMEOUT, |t| t.0),
            tcp_flags: self.tcp_flags.map_or_else(TcpFlags::default, |f| f.0),
            target: self.target,
            from: self.from.unwrap_or_default().into_iter().map(|p| p.0).collect(),
            not_from: self.not_from.unwrap_or_default().into_iter().map(|p| p.0).collect(),
            open,
            commands: Commands {
                start: text(self.command),
                start_v6: text(self.command_6),
                stop: text(self.stop_command),
                stop_v6: text(self.stop_command_6),
                cmd_timeout: self.cmd_timeout.map_or(DEFAULT_CMD_TIMEOUT, |t| t.0),
            },
        })
    }
}

/// The `doors` mapping, kept in file order, with duplicate names rejected where they stand.
pub(super) struct Doors<K>(pub(super) Vec<Door>, std::marker::PhantomData<K>);

impl<'de, K: Kinds> serde::Deserialize<'de> for Doors<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<K>(std::marker::PhantomData<K>);
        impl<'de, K: Kinds> Visitor<'de> for V<K> {
            type Value = Doors<K>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping from door names to doors")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Doors<K>, A::Error> {
                let kinds = K::default();
                let mut doors: Vec<Door> = Vec::new();
                while let Some(name) = map.next_key::<DoorName>()? {
                    if doors.iter().any(|d| d.name == name.0) {
                        return Err(de::Error::custom(format!(
                            "door `{}` is defined twice: give each door its own name",
                            name.0
                        )));
                    }
                    let raw = map.next_value_seed(DoorSeed { kinds: &kinds, name: &name.0 })?;
                    doors.push(raw.into_door(name.0, &kinds)?);
                }
                Ok(Doors(doors, std::marker::PhantomData))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}
