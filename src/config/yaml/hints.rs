//! Turns what the YAML parser says into what to do: tabs, unquoted `!` values, and unknown
//! keys with the closest known one.

/// `message` (the parser's, without its location) for the `text` it was reading, with a hint
/// where one helps; `line` and `column` are 1-based; `door_keys` are the keys a door takes.
pub fn explain(message: &str, text: &str, (line, column): (usize, usize), door_keys: &[&str]) -> String {
    let at_line = text.lines().nth(line.saturating_sub(1)).unwrap_or("");
    if message.contains("cannot start any token") && at_line.chars().nth(column.saturating_sub(1)) == Some('\t') {
        return "tabs are not allowed for indentation in YAML: indent with spaces".into();
    }
    if message.contains("while scanning a tag") || (message.contains("invalid type: enum") && at_line.contains('!')) {
        let token = at_line.split(|c: char| c.is_whitespace() || "[],{}".contains(c)).find(|t| t.starts_with('!'));
        let token = token.unwrap_or("!ack");
        // serde's errors start with the key path (`doors.ssh.tcp_flags: invalid type...`).
        let path = message.split_once(": invalid type").map_or(String::new(), |(p, _)| format!("{p}: "));
        return format!("{path}`{token}` reads as a YAML tag: quote it, like \"{token}\"");
    }
    if let Some(misplaced) = door_key_as_door(message, door_keys) {
        return misplaced;
    }
    if let Some(unknown) = unknown_field(message) {
        return unknown;
    }
    message.to_owned()
}

/// `doors.open: unknown key ports`: a door's key indented as a door of its own.
fn door_key_as_door(message: &str, door_keys: &[&str]) -> Option<String> {
    let (path, _) = message.split_once(": ")?;
    let key = path.strip_prefix("doors.").filter(|k| door_keys.contains(k))?;
    Some(format!(
        "{path}: `{key}:` is indented as a door of its own (a door named `{key}`), but it is a key of a door: \
         indent it under the door it belongs to, level with that door's other keys"
    ))
}

/// serde's "unknown field `x`, expected one of `a`, `b`" as "unknown key `x`: did you mean `a`?".
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.split("unknown field `").nth(1)?;
    let (field, expected) = rest.split_once('`')?;
    let prefix = &message[..message.find("unknown field `")?];
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let closest = known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(field, k), *k))
        .filter(|(distance, k)| *distance <= 2.max(k.len() / 4))
        .min();
    let list = known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
    Some(match closest {
        Some((_, k)) => format!("{prefix}unknown key `{field}`: did you mean `{k}`? (the keys here: {list})"),
        None => format!("{prefix}unknown key `{field}` (the keys here: {list})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabs_tags_and_typos() {
        let keys = ["a_proof", "open"];
        let tab = explain("found character that cannot start any token", "doors:\n\tssh:\n", (2, 1), &keys);
        assert!(tab.contains("indent with spaces"), "{tab}");
        let scanning = "did not find expected whitespace, while scanning a tag";
        let tag = explain(scanning, "    tcp_flags: [syn, !ack]", (1, 26), &keys);
        assert_eq!(tag, "`!ack` reads as a YAML tag: quote it, like \"!ack\"");
        let message = "doors.ssh: unknown field `seq_timout`, expected one of `sequence`, `seq_timeout`";
        let typo = explain(message, "", (1, 1), &keys);
        assert!(typo.starts_with("doors.ssh: unknown key `seq_timout`: did you mean `seq_timeout`?"), "{typo}");
        let far = explain("unknown field `zzz`, expected one of `doors`", "", (1, 1), &keys);
        assert_eq!(far, "unknown key `zzz` (the keys here: `doors`)");
        let open = explain("doors.open: unknown field `ports`, expected one of `sequence`", "", (4, 3), &keys);
        assert!(open.starts_with("doors.open: `open:` is indented as a door of its own"), "{open}");
        assert!(open.contains("indent it under the door it belongs to"), "{open}");
    }

    /// An unknown door key lists every key a door takes: its proofs' (the kinds', none here)
    /// and the common ones.
    #[test]
    fn an_unknown_door_key_lists_the_doors_keys() {
        let kinds = crate::config::proof::NoKinds;
        let text = "doors:\n  ssh:\n    nope: 1\n";
        let message = super::super::parse("k.yaml", text, &kinds).unwrap_err().to_string();
        let listed = message.split("(the keys here: ").nth(1).expect(&message);
        let keys: Vec<&str> = listed.split('`').skip(1).step_by(2).collect();
        assert_eq!(keys, super::super::door::COMMON_KEYS, "{message}");
    }
}
