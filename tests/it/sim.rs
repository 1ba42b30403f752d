//! Black-box tests of the BBB emulator: a started `SimServer` (or the `eventyay-bbb sim`
//! process) spoken to over HTTP like a BBB client would, with requests signed here, by hand,
//! independently of the crate's own BBB client.

use eventyay_bbb::{
    bbb::checksum::ChecksumAlgorithm,
    sim::{Fault, Load, SimConfig, SimServer},
};
use quick_xml::{XmlVersion, escape::resolve_predefined_entity, events::Event, reader::Reader};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::{
    io::{BufRead, BufReader, Read},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

const SECRET: &str = "sim-test-secret-5f0c";

// ---------------------------------------------------------------------------------------------
// Signing and encoding, written out here so the tests do not trust the code under test.

#[derive(Debug, Clone, Copy)]
enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    const ALL: [Hash; 4] = [Hash::Sha1, Hash::Sha256, Hash::Sha384, Hash::Sha512];

    fn hex(self, data: &str) -> String {
        let data = data.as_bytes();
        match self {
            Hash::Sha1 => hex::encode(Sha1::digest(data)),
            Hash::Sha256 => hex::encode(Sha256::digest(data)),
            Hash::Sha384 => hex::encode(Sha384::digest(data)),
            Hash::Sha512 => hex::encode(Sha512::digest(data)),
        }
    }
}

