//! fwknop's packet as it travels (doc/fwknop.md): the base64 of an OpenSSL `Salted__` blob
//! (AES-256-CBC, key and IV derived from the key and a salt with MD5), less its first ten
//! characters, then the base64 HMAC of that base64 text. One UDP datagram, nothing else.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use md5::{Digest, Md5};

use super::FwknopError;
use super::digest;
use super::settings::HmacDigest;
use crate::doors::key_file::{decode_base64, encode_base64};

/// fwknopd's bounds on a packet, in bytes.
pub const MIN_PAYLOAD: usize = 140;
/// The largest packet fwknopd reads.
pub const MAX_PAYLOAD: usize = 1500;
/// Every `Salted__` blob's base64 starts so; the client cuts it off, the HMAC covers it.
pub const PREFIX: &str = "U2FsdGVkX1";
const SALTED: &[u8] = b"Salted__";
/// Longest key fwknop's Rijndael takes.
pub const MAX_KEY: usize = 32;

type Encryptor = cbc::Encryptor<aes::Aes256>;
type Decryptor = cbc::Decryptor<aes::Aes256>;

/// The payload as text, if it can be an fwknop packet at all: its length, its alphabet, and no
/// `Salted__` prefix (a client that did not cut it off, or an old one without an HMAC).
pub fn screen(payload: &[u8]) -> Result<&str, FwknopError> {
    if !(MIN_PAYLOAD..=MAX_PAYLOAD).contains(&payload.len()) {
        return Err(FwknopError::Malformed("length outside 140..1500 bytes"));
    }
    if !payload.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/') {
        return Err(FwknopError::Malformed("not base64"));
    }
    if payload.starts_with(PREFIX.as_bytes()) {
        return Err(FwknopError::Malformed("starts with the `Salted__` prefix (no HMAC, or an old client)"));
    }
    // Checked to be ASCII just above.
    std::str::from_utf8(payload).map_err(|_| FwknopError::Malformed("not base64"))
}

/// The packet cut into its ciphertext part and its HMAC, for an HMAC of type `d`.
pub fn split(payload: &str, d: HmacDigest) -> Option<(&str, &str)> {
    let at = payload.len().checked_sub(digest::base64_len(d))?;
    (at > 0).then(|| payload.split_at(at))
}

/// Whether `tag` (base64) is the HMAC of the ciphertext part under `key`, compared in
/// constant time. The HMAC covers the ciphertext's base64 with its prefix put back.
pub fn check_hmac(ciphertext: &str, tag: &str, d: HmacDigest, key: &[u8]) -> bool {
    // Strict base64: two spellings of one HMAC would be two packets to the replay cache.
    let Some(tag) = decode_base64(tag).filter(|t| encode_base64(t) == tag) else { return false };
    digest::verify_mac(d, key, &[PREFIX.as_bytes(), ciphertext.as_bytes()], &tag)
}

/// OpenSSL's EVP_BytesToKey with MD5 and one round: key and IV from the key and the salt.
fn derive(key: &[u8], salt: &[u8]) -> ([u8; 32], [u8; 16]) {
    let mut out = [0u8; 48];
    let mut previous: Vec<u8> = Vec::new();
    for chunk in out.chunks_mut(16) {
        let mut md5 = Md5::new();
        md5.update(&previous);
        md5.update(key);
        md5.update(salt);
        previous = md5.finalize().to_vec();
        chunk.copy_from_slice(&previous);
    }
    let (k, iv) = out.split_at(32);
    (k.try_into().expect("32 bytes"), iv.try_into().expect("16 bytes"))
}

