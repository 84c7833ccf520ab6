//! The digests fwknop uses, by the names access.conf gives them: for the HMAC over the packet
//! and for the digest inside the plaintext. Both are written in base64 without padding, so a
//! digest's type can be told from its length (SHA-256 and SHA3-256, SHA-512 and SHA3-512 share
//! theirs).

use hmac::digest::{Digest, KeyInit};
use hmac::{Hmac, Mac};

use super::settings::HmacDigest;

/// Length in base64 characters (no padding) of a digest of this type.
pub fn base64_len(d: HmacDigest) -> usize {
    match d {
        HmacDigest::Md5 => 22,
        HmacDigest::Sha1 => 27,
        HmacDigest::Sha256 | HmacDigest::Sha3_256 => 43,
        HmacDigest::Sha384 => 64,
        HmacDigest::Sha512 | HmacDigest::Sha3_512 => 86,
    }
}

/// The types whose base64 is `len` characters long, the SHA-2 one first (fwknop's order).
pub fn types_of_len(len: usize) -> impl Iterator<Item = HmacDigest> {
    HmacDigest::ALL.into_iter().filter(move |d| base64_len(*d) == len)
}

fn hash_with<D: Digest>(data: &[u8]) -> Vec<u8> {
    D::digest(data).to_vec()
}

/// The digest of `data`.
pub fn hash(d: HmacDigest, data: &[u8]) -> Vec<u8> {
    match d {
        HmacDigest::Md5 => hash_with::<md5::Md5>(data),
        HmacDigest::Sha1 => hash_with::<sha1::Sha1>(data),
        HmacDigest::Sha256 => hash_with::<sha2::Sha256>(data),
        HmacDigest::Sha384 => hash_with::<sha2::Sha384>(data),
        HmacDigest::Sha512 => hash_with::<sha2::Sha512>(data),
        HmacDigest::Sha3_256 => hash_with::<sha3::Sha3_256>(data),
        HmacDigest::Sha3_512 => hash_with::<sha3::Sha3_512>(data),
    }
}

fn new_mac<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> M {
    let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac
}

/// The HMAC of the concatenated `parts` under `key`.
pub fn mac(d: HmacDigest, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn bytes<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        new_mac::<M>(key, parts).finalize().into_bytes().to_vec()
    }
    match d {
        HmacDigest::Md5 => bytes::<Hmac<md5::Md5>>(key, parts),
        HmacDigest::Sha1 => bytes::<Hmac<sha1::Sha1>>(key, parts),
        HmacDigest::Sha256 => bytes::<Hmac<sha2::Sha256>>(key, parts),
        HmacDigest::Sha384 => bytes::<Hmac<sha2::Sha384>>(key, parts),
        HmacDigest::Sha512 => bytes::<Hmac<sha2::Sha512>>(key, parts),
        HmacDigest::Sha3_256 => bytes::<Hmac<sha3::Sha3_256>>(key, parts),
        HmacDigest::Sha3_512 => bytes::<Hmac<sha3::Sha3_512>>(key, parts),
    }
}

/// Whether `tag` is the HMAC of `parts` under `key`, compared in constant time.
pub fn verify_mac(d: HmacDigest, key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    fn check<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
        new_mac::<M>(key, parts).verify_slice(tag).is_ok()
    }
    match d {
        HmacDigest::Md5 => check::<Hmac<md5::Md5>>(key, parts, tag),
        HmacDigest::Sha1 => check::<Hmac<sha1::Sha1>>(key, parts, tag),
        HmacDigest::Sha256 => check::<Hmac<sha2::Sha256>>(key, parts, tag),
        HmacDigest::Sha384 => check::<Hmac<sha2::Sha384>>(key, parts, tag),
        HmacDigest::Sha512 => check::<Hmac<sha2::Sha512>>(key, parts, tag),
        HmacDigest::Sha3_256 => check::<Hmac<sha3::Sha3_256>>(key, parts, tag),
        HmacDigest::Sha3_512 => check::<Hmac<sha3::Sha3_512>>(key, parts, tag),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doors::key_file::encode_base64;

    #[test]
    fn lengths_match_the_digests() {
        for d in HmacDigest::ALL {
            assert_eq!(encode_base64(&hash(d, b"x")).len(), base64_len(d), "{d:?}");
            assert_eq!(encode_base64(&mac(d, b"k", &[b"x"])).len(), base64_len(d), "{d:?}");
        }
    }

    #[test]
    fn mac_of_parts_is_mac_of_the_whole() {
        for d in HmacDigest::ALL {
            let tag = mac(d, b"key", &[b"ab", b"cd"]);
            assert!(verify_mac(d, b"key", &[b"abcd"], &tag));
            assert!(!verify_mac(d, b"other", &[b"abcd"], &tag));
            assert!(!verify_mac(d, b"key", &[b"abcd"], &tag[1..]));
        }
    }

    /// RFC 4231 test case 2 and RFC 2202's for MD5: the primitives are the standard ones.
    #[test]
    fn known_answers() {
        let sha256 = mac(HmacDigest::Sha256, b"Jefe", &[b"what do ya want for nothing?"]);
        assert_eq!(hex::encode(sha256), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        let md5 = mac(HmacDigest::Md5, b"Jefe", &[b"what do ya want for nothing?"]);
        assert_eq!(hex::encode(md5), "750c783e6ab0b503eaa86e310a5db738");
    }
}