/// Form encoding as Java's URLEncoder does it.
fn enc(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn client(timeout: Duration) -> reqwest::Client {
    // reqwest is built without a default TLS provider and wants one even for plain HTTP.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// A small XML tree, so answers are checked the way a client parses them.

#[derive(Debug, Default)]
struct Node {
    name: String,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The trimmed text of the child element `name`; panics if there is none.
    fn at(&self, name: &str) -> &str {
        self.opt(name)
            .unwrap_or_else(|| panic!("no <{name}> in <{}>: {self:#?}", self.name))
    }

    fn opt(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }

    fn all(&self, name: &str) -> Vec<&Node> {
        self.children.iter().filter(|c| c.name == name).collect()
    }

    fn names(&self) -> Vec<&str> {
        self.children.iter().map(|c| c.name.as_str()).collect()
    }
}

fn parse(xml: &str) -> Result<Node, String> {
    let mut reader = Reader::from_str(xml);
    let mut stack = vec![Node::default()];
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) => stack.push(Node {
                name: e.name().as_ref().to_owned(),
                ..Node::default()
            }),
            Event::Empty(e) => stack.last_mut().unwrap().children.push(Node {
                name: e.name().as_ref().to_owned(),
                ..Node::default()
            }),
            Event::End(_) => {
                let node = stack.pop().unwrap();
                stack
                    .last_mut()
                    .ok_or("unbalanced end tag")?
                    .children
                    .push(node);
            }
            Event::Text(t) => {
                let text = t.xml_content(XmlVersion::Implicit1_0);
                stack.last_mut().unwrap().text.push_str(&text);
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => c.to_string(),
                    None => resolve_predefined_entity(r.as_ref())
                        .ok_or("unknown entity")?
                        .to_owned(),
                };
                stack.last_mut().unwrap().text.push_str(&resolved);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut document = stack.pop().unwrap();
    if !stack.is_empty() || document.children.len() != 1 {
        return Err("not exactly one closed root element".into());
    }
    Ok(document.children.remove(0))
}

// ---------------------------------------------------------------------------------------------
// The emulator under test and a client for it.

struct Bbb {
    sim: SimServer,
    http: reqwest::Client,
}

impl Bbb {
    async fn start() -> Self {
        Self::with(SimConfig::new(SECRET)).await
    }

    async fn with(config: SimConfig) -> Self {
        Bbb {
            sim: SimServer::start(config).await.expect("the emulator starts"),
            http: client(Duration::from_secs(10)),
        }
    }

    fn signed_with(&self, hash: Hash, call: &str, query: &str) -> String {
        let checksum = hash.hex(&format!("{call}{query}{SECRET}"));
        let sep = if query.is_empty() { "" } else { "&" };
        format!(
            "{}api/{call}?{query}{sep}checksum={checksum}",
            self.sim.base_url()
        )
    }

    fn signed(&self, call: &str, pairs: &[(&str, &str)]) -> String {
        self.signed_with(Hash::Sha256, call, &query(pairs))
    }

    async fn get(&self, url: &str) -> reqwest::Response {
        self.http
            .get(url)
            .send()
            .await
            .expect("the request is answered")
    }

    /// GETs `url`, expecting BBB's usual HTTP 200 XML answer.
    async fn xml(&self, url: &str) -> Node {
        let response = self.get(url).await;
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(
            response.headers()["content-type"],
            "text/xml;charset=utf-8",
            "{url}"
        );
        let body = response.text().await.unwrap();
        parse(&body).unwrap_or_else(|e| panic!("{url} answered malformed XML ({e}): {body}"))
    }

    async fn call(&self, call: &str, pairs: &[(&str, &str)]) -> Node {
        self.xml(&self.signed(call, pairs)).await
    }

    async fn create(&self, meeting_id: &str, extra: &[(&str, &str)]) -> Node {
        let name = format!("Room {meeting_id}");
        let mut pairs = vec![("name", name.as_str()), ("meetingID", meeting_id)];
        pairs.extend_from_slice(extra);
        let created = self.call("create", &pairs).await;
        assert_eq!(created.at("returncode"), "SUCCESS", "{created:#?}");
        created
    }

    async fn join_xml(&self, meeting_id: &str, extra: &[(&str, &str)]) -> Node {
        let mut pairs = vec![
            ("meetingID", meeting_id),
            ("fullName", "Ada Lovelace"),
            ("redirect", "false"),
        ];
        pairs.extend_from_slice(extra);
        self.call("join", &pairs).await
    }

    async fn end(&self, meeting_id: &str) -> Node {
        self.call("end", &[("meetingID", meeting_id)]).await
    }
}

fn assert_failed(answer: &Node, key: &str) {
    assert_eq!(answer.at("returncode"), "FAILED", "{answer:#?}");
    assert_eq!(answer.at("messageKey"), key, "{answer:#?}");
}

// ---------------------------------------------------------------------------------------------
// Checksums

#[tokio::test]
async fn every_checksum_algorithm_is_accepted() {
    let bbb = Bbb::start().await;
    for hash in Hash::ALL {
        let answer = bbb.xml(&bbb.signed_with(hash, "getMeetings", "")).await;
        assert_eq!(answer.at("returncode"), "SUCCESS", "{hash:?}");
    }
}

#[tokio::test]
async fn a_server_limited_to_sha512_rejects_sha256() {
    let mut config = SimConfig::new(SECRET);
    config.checksums = vec![ChecksumAlgorithm::Sha512];
    let bbb = Bbb::with(config).await;

    let rejected = bbb
        .xml(&bbb.signed_with(Hash::Sha256, "getMeetings", ""))
        .await;
    assert_failed(&rejected, "checksumError");
    assert_eq!(rejected.at("message"), "Checksums do not match");

    let accepted = bbb
        .xml(&bbb.signed_with(Hash::Sha512, "getMeetings", ""))
        .await;
    assert_eq!(accepted.at("returncode"), "SUCCESS");
}

#[tokio::test]
async fn wrong_missing_and_duplicate_checksums_are_rejected() {
    let bbb = Bbb::start().await;
    let q = query(&[("meetingID", "room-1")]);
    let api = format!("{}api/", bbb.sim.base_url());
    let good = Hash::Sha1.hex(&format!("isMeetingRunning{q}{SECRET}"));
    let other_secret = Hash::Sha1.hex(&format!("isMeetingRunning{q}not-the-secret"));
    let other_call = Hash::Sha1.hex(&format!("getMeetingInfo{q}{SECRET}"));

    for url in [
        format!("{api}isMeetingRunning?{q}&checksum={other_secret}"),
        format!("{api}isMeetingRunning?{q}&checksum={other_call}"),
        format!("{api}isMeetingRunning?{q}"),
        format!("{api}isMeetingRunning?{q}&checksum="),
        format!("{api}isMeetingRunning?{q}&checksum={}", &good[..39]),
        format!("{api}isMeetingRunning?{q}&checksum={good}&checksum={good}"),
    ] {
        assert_failed(&bbb.xml(&url).await, "checksumError");
    }

    // The recording API words the same failure the pre-2.4 way.
    let recordings = bbb
        .xml(&format!("{api}getRecordings?checksum={good}"))
        .await;
    assert_failed(&recordings, "checksumError");
    assert_eq!(
        recordings.at("message"),
        "You did not pass the checksum security check"
    );

    // BBB strips the checksum wherever it sits and compares hex case-insensitively.
    for url in [
        format!("{api}isMeetingRunning?{q}&checksum={good}"),
        format!("{api}isMeetingRunning?checksum={good}&{q}"),
        format!("{api}isMeetingRunning?{q}&checksum={}", good.to_uppercase()),
    ] {
        assert_eq!(bbb.xml(&url).await.at("returncode"), "SUCCESS", "{url}");
    }
}

#[tokio::test]
async fn the_checksum_covers_the_query_exactly_as_sent() {
    let bbb = Bbb::start().await;
    // Both spellings of a space work, as long as the hashed bytes are the sent bytes.
    for q in [
        "name=Team%20Room&meetingID=raw-1",
        "name=Team+Room&meetingID=raw-2",
    ] {
        let created = bbb.xml(&bbb.signed_with(Hash::Sha256, "create", q)).await;
        assert_eq!(created.at("returncode"), "SUCCESS", "{q}");
    }
    let names: Vec<String> = bbb.sim.meetings().into_iter().map(|m| m.name).collect();
    assert_eq!(names, ["Team Room", "Team Room"]);

    // Signed with one spelling, sent with the other: rejected.
    let signed = bbb.signed_with(Hash::Sha256, "create", "name=A+B&meetingID=raw-3");
    let tampered = signed.replace("A+B", "A%20B");
    assert_failed(&bbb.xml(&tampered).await, "checksumError");
}

// ---------------------------------------------------------------------------------------------
// create

#[tokio::test]
async fn create_answers_like_bbb_and_is_idempotent() {
    let bbb = Bbb::start().await;
    let created = bbb.create("standup", &[]).await;
    assert_eq!(
        created.names(),
        [
            "returncode",
            "meetingID",
            "internalMeetingID",
            "parentMeetingID",
            "attendeePW",
            "moderatorPW",
            "createTime",
            "voiceBridge",
            "dialNumber",
            "createDate",
            "hasUserJoined",
            "duration",
            "hasBeenForciblyEnded",
            "messageKey",
            "message"
        ]
    );
    assert_eq!(created.at("meetingID"), "standup");
    assert_eq!(created.at("parentMeetingID"), "bbb-none");
    assert_eq!(created.at("messageKey"), "");
    assert_eq!(created.at("dialNumber"), "613-555-1234");
    let create_time = created.at("createTime");
    assert_eq!(
        created.at("internalMeetingID"),
        format!("{}-{create_time}", Hash::Sha1.hex("standup"))
    );
    let voice_bridge: u32 = created.at("voiceBridge").parse().unwrap();
    assert!((10000..=99999).contains(&voice_bridge));
    for pw in ["attendeePW", "moderatorPW"] {
        let pw = created.at(pw);
        assert_eq!(pw.len(), 8);
        assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()));
    }
    let weekday = created.at("createDate").split(' ').next().unwrap();
    assert!(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].contains(&weekday));

    // Again without passwords, or with the same ones: the same meeting, with a warning.
    let (ap, mp) = (created.at("attendeePW"), created.at("moderatorPW"));
    for extra in [vec![], vec![("attendeePW", ap), ("moderatorPW", mp)]] {
        let again = bbb.create("standup", &extra).await;
        assert_eq!(again.at("messageKey"), "duplicateWarning");
        assert_eq!(
            again.at("message"),
            "This conference was already in existence and may currently be in progress."
        );
        assert_eq!(again.at("createTime"), create_time);
        assert_eq!(
            again.at("internalMeetingID"),
            created.at("internalMeetingID")
        );
    }

    // Different passwords: someone else's meeting.
    let clash = bbb
        .call(
            "create",
            &[
                ("name", "Standup"),
                ("meetingID", "standup"),
                ("attendeePW", "other"),
                ("moderatorPW", mp),
            ],
        )
        .await;
    assert_failed(&clash, "idNotUnique");
    assert_eq!(
        clash.at("message"),
        "A meeting already exists with that meeting ID.  Please use a different meeting ID."
    );
    assert_eq!(bbb.sim.meetings().len(), 1);
}

