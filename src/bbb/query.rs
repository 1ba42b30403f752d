//! Query strings as BBB hashes them.
//!
//! BBB checks the checksum against the raw query string exactly as received, so the string is
//! built once here, hashed, and sent untouched. Values are encoded as Java's `URLEncoder` does
//! (the encoding BBB itself uses when it rebuilds query strings): unreserved `A-Z a-z 0-9 - _ . *`,
//! space as `+`, every other byte of the UTF-8 text as upper-case `%XX`.

/// An ordered, already-encoded query string under construction.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Query {
    encoded: String,
}

impl Query {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `name=value`. Names are BBB parameter names and encoded like values, so a caller
    /// can never inject a separator.
    pub fn push(&mut self, name: &str, value: impl AsRef<str>) -> &mut Self {
        if !self.encoded.is_empty() {
            self.encoded.push('&');
        }
        encode_into(&mut self.encoded, name);
        self.encoded.push('=');
        encode_into(&mut self.encoded, value.as_ref());
        self
    }

    /// Builder form of [`Query::push`].
    pub fn with(mut self, name: &str, value: impl AsRef<str>) -> Self {
        self.push(name, value);
        self
    }

    /// Appends `name=true|false`, BBB's boolean literals.
    pub fn push_bool(&mut self, name: &str, value: bool) -> &mut Self {
        self.push(name, if value { "true" } else { "false" })
    }

    pub fn as_str(&self) -> &str {
        &self.encoded
    }

    pub fn is_empty(&self) -> bool {
        self.encoded.is_empty()
    }
}

/// Encodes `value` the way Java's `URLEncoder.encode(value, UTF_8)` does, which is the
/// `application/x-www-form-urlencoded` serializer of the URL standard.
pub fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn encode_into(out: &mut String, value: &str) {
    out.extend(form_urlencoded::byte_serialize(value.as_bytes()));
}

/// Decodes one form-encoded component: `+` is a space, `%XX` a byte. Malformed escapes are
/// kept literally and invalid UTF-8 is replaced, as servlet containers do, rather than failing.
pub fn decode(component: &str) -> String {
    percent_encoding::percent_decode_str(&component.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Splits a raw query string into decoded `(name, value)` pairs, in order. Empty segments
/// (`a=1&&b=2`, a trailing `&`) are skipped; a segment without `=` has an empty value.
pub fn parse(raw: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What Java's `URLEncoder` leaves as it is.
    fn is_unreserved(b: u8) -> bool {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'*')
    }

    #[test]
    fn encodes_like_java_url_encoder() {
        assert_eq!(encode("Test Meeting"), "Test+Meeting");
        assert_eq!(encode("a-z_A.Z*09"), "a-z_A.Z*09");
        assert_eq!(encode("~!'()"), "%7E%21%27%28%29");
        assert_eq!(encode("ä/€"), "%C3%A4%2F%E2%82%AC");
        assert_eq!(encode("a+b&c=d"), "a%2Bb%26c%3Dd");
    }

    #[test]
    fn builds_the_documented_create_query() {
        let q = Query::new()
            .with("name", "Test Meeting")
            .with("meetingID", "abc123")
            .with("attendeePW", "111222")
            .with("moderatorPW", "333444");
        assert_eq!(
            q.as_str(),
            "name=Test+Meeting&meetingID=abc123&attendeePW=111222&moderatorPW=333444"
        );
    }

    #[test]
    fn decodes_both_space_styles_and_keeps_bad_escapes() {
        assert_eq!(decode("a+b%20c"), "a b c");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert_eq!(
            parse("a=1&&b=&c&d=x%3Dy"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "".into()),
                ("c".into(), "".into()),
                ("d".into(), "x=y".into())
            ]
        );
    }

    proptest! {
        #[test]
        fn encoding_round_trips(value in any::<String>()) {
            prop_assert_eq!(decode(&encode(&value)), value);
        }

        #[test]
        fn encoded_text_uses_only_safe_characters(value in any::<String>()) {
            let encoded = encode(&value);
            prop_assert!(encoded.bytes().all(|b| is_unreserved(b) || b == b'+' || b == b'%'
                || b.is_ascii_hexdigit()));
        }

        #[test]
        fn queries_parse_back_to_their_pairs(
            pairs in proptest::collection::vec((any::<String>(), any::<String>()), 0..8)
        ) {
            let mut q = Query::new();
            for (name, value) in &pairs {
                q.push(name, value);
            }
            // Pairs whose name and value are both empty encode to "=" and survive; only a query of
            // nothing at all is empty.
            prop_assert_eq!(parse(q.as_str()), pairs);
        }

        #[test]
        fn decoding_never_panics(raw in any::<String>()) {
            let _ = parse(&raw);
        }
    }
}
