//! Who opened a grant, kept with its set element as the element's comment, in the user-data
//! layout nft(8) reads and writes (`198.18.0.2 timeout 30s expires 28s comment "key alice"`):
//! a daemon started again over the sets that outlived it, and an admin with `nft list set`,
//! still see who it was.
//!
//! The layout is a list of (type: u8, length: u8, value) records; a comment is type 0 and its
//! value ends with a NUL.

/// `NFTNL_UDATA_SET_ELEM_COMMENT`.
const COMMENT: u8 = 0;
/// nft's longest comment, without its NUL.
pub(super) const MAX_LEN: usize = 127;

/// The user data for `comment`. Characters nft would not print back inside its quotes as they
/// were (quotes, backslashes, controls, anything not ASCII) become `_`, so that
/// `nft list ruleset` stays a file `nft -f` reads; it is cut to [`MAX_LEN`] bytes.
pub(super) fn encode(comment: &str) -> Vec<u8> {
    let text: Vec<u8> = comment
        .chars()
        .map(|c| if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' { c as u8 } else { b'_' })
        .take(MAX_LEN)
        .collect();
    let mut out = vec![COMMENT, (text.len() + 1) as u8];
    out.extend_from_slice(&text);
    out.push(0);
    out
}

/// The comment in an element's user data, if it has one; records of other types are skipped,
/// and a malformed list is no comment.
pub(super) fn decode(mut data: &[u8]) -> Option<String> {
    while let [kind, len, rest @ ..] = data {
        let value = rest.get(..usize::from(*len))?;
        if *kind == COMMENT {
            let text = value.strip_suffix(&[0]).unwrap_or(value);
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        data = &rest[value.len()..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(encode("key alice"), b"\x00\x0akey alice\x00");
        assert_eq!(decode(&encode("key alice")).as_deref(), Some("key alice"));
        assert_eq!(decode(&encode("")).as_deref(), Some(""));
    }

    #[test]
    fn what_nft_could_not_read_back_is_replaced_and_long_ones_are_cut() {
        assert_eq!(decode(&encode("key \"x\"\\\n, user é")).as_deref(), Some("key _x___, user _"));
        let long = "k".repeat(300);
        assert_eq!(encode(&long).len(), 2 + MAX_LEN + 1);
        assert_eq!(decode(&encode(&long)).unwrap().len(), MAX_LEN);
    }

    #[test]
    fn other_records_are_skipped_and_bad_lists_are_no_comment() {
        let mut data = vec![1, 4, 0, 0, 0, 1];
        data.extend(encode("secret bob"));
        assert_eq!(decode(&data).as_deref(), Some("secret bob"));
        assert_eq!(decode(&[1, 4, 0, 0]), None, "a record longer than the data");
        assert_eq!(decode(&[0]), None);
        assert_eq!(decode(&[]), None);
    }
}