#[tokio::test]
async fn create_validates_its_parameters() {
    let bbb = Bbb::start().await;
    let missing = bbb.call("create", &[("name", "No ID")]).await;
    assert_failed(&missing, "missingParamMeetingID");
    assert_eq!(missing.at("message"), "You must provide a meeting ID");
    let too_long = "x".repeat(257);
    for bad_id in ["x", "a,b", too_long.as_str()] {
        let answer = bbb
            .call("create", &[("name", "Bad ID"), ("meetingID", bad_id)])
            .await;
        assert_failed(&answer, "validationError");
    }
    assert_failed(
        &bbb.call("create", &[("meetingID", "nameless")]).await,
        "validationError",
    );
    assert!(bbb.sim.meetings().is_empty());
}

#[tokio::test]
async fn create_keeps_its_settings_and_valid_metadata() {
    let bbb = Bbb::start().await;
    bbb.create(
        "settings",
        &[
            ("record", "true"),
            ("guestPolicy", "ASK_MODERATOR"),
            ("voiceBridge", "71234"),
            ("attendeePW", "ap-secret"),
            ("moderatorPW", "mp-secret"),
            ("meta_endCallbackUrl", "https://example.org/ended?a=1&b=2"),
            ("meta_bbb-origin", "eventyay"),
            ("meta_not_valid", "dropped"),
            ("meta_9lives", "dropped"),
        ],
    )
    .await;
    let [meeting] = bbb.sim.meetings().try_into().unwrap();
    assert!(meeting.record);
    assert_eq!(meeting.guest_policy, "ASK_MODERATOR");
    assert_eq!(meeting.voice_bridge, "71234");
    assert_eq!(
        (meeting.attendee_pw.as_str(), meeting.moderator_pw.as_str()),
        ("ap-secret", "mp-secret")
    );
    assert_eq!(
        meeting.metadata,
        [
            (
                "endcallbackurl".to_owned(),
                "https://example.org/ended?a=1&b=2".to_owned()
            ),
            ("bbb-origin".to_owned(), "eventyay".to_owned()),
        ]
    );
    assert!(
        meeting
            .create_params
            .contains(&("record".into(), "true".into()))
    );
    assert!(!meeting.create_params.iter().any(|(k, _)| k == "checksum"));

    let info = bbb
        .call("getMeetingInfo", &[("meetingID", "settings")])
        .await;
    let metadata = info.child("metadata").unwrap();
    assert_eq!(
        metadata.at("endcallbackurl"),
        "https://example.org/ended?a=1&b=2"
    );
    assert_eq!(metadata.children.len(), 2);

    // A voice bridge in use by another meeting is refused, in the old error-list form.
    let clash = bbb
        .call(
            "create",
            &[
                ("name", "Other"),
                ("meetingID", "other"),
                ("voiceBridge", "71234"),
            ],
        )
        .await;
    assert_eq!(clash.at("returncode"), "FAILED");
    let error = clash.child("errors").unwrap().child("error").unwrap();
    assert_eq!(error.at("key"), "nonUniqueVoiceBridge");
}

