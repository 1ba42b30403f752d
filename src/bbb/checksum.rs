//! BBB's checksum: `hex(H(call + query + secret))`, where the client picks `H` and the server
//! recognises it by the length of the hex digest.

use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::{fmt, str::FromStr};

/// The hash a server's checksums are made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChecksumAlgorithm {
    Sha1,
    /// Accepted by every BBB since 2.4, and what this service uses unless told otherwise.
    #[default]
    Sha256,
    Sha384,
    Sha512,
}

impl ChecksumAlgorithm {
    pub const ALL: [ChecksumAlgorithm; 4] = [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512];

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// The algorithm whose hex digest has this many characters, as BBB infers it.
    pub fn from_hex_len(len: usize) -> Option<Self> {
        match len {
            40 => Some(Self::Sha1),
            64 => Some(Self::Sha256),
            96 => Some(Self::Sha384),
            128 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// Lower-case hex of `H(call + query + secret)`.
    pub fn checksum(self, call: &str, query: &str, secret: &str) -> String {
        fn digest<D: Digest>(parts: [&str; 3]) -> String {
            let mut hasher = D::new();
            for part in parts {
                hasher.update(part.as_bytes());
            }
            hex::encode(hasher.finalize())
        }
        let parts = [call, query, secret];
        match self {
            Self::Sha1 => digest::<Sha1>(parts),
            Self::Sha256 => digest::<Sha256>(parts),
            Self::Sha384 => digest::<Sha384>(parts),
            Self::Sha512 => digest::<Sha512>(parts),
        }
    }
}

impl fmt::Display for ChecksumAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown checksum algorithm {0:?} (expected sha1, sha256, sha384 or sha512)")]
pub struct UnknownAlgorithm(pub String);

impl FromStr for ChecksumAlgorithm {
    type Err = UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownAlgorithm(s.to_owned()))
    }
}

/// Checks a received checksum the way BBB does: the algorithm is read off the digest's length
/// and must be one the server allows; hex digits compare without regard to case.
pub fn verify(
    allowed: &[ChecksumAlgorithm],
    call: &str,
    query: &str,
    secret: &str,
    received: &str,
) -> bool {
    match ChecksumAlgorithm::from_hex_len(received.len()) {
        Some(alg) if allowed.contains(&alg) => {
            let expected = alg.checksum(call, query, secret);
            // Constant-time comparison: the emulator must not become a timing oracle in demos.
            let received = received.to_ascii_lowercase();
            subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), received.as_bytes()).into()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // The vectors of the BBB API documentation (bbb-api.md §2).
    const QUERY: &str = "name=Test+Meeting&meetingID=abc123&attendeePW=111222&moderatorPW=333444";
    const SECRET: &str = "639259d4-9dd8-4b25-bf01-95f9567eaf4b";

    #[test]
    fn documented_vectors() {
        let cases = [
            (
                ChecksumAlgorithm::Sha1,
                "1fcbb0c4fc1f039f73aa6d697d2db9ba7f803f17",
            ),
            (
                ChecksumAlgorithm::Sha256,
                "da9185f7f333cfdfcd6eeac32dca3777510c4c436020d8b887ba5515bd1d189e",
            ),
            (
                ChecksumAlgorithm::Sha384,
                "891ac633df39d0a1b4f8d597f3e190833216c4b29c4fb51ea3ca72757eeb958d6e7b49a845cf29f5c6019c7d29d029d1",
            ),
            (
                ChecksumAlgorithm::Sha512,
                "de73ad61d11a5c801b68d4bd6ec5248546085cefb0b25c85f3c46249ea93a3a4b120f92c0a8a58d7512cb77821884951a3b01245f3435dbbef49fff3cc3988b4",
            ),
        ];
        for (alg, expected) in cases {
            assert_eq!(alg.checksum("create", QUERY, SECRET), expected, "{alg}");
        }
    }

    #[test]
    fn empty_query_hashes_call_and_secret_only() {
        assert_eq!(
            ChecksumAlgorithm::Sha1.checksum("getMeetings", "", "b4578c133b8a49acaecacbb3abec91a1"),
            "626a395f69c5f3a3e04145a8262c318c6f788808"
        );
    }

    #[test]
    fn verify_picks_the_algorithm_by_length_within_the_allowed_set() {
        let sha512 = ChecksumAlgorithm::Sha512.checksum("create", QUERY, SECRET);
        assert!(verify(
            &ChecksumAlgorithm::ALL,
            "create",
            QUERY,
            SECRET,
            &sha512
        ));
        assert!(verify(
            &ChecksumAlgorithm::ALL,
            "create",
            QUERY,
            SECRET,
            &sha512.to_uppercase()
        ));
        assert!(!verify(
            &[ChecksumAlgorithm::Sha256],
            "create",
            QUERY,
            SECRET,
            &sha512
        ));
        assert!(!verify(
            &ChecksumAlgorithm::ALL,
            "join",
            QUERY,
            SECRET,
            &sha512
        ));
        assert!(!verify(
            &ChecksumAlgorithm::ALL,
            "create",
            QUERY,
            SECRET,
            &sha512[..100]
        ));
        assert!(!verify(
            &ChecksumAlgorithm::ALL,
            "create",
            QUERY,
            SECRET,
            ""
        ));
    }

    #[test]
    fn names_parse_back() {
        for alg in ChecksumAlgorithm::ALL {
            assert_eq!(alg.name().parse::<ChecksumAlgorithm>(), Ok(alg));
        }
        assert_eq!(
            "SHA256".parse::<ChecksumAlgorithm>(),
            Ok(ChecksumAlgorithm::Sha256)
        );
        assert!("md5".parse::<ChecksumAlgorithm>().is_err());
    }

    proptest! {
        #[test]
        fn every_algorithm_verifies_its_own_checksum_and_nothing_else(
            call in "[a-zA-Z]{1,20}", query in any::<String>(), secret in any::<String>(),
            other in any::<String>(),
        ) {
            for alg in ChecksumAlgorithm::ALL {
                let sum = alg.checksum(&call, &query, &secret);
                prop_assert_eq!(ChecksumAlgorithm::from_hex_len(sum.len()), Some(alg));
                prop_assert!(sum.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
                prop_assert!(verify(&[alg], &call, &query, &secret, &sum));
                if other != secret {
                    prop_assert!(!verify(&[alg], &call, &query, &other, &sum));
                }
            }
        }
    }
}