/// The plaintext of the ciphertext part, under the Rijndael `key`.
pub fn decrypt(ciphertext: &str, key: &[u8]) -> Result<Vec<u8>, FwknopError> {
    let blob = decode_base64(&format!("{PREFIX}{ciphertext}")).ok_or(FwknopError::Malformed("not base64"))?;
    let body = blob.strip_prefix(SALTED).ok_or(FwknopError::Malformed("no `Salted__` header"))?;
    if body.len() < 8 + 16 || (body.len() - 8) % 16 != 0 {
        return Err(FwknopError::Malformed("the ciphertext is not whole AES blocks"));
    }
    let (salt, data) = body.split_at(8);
    let (k, iv) = derive(key, salt);
    Decryptor::new(&k.into(), &iv.into()).decrypt_padded_vec_mut::<Pkcs7>(data).map_err(|_| FwknopError::Decrypt)
}

/// The packet the client sends for `plaintext`: for tests, fuzzing and the benchmark.
pub fn seal(plaintext: &[u8], key: &[u8], hmac_key: &[u8], d: HmacDigest, salt: [u8; 8]) -> String {
    let (k, iv) = derive(key, &salt);
    let ciphertext = Encryptor::new(&k.into(), &iv.into()).encrypt_padded_vec_mut::<Pkcs7>(plaintext);
    let blob = [SALTED, &salt, &ciphertext].concat();
    let text = encode_base64(&blob);
    let body = &text[PREFIX.len()..];
    let tag = digest::mac(d, hmac_key, &[text.as_bytes()]);
    format!("{body}{}", encode_base64(&tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &[u8] = b"1234567890123456:cm9vdA:1764063000:3.0.0:1:MTk4LjE4LjAuMix0Y3AvMjI:digest";

    #[test]
    fn sealed_packets_open() {
        for d in HmacDigest::ALL {
            let packet = seal(PLAIN, b"k", b"h", d, [7; 8]);
            let text = screen(packet.as_bytes()).unwrap();
            let (ciphertext, tag) = split(text, d).unwrap();
            assert!(check_hmac(ciphertext, tag, d, b"h"), "{d:?}");
            assert!(!check_hmac(ciphertext, tag, d, b"g"), "{d:?}");
            assert_eq!(decrypt(ciphertext, b"k").unwrap(), PLAIN);
            // A wrong key fails the padding check, or (1 in 256) yields noise.
            assert!(decrypt(ciphertext, b"wrong").map_or(true, |p| p != PLAIN));
        }
    }

    #[test]
    fn screen_refuses_what_cannot_be_a_packet() {
        assert!(screen(&[b'A'; 139]).is_err());
        assert!(screen(&[b'A'; 1501]).is_err());
        assert!(screen(&[b'='; 200]).is_err());
        assert!(screen(format!("{PREFIX}{}", "A".repeat(200)).as_bytes()).is_err());
        assert!(screen(&[b'A'; 200]).is_ok());
    }

    #[test]
    fn a_non_canonical_hmac_spelling_is_refused() {
        let d = HmacDigest::Sha256;
        let packet = seal(PLAIN, b"k", b"h", d, [7; 8]);
        let (ciphertext, tag) = split(&packet, d).unwrap();
        // 43 characters carry 258 bits for 256: the last character has two unused bits.
        let last = tag.as_bytes()[42];
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let index = alphabet.iter().position(|c| *c == last).unwrap();
        let twin = format!("{}{}", &tag[..42], alphabet[index ^ 1] as char);
        assert!(check_hmac(ciphertext, tag, d, b"h"));
        assert!(!check_hmac(ciphertext, &twin, d, b"h"));
    }

    /// OpenSSL's `enc -md md5` derivation: `openssl enc -aes-256-cbc -md md5 -k pass -S 0102030405060708 -P`.
    #[test]
    fn derivation_is_openssls() {
        let (key, iv) = derive(b"pass", &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(hex::encode_upper(key), "86A00079BEB5DCA79870668BB0C56A7EB158E10AC9A1EC44CD2FD6CCF7796367");
        assert_eq!(hex::encode_upper(iv), "717E513CB7804E1856CD14DACE7097CF");
    }
}