#[tokio::test]
async fn post_create_takes_the_presentation_from_the_body() {
    let bbb = Bbb::start().await;
    let url = bbb.signed("create", &[("name", "Slides"), ("meetingID", "slides")]);
    let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<modules><module name="presentation">
<document url="https://example.org/deck.pdf" filename="deck.pdf"/>
<document url="https://example.org/more.pdf?v=1&amp;w=2"/>
</module></modules>"#;
    let response = bbb
        .http
        .post(&url)
        .header("content-type", "application/xml")
        .body(body)
        .send()
        .await
        .unwrap();
    let answer = parse(&response.text().await.unwrap()).unwrap();
    assert_eq!(answer.at("returncode"), "SUCCESS");
    assert_eq!(
        bbb.sim.meetings()[0].presentation_urls,
        [
            "https://example.org/deck.pdf",
            "https://example.org/more.pdf?v=1&w=2"
        ]
    );

    let url = bbb.signed("create", &[("name", "Slides"), ("meetingID", "slides-2")]);
    for (content_type, body, key) in [
        ("text/plain", body, "unsupportedContentType"),
        (
            "text/xml",
            "<modules><module name=\"presentation\">",
            "malformedXml",
        ),
    ] {
        let response = bbb
            .http
            .post(&url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_failed(&parse(&response.text().await.unwrap()).unwrap(), key);
    }
    assert_eq!(bbb.sim.meetings().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// join

#[tokio::test]
async fn join_by_role_or_password_and_count_the_attendees() {
    let bbb = Bbb::start().await;
    let created = bbb.create("class", &[]).await;
    let (ap, mp) = (created.at("attendeePW"), created.at("moderatorPW"));

    let joined = bbb
        .join_xml(
            "class",
            &[
                ("role", "moderator"),
                ("userID", "u-1"),
                ("userdata-bbb_auto_join_audio", "true"),
            ],
        )
        .await;
    assert_eq!(joined.at("returncode"), "SUCCESS");
    assert_eq!(joined.at("messageKey"), "successfullyJoined");
    assert_eq!(joined.at("meeting_id"), created.at("internalMeetingID"));
    assert_eq!(joined.at("guestStatus"), "ALLOW");
    assert!(joined.at("user_id").starts_with("w_"));
    let token = joined.at("session_token");
    assert_eq!(token.len(), 16);
    assert_eq!(
        joined.at("url"),
        format!(
            "http://{}/html5client/join?sessionToken={token}",
            bbb.sim.addr()
        )
    );

    bbb.join_xml("class", &[("password", ap), ("userID", "u-2")])
        .await;
    // The role wins over a password.
    bbb.join_xml(
        "class",
        &[("password", mp), ("role", "VIEWER"), ("userID", "u-3")],
    )
    .await;
    let wrong = bbb.join_xml("class", &[("password", "guess")]).await;
    assert_failed(&wrong, "Params required");
    assert_eq!(wrong.at("message"), "You must enter a valid password");
    assert_failed(&bbb.join_xml("class", &[]).await, "Params required");
    let nameless = bbb
        .call(
            "join",
            &[
                ("meetingID", "class"),
                ("fullName", "  "),
                ("role", "VIEWER"),
                ("redirect", "false"),
            ],
        )
        .await;
    assert_failed(&nameless, "missingParamFullName");

    let info = bbb.call("getMeetingInfo", &[("meetingID", "class")]).await;
    assert_eq!(info.at("running"), "true");
    assert_eq!(info.at("hasUserJoined"), "true");
    assert_eq!(info.at("participantCount"), "3");
    assert_eq!(info.at("moderatorCount"), "1");
    let attendees = info.child("attendees").unwrap().all("attendee");
    let roles: Vec<(&str, &str)> = attendees
        .iter()
        .map(|a| (a.at("userID"), a.at("role")))
        .collect();
    assert_eq!(
        roles,
        [("u-1", "MODERATOR"), ("u-2", "VIEWER"), ("u-3", "VIEWER")]
    );
    assert_eq!(attendees[0].at("fullName"), "Ada Lovelace");
    assert_eq!(
        attendees[0]
            .child("customdata")
            .unwrap()
            .at("bbb_auto_join_audio"),
        "true"
    );
    let meeting = &bbb.sim.meetings()[0];
    assert_eq!((meeting.participants, meeting.moderators), (3, 1));
    assert!(meeting.running);
}

#[tokio::test]
async fn join_redirects_a_browser_to_the_client() {
    let bbb = Bbb::start().await;
    bbb.create("redirected", &[]).await;
    let response = bbb
        .get(&bbb.signed(
            "join",
            &[
                ("meetingID", "redirected"),
                ("fullName", "Grace Hopper"),
                ("role", "VIEWER"),
            ],
        ))
        .await;
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let prefix = format!("http://{}/html5client/join?sessionToken=", bbb.sim.addr());
    let token = location.strip_prefix(&prefix).expect("the client URL");
    assert_eq!(token.len(), 16);
    assert!(token.chars().all(|c| c.is_ascii_alphanumeric()));

    let page = bbb.get(&location).await;
    assert_eq!(page.status(), 200);
    assert_eq!(bbb.sim.meetings()[0].participants, 1);
}

#[tokio::test]
async fn join_errors_redirect_with_the_errors_in_the_query() {
    let bbb = Bbb::start().await;
    let response = bbb
        .get(&bbb.signed(
            "join",
            &[
                ("meetingID", "nowhere"),
                ("fullName", "X"),
                ("role", "VIEWER"),
            ],
        ))
        .await;
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let (target, errors) = location.split_once("?errors=").unwrap();
    assert_eq!(target, format!("http://{}/", bbb.sim.addr()));
    assert_eq!(
        percent_decode(errors),
        r#"[{"key":"invalidMeetingIdentifier","message":"A meeting with that ID does not exist"}]"#
    );

    // A meeting with a logout URL sends its errors there.
    bbb.create(
        "logout",
        &[("logoutURL", "https://example.org/bye?from=bbb")],
    )
    .await;
    let response = bbb
        .get(&bbb.signed(
            "join",
            &[
                ("meetingID", "logout"),
                ("fullName", "X"),
                ("role", "VIEWER"),
                ("createTime", "1"),
            ],
        ))
        .await;
    let location = response.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("https://example.org/bye?from=bbb&errors="),
        "{location}"
    );
    assert!(percent_decode(location).contains(r#""key":"mismatchCreateTimeParam""#));
}

#[tokio::test]
async fn join_checks_the_create_time() {
    let bbb = Bbb::start().await;
    let created = bbb.create("timed", &[]).await;
    let create_time = created.at("createTime");
    let stale = (create_time.parse::<u64>().unwrap() - 1).to_string();
    let mismatch = bbb
        .join_xml("timed", &[("role", "VIEWER"), ("createTime", &stale)])
        .await;
    assert_failed(&mismatch, "mismatchCreateTimeParam");
    let joined = bbb
        .join_xml("timed", &[("role", "VIEWER"), ("createTime", create_time)])
        .await;
    assert_eq!(joined.at("returncode"), "SUCCESS");
}

#[tokio::test]
async fn guests_wait_or_are_denied_by_policy_and_seats_run_out() {
    let bbb = Bbb::start().await;
    bbb.create("lobby", &[("guestPolicy", "ASK_MODERATOR")])
        .await;
    let waiting = bbb
        .join_xml("lobby", &[("role", "VIEWER"), ("guest", "true")])
        .await;
    assert_eq!(waiting.at("messageKey"), "guestWait");
    assert_eq!(waiting.at("guestStatus"), "WAIT");
    assert!(
        waiting
            .at("url")
            .contains("/html5client/guestWait?sessionToken=")
    );
    assert_eq!(bbb.sim.meetings()[0].participants, 0);

    bbb.create("closed", &[("guestPolicy", "ALWAYS_DENY")])
        .await;
    let denied = bbb
        .join_xml("closed", &[("role", "VIEWER"), ("guest", "true")])
        .await;
    assert_failed(&denied, "guestDeniedAccess");

    bbb.create("small", &[("maxParticipants", "1")]).await;
    let first = [("role", "VIEWER"), ("userID", "first")];
    assert_eq!(
        bbb.join_xml("small", &first).await.at("returncode"),
        "SUCCESS"
    );
    let second = bbb
        .join_xml("small", &[("role", "VIEWER"), ("userID", "second")])
        .await;
    assert_failed(&second, "maxParticipantsReached");
    // Someone already in may come back.
    assert_eq!(
        bbb.join_xml("small", &first).await.at("returncode"),
        "SUCCESS"
    );
}

#[tokio::test]
async fn join_is_get_only() {
    let bbb = Bbb::start().await;
    bbb.create("get-only", &[]).await;
    let url = bbb.signed(
        "join",
        &[
            ("meetingID", "get-only"),
            ("fullName", "X"),
            ("role", "VIEWER"),
        ],
    );
    let response = bbb
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(bbb.sim.meetings()[0].participants, 0);
}

// ---------------------------------------------------------------------------------------------
// getMeetings, getMeetingInfo, isMeetingRunning, end

#[tokio::test]
async fn get_meetings_lists_the_current_meetings() {
    let bbb = Bbb::start().await;
    let empty = bbb.call("getMeetings", &[]).await;
    assert_eq!(empty.at("returncode"), "SUCCESS");
    assert!(empty.child("meetings").unwrap().children.is_empty());
    assert_eq!(empty.at("messageKey"), "noMeetings");

    bbb.create("first", &[("meta_presenter", "Ada")]).await;
    bbb.create("second", &[]).await;
    let listed = bbb.call("getMeetings", &[]).await;
    assert_eq!(listed.opt("messageKey"), None);
    let meetings = listed.child("meetings").unwrap().all("meeting");
    let ids: Vec<&str> = meetings.iter().map(|m| m.at("meetingID")).collect();
    assert_eq!(ids, ["first", "second"]);
    assert_eq!(
        meetings[0].names(),
        [
            "meetingName",
            "meetingID",
            "internalMeetingID",
            "createTime",
            "createDate",
            "voiceBridge",
            "dialNumber",
            "attendeePW",
            "moderatorPW",
            "running",
            "duration",
            "hasUserJoined",
            "recording",
            "hasBeenForciblyEnded",
            "startTime",
            "endTime",
            "participantCount",
            "listenerCount",
            "voiceParticipantCount",
            "videoCount",
            "maxUsers",
            "moderatorCount",
            "attendees",
            "metadata",
            "isBreakout"
        ]
    );
    assert_eq!(meetings[0].at("running"), "false");
    assert_eq!(
        meetings[0].child("metadata").unwrap().at("presenter"),
        "Ada"
    );
}

#[tokio::test]
async fn unknown_meetings_are_not_found_or_not_running() {
    let bbb = Bbb::start().await;
    let info = bbb.call("getMeetingInfo", &[("meetingID", "ghost")]).await;
    assert_failed(&info, "notFound");
    assert_eq!(info.at("message"), "A meeting with that ID does not exist");

    let running = bbb
        .call("isMeetingRunning", &[("meetingID", "ghost")])
        .await;
    assert_eq!(running.at("returncode"), "SUCCESS");
    assert_eq!(running.at("running"), "false");

    assert_failed(
        &bbb.call("isMeetingRunning", &[]).await,
        "missingParamMeetingID",
    );
    assert_failed(&bbb.end("ghost").await, "notFound");
}

#[tokio::test]
async fn an_ended_meeting_cannot_be_joined_but_can_be_created_anew() {
    let bbb = Bbb::start().await;
    let created = bbb.create("weekly", &[]).await;
    bbb.join_xml("weekly", &[("role", "MODERATOR")]).await;
    let running = bbb
        .call("isMeetingRunning", &[("meetingID", "weekly")])
        .await;
    assert_eq!(running.at("running"), "true");

    let ended = bbb.end("weekly").await;
    assert_eq!(ended.at("returncode"), "SUCCESS");
    assert_eq!(ended.at("messageKey"), "sentEndMeetingRequest");
    assert!(bbb.sim.meetings().is_empty());
    let listed = bbb.call("getMeetings", &[]).await;
    assert_eq!(listed.at("messageKey"), "noMeetings");
    let running = bbb
        .call("isMeetingRunning", &[("meetingID", "weekly")])
        .await;
    assert_eq!(running.at("running"), "false");
    let info = bbb.call("getMeetingInfo", &[("meetingID", "weekly")]).await;
    assert_eq!(info.at("hasBeenForciblyEnded"), "true");
    assert_ne!(info.at("endTime"), "0");

    let rejoin = bbb.join_xml("weekly", &[("role", "MODERATOR")]).await;
    assert_failed(&rejoin, "meetingForciblyEnded");

    let fresh = bbb.create("weekly", &[]).await;
    assert_eq!(fresh.at("messageKey"), "");
    let (old, new): (u64, u64) = (
        created.at("createTime").parse().unwrap(),
        fresh.at("createTime").parse().unwrap(),
    );
    assert!(new > old, "{new} > {old}");
    assert_ne!(
        fresh.at("internalMeetingID"),
        created.at("internalMeetingID")
    );
    // The new meeting starts empty and can be joined.
    let joined = bbb.join_xml("weekly", &[("role", "VIEWER")]).await;
    assert_eq!(joined.at("returncode"), "SUCCESS");
    assert_eq!(bbb.sim.meetings()[0].participants, 1);
}

#[tokio::test]
async fn a_set_load_shows_in_get_meetings() {
    let bbb = Bbb::start().await;
    let load = Load {
        participants: 42,
        voice: 12,
        video: 7,
        listeners: 30,
        moderators: 2,
    };
    assert!(!bbb.sim.set_meeting_load("busy", load));
    bbb.create("busy", &[]).await;
    assert!(bbb.sim.set_meeting_load("busy", load));

    let listed = bbb.call("getMeetings", &[]).await;
    let meeting = listed.child("meetings").unwrap().child("meeting").unwrap();
    for (field, expected) in [
        ("participantCount", "42"),
        ("voiceParticipantCount", "12"),
        ("videoCount", "7"),
        ("listenerCount", "30"),
        ("moderatorCount", "2"),
        ("running", "true"),
    ] {
        assert_eq!(meeting.at(field), expected, "{field}");
    }
    bbb.end("busy").await;
    assert!(!bbb.sim.set_meeting_load("busy", load));
}

// ---------------------------------------------------------------------------------------------
// Recordings

#[tokio::test]
async fn a_recorded_meeting_leaves_a_recording_when_it_ends() {
    let bbb = Bbb::start().await;
    let created = bbb
        .create(
            "lecture",
            &[("record", "true"), ("meta_bbb-origin", "eventyay")],
        )
        .await;
    bbb.join_xml("lecture", &[("role", "MODERATOR")]).await;
    bbb.join_xml("lecture", &[("role", "VIEWER")]).await;
    bbb.create("unrecorded", &[]).await;
    bbb.end("unrecorded").await;
    assert!(bbb.sim.recordings().is_empty());

    bbb.end("lecture").await;
    let record_id = created.at("internalMeetingID");
    let [snapshot] = bbb.sim.recordings().try_into().unwrap();
    assert_eq!(
        (snapshot.record_id.as_str(), snapshot.meeting_id.as_str()),
        (record_id, "lecture")
    );
    assert_eq!(snapshot.state, "published");

    let answer = bbb
        .call("getRecordings", &[("meetingID", "lecture,unrecorded")])
        .await;
    assert_eq!(answer.at("returncode"), "SUCCESS");
    let [recording] = answer
        .child("recordings")
        .unwrap()
        .all("recording")
        .try_into()
        .unwrap();
    assert_eq!(recording.at("recordID"), record_id);
    assert_eq!(recording.at("internalMeetingID"), record_id);
    assert_eq!(recording.at("meetingID"), "lecture");
    assert_eq!(recording.at("name"), "Room lecture");
    assert_eq!(recording.at("state"), "published");
    assert_eq!(recording.at("published"), "true");
    assert_eq!(recording.at("participants"), "2");
    assert_eq!(recording.at("startTime"), created.at("createTime"));
    let metadata = recording.child("metadata").unwrap();
    assert_eq!(metadata.at("bbb-origin"), "eventyay");
    assert_eq!(metadata.at("meetingName"), "Room lecture");
    assert_eq!(metadata.at("isBreakout"), "false");
    let formats = recording.child("playback").unwrap().all("format");
    let playback: Vec<(&str, &str)> = formats
        .iter()
        .map(|f| (f.at("type"), f.at("url")))
        .collect();
    let host = bbb.sim.addr();
    assert_eq!(
        playback,
        [
            (
                "presentation",
                format!("http://{host}/playback/presentation/2.3/{record_id}").as_str()
            ),
            (
                "video",
                format!("http://{host}/playback/video/{record_id}/").as_str()
            ),
        ]
    );
    assert_eq!(formats[0].at("length"), "0");

    let none = bbb
        .call("getRecordings", &[("meetingID", "unrecorded")])
        .await;
    assert_eq!(none.at("messageKey"), "noRecordings");
    assert!(none.child("recordings").unwrap().children.is_empty());
}

#[tokio::test]
async fn recordings_are_processing_until_the_publish_delay_has_passed() {
    let mut config = SimConfig::new(SECRET);
    config.publish_delay = Duration::from_secs(1);
    let bbb = Bbb::with(config).await;
    bbb.create("slow", &[("record", "true")]).await;
    let ended = Instant::now();
    bbb.end("slow").await;

    assert_eq!(bbb.sim.recordings()[0].state, "processing");
    // By default getRecordings shows only published and unpublished ones.
    let default = bbb.call("getRecordings", &[("meetingID", "slow")]).await;
    assert_eq!(default.at("messageKey"), "noRecordings");
    let any = bbb
        .call("getRecordings", &[("meetingID", "slow"), ("state", "any")])
        .await;
    let recording = any.child("recordings").unwrap().child("recording").unwrap();
    assert_eq!(recording.at("state"), "processing");
    assert_eq!(recording.at("published"), "false");

    while bbb.sim.recordings()[0].state == "processing" {
        assert!(ended.elapsed() < Duration::from_secs(5), "never published");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ended.elapsed() >= Duration::from_secs(1));
    let published = bbb
        .call(
            "getRecordings",
            &[("meetingID", "slow"), ("state", "published")],
        )
        .await;
    let recording = published
        .child("recordings")
        .unwrap()
        .child("recording")
        .unwrap();
    assert_eq!(recording.at("state"), "published");
    assert_eq!(recording.child("playback").unwrap().all("format").len(), 2);
}

#[tokio::test]
async fn get_recordings_pages_and_counts_the_total() {
    let bbb = Bbb::start().await;
    for i in 0..5 {
        let id = format!("series-{i}");
        bbb.create(&id, &[("record", "true")]).await;
        bbb.end(&id).await;
    }
    let all = bbb.call("getRecordings", &[]).await;
    assert_eq!(all.child("recordings").unwrap().all("recording").len(), 5);
    assert_eq!(all.opt("totalElements"), None);

    let page = bbb
        .call("getRecordings", &[("offset", "1"), ("limit", "2")])
        .await;
    let ids: Vec<&str> = page
        .child("recordings")
        .unwrap()
        .all("recording")
        .iter()
        .map(|r| r.at("meetingID"))
        .collect();
    assert_eq!(ids, ["series-1", "series-2"]);
    assert_eq!(page.names().last(), Some(&"totalElements"));
    assert_eq!(page.at("totalElements"), "5");

    // The limit is clamped to 1..=100.
    let clamped = bbb.call("getRecordings", &[("limit", "0")]).await;
    assert_eq!(
        clamped.child("recordings").unwrap().all("recording").len(),
        1
    );

    // A recordID matches by prefix: sha1(meetingID) finds every session of a meeting.
    let prefix = Hash::Sha1.hex("series-3");
    let by_prefix = bbb.call("getRecordings", &[("recordID", &prefix)]).await;
    let found = by_prefix.child("recordings").unwrap().all("recording");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].at("meetingID"), "series-3");
}

// ---------------------------------------------------------------------------------------------
// Faults and latency

#[tokio::test]
async fn unavailable_answers_503_and_the_control_surface_still_works() {
    let bbb = Bbb::start().await;
    bbb.sim.set_fault(Fault::Unavailable);
    let url = bbb.signed("getMeetings", &[]);
    assert_eq!(bbb.get(&url).await.status(), 503);
    assert_eq!(
        bbb.get(&format!("{}api", bbb.sim.base_url()))
            .await
            .status(),
        503
    );

    let control = format!("http://{}/_sim/fault?mode=none", bbb.sim.addr());
    let switched = bbb.http.post(&control).send().await.unwrap();
    assert_eq!(switched.status(), 200);
    assert_eq!(bbb.get(&url).await.status(), 200);
}

#[tokio::test]
async fn fail_fraction_answers_500_for_that_share_of_calls() {
    let bbb = Bbb::start().await;
    let url = bbb.signed("getMeetings", &[]);
    bbb.sim.set_fault(Fault::FailFraction(1.0));
    for _ in 0..5 {
        assert_eq!(bbb.get(&url).await.status(), 500);
    }
    bbb.sim.set_fault(Fault::FailFraction(0.0));
    for _ in 0..5 {
        assert_eq!(bbb.get(&url).await.status(), 200);
    }
    // Failed calls count too.
    assert_eq!(bbb.sim.call_count("getMeetings"), 10);
}

#[tokio::test]
async fn malformed_answers_are_not_xml() {
    let bbb = Bbb::start().await;
    bbb.sim.set_fault(Fault::Malformed);
    let response = bbb.get(&bbb.signed("getMeetings", &[])).await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(parse(&body).is_err(), "{body}");
    bbb.sim.set_fault(Fault::None);
    bbb.call("getMeetings", &[]).await;
}

#[tokio::test]
async fn a_hanging_server_makes_clients_time_out() {
    let bbb = Bbb::start().await;
    let url = bbb.signed("getMeetings", &[]);
    bbb.sim.set_fault(Fault::Hang);
    let impatient = client(Duration::from_millis(300));
    let started = Instant::now();
    let error = impatient.get(&url).send().await.unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    bbb.sim.set_fault(Fault::None);
    assert_eq!(impatient.get(&url).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_refusing_server_cannot_be_reached_until_it_recovers() {
    let bbb = Bbb::start().await;
    let url = bbb.signed("getMeetings", &[]);
    // A pooled keep-alive connection exists before the outage.
    assert_eq!(bbb.get(&url).await.status(), 200);

    bbb.sim.set_fault(Fault::Refuse);
    let error = bbb.http.get(&url).send().await.unwrap_err();
    assert!(error.is_connect() || error.is_request(), "{error}");
    let fresh = client(Duration::from_secs(5));
    let error = fresh.get(&url).send().await.unwrap_err();
    assert!(error.is_connect(), "{error}");

    bbb.sim.set_fault(Fault::None);
    assert_eq!(fresh.get(&url).send().await.unwrap().status(), 200);
    assert_eq!(bbb.get(&url).await.status(), 200);
}

#[tokio::test]
async fn latency_delays_every_answer() {
    let mut config = SimConfig::new(SECRET);
    config.latency = Duration::from_millis(300);
    let bbb = Bbb::with(config).await;
    let url = bbb.signed("getMeetings", &[]);
    let started = Instant::now();
    bbb.xml(&url).await;
    assert!(started.elapsed() >= Duration::from_millis(300));

    bbb.sim.set_latency(Duration::ZERO);
    let started = Instant::now();
    bbb.xml(&url).await;
    assert!(started.elapsed() < Duration::from_millis(300));
}

// ---------------------------------------------------------------------------------------------
// The rest of the surface

#[tokio::test]
async fn the_version_document_needs_no_checksum() {
    let bbb = Bbb::start().await;
    for path in ["api", "api/"] {
        let answer = bbb.xml(&format!("{}{path}", bbb.sim.base_url())).await;
        assert_eq!(answer.at("returncode"), "SUCCESS");
        assert_eq!(answer.at("version"), "2.0");
        assert_eq!(answer.at("apiVersion"), "2.0");
        assert!(answer.at("bbbVersion").starts_with("3.0"));
    }
    assert_eq!(bbb.sim.call_count("index"), 2);
}

#[tokio::test]
async fn unknown_calls_are_unsupported_and_counted() {
    let bbb = Bbb::start().await;
    let answer = bbb.call("teleport", &[]).await;
    assert_failed(&answer, "unsupportedRequest");
    bbb.call("getMeetings", &[]).await;
    assert_eq!(bbb.sim.call_count("teleport"), 1);
    assert_eq!(bbb.sim.call_count("getMeetings"), 1);
    assert_eq!(bbb.sim.call_count("create"), 0);

    let stats = bbb
        .http
        .get(format!("http://{}/_sim/stats", bbb.sim.addr()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(stats, "getMeetings 1\nteleport 1\n");
}

#[tokio::test]
async fn the_control_surface_sets_load_latency_and_faults() {
    let bbb = Bbb::start().await;
    let control = format!("http://{}/_sim", bbb.sim.addr());
    let post = |path: String| bbb.http.post(format!("{control}/{path}")).send();

    assert_eq!(
        post("load?meetingID=none&participants=1".into())
            .await
            .unwrap()
            .status(),
        404
    );
    bbb.create("remote", &[]).await;
    let set = post("load?meetingID=remote&participants=9&moderators=1".into())
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    assert_eq!(bbb.sim.meetings()[0].participants, 9);

    assert_eq!(
        post("fault?mode=fail&fraction=1".into())
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(bbb.get(&bbb.signed("getMeetings", &[])).await.status(), 500);
    assert_eq!(
        post("fault?mode=sideways".into()).await.unwrap().status(),
        400
    );
    assert_eq!(post("fault?mode=none".into()).await.unwrap().status(), 200);

    assert_eq!(post("latency?ms=120".into()).await.unwrap().status(), 200);
    let started = Instant::now();
    bbb.call("getMeetings", &[]).await;
    assert!(started.elapsed() >= Duration::from_millis(120));
}

#[tokio::test]
async fn only_loopback_addresses_are_served() {
    let mut config = SimConfig::new(SECRET);
    config.listen = "0.0.0.0:0".parse().unwrap();
    let error = SimServer::start(config).await.unwrap_err();
    assert!(error.to_string().contains("loopback"), "{error}");
}

#[tokio::test]
async fn dropping_the_server_stops_it() {
    let bbb = Bbb::start().await;
    let url = bbb.signed("getMeetings", &[]);
    bbb.sim.shutdown().await;
    let error = client(Duration::from_secs(2))
        .get(&url)
        .send()
        .await
        .unwrap_err();
    assert!(error.is_connect(), "{error}");
}

// ---------------------------------------------------------------------------------------------
// The command line

/// Reads the process's stdout line by line on a thread, so a test can wait with a timeout.
fn lines_of(stdout: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[tokio::test]
async fn the_cli_serves_one_emulator_per_secret_and_never_prints_them() {
    let secrets = ["cli-secret-one-8e1d", "cli-secret-two-77ab"];
    let mut child = Command::new(env!("CARGO_BIN_EXE_eventyay-bbb"))
        .args([
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--checksums",
            "sha256,sha512",
        ])
        .env("EVENTYAY_BBB_SIM_SECRET", secrets.join(","))
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let lines = lines_of(child.stdout.take().unwrap());
    let mut stderr = child.stderr.take().unwrap();

    let mut printed = Vec::new();
    let mut urls = Vec::new();
    for n in 1..=2 {
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the emulator announces itself");
        assert!(
            line.starts_with(&format!("sim {n}/2: BBB API at http://127.0.0.1:")),
            "{line}"
        );
        assert!(
            line.ends_with("/bigbluebutton/api/ (checksums sha256,sha512)"),
            "{line}"
        );
        let url = line
            .split(" at ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .unwrap()
            .to_owned();
        urls.push(url);
        printed.push(line);
    }
    assert_ne!(urls[0], urls[1]);

    let http = client(Duration::from_secs(5));
    for (url, secret) in urls.iter().zip(secrets) {
        let checksum = Hash::Sha256.hex(&format!("getMeetings{secret}"));
        let body = http
            .get(format!("{url}getMeetings?checksum={checksum}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(parse(&body).unwrap().at("returncode"), "SUCCESS", "{url}");
        // Each server has its own secret, and sha1 was not enabled.
        let other = secrets.iter().find(|s| **s != secret).unwrap();
        for checksum in [
            Hash::Sha256.hex(&format!("getMeetings{other}")),
            Hash::Sha1.hex(&format!("getMeetings{secret}")),
        ] {
            let body = http
                .get(format!("{url}getMeetings?checksum={checksum}"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert_eq!(parse(&body).unwrap().at("messageKey"), "checksumError");
        }
    }

    // SIGTERM stops it cleanly.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the emulator ignored SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");

    let mut errors = String::new();
    stderr.read_to_string(&mut errors).unwrap();
    let output = format!(
        "{}\n{}\n{errors}",
        printed.join("\n"),
        lines.try_iter().collect::<Vec<_>>().join("\n")
    );
    for secret in secrets {
        assert!(
            !output.contains(secret),
            "the output shows a secret: {output}"
        );
    }
}

#[test]
fn the_cli_refuses_other_than_loopback_and_hides_secrets_in_help() {
    let secret = "cli-secret-three-41c0";
    let refused = Command::new(env!("CARGO_BIN_EXE_eventyay-bbb"))
        .args(["sim", "--listen", "0.0.0.0:0", "--secret", secret])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");
    assert!(!stderr.contains(secret) && !String::from_utf8_lossy(&refused.stdout).contains(secret));

    let help = Command::new(env!("CARGO_BIN_EXE_eventyay-bbb"))
        .args(["sim", "--help"])
        .env("EVENTYAY_BBB_SIM_SECRET", secret)
        .output()
        .unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("--secret"), "{text}");
    assert!(!text.contains(secret), "{text}");
}
