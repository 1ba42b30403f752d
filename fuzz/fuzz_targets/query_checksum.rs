//! Query strings and checksums: any raw query parses (without panicking) into pairs that a
//! [`Query`] re-encodes to the same pairs; any text encodes and decodes back to itself; and a
//! URL signed by an [`Endpoint`] verifies with `checksum::verify`, in any case of hex, while
//! arbitrary received checksums are judged without panicking.
//!
//! Input: `call \n raw query \n secret \n received checksum` (missing parts are empty).

#![no_main]

use eventyay_bbb::{
    bbb::{ChecksumAlgorithm, Endpoint, Query, checksum, query},
    secret::Secret,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(4, '\n');
    let (call, raw, secret, received) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );

    assert_eq!(query::decode(&query::encode(&text)), text);

    let pairs = query::parse(raw);
    let mut rebuilt = Query::new();
    for (name, value) in &pairs {
        rebuilt.push(name, value);
    }
    assert_eq!(query::parse(rebuilt.as_str()), pairs);

    // The server's side: any checksum at all is judged, true or false.
    let _ = checksum::verify(&ChecksumAlgorithm::ALL, call, raw, secret, received);

    // The client's side: what an endpoint signs, a server with the same secret accepts.
    if !secret.is_empty() {
        for algorithm in ChecksumAlgorithm::ALL {
            let Ok(endpoint) = Endpoint::new(
                "http://127.0.0.1:8090/bigbluebutton/",
                Secret::new(secret),
                algorithm,
            ) else {
                return;
            };
            let call = query::encode(call);
            let url = endpoint.signed_url(&call, &rebuilt);
            let signed = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
            let (sent, sum) = match signed.rsplit_once("checksum=") {
                Some((sent, sum)) => (sent.strip_suffix('&').unwrap_or(sent), sum),
                None => panic!("a signed URL without a checksum: {url}"),
            };
            assert_eq!(sent, rebuilt.as_str());
            assert!(checksum::verify(&[algorithm], &call, sent, secret, sum));
            let upper = sum.to_ascii_uppercase();
            assert!(checksum::verify(&[algorithm], &call, sent, secret, &upper));
        }
    }
});
