//! The BBB parameters of eventyay's meetings: what the original module sent on create and
//! join, with its bugs fixed (role instead of passwords in join URLs, createTime binding,
//! control characters stripped from names).

use super::{Permissions, RoomSettings, User};
use crate::{bbb::Query, domain::Meeting};

const SOURCE: &str = "eventyay";

/// The query of `create` for a room's meeting. Settings that shape the meeting only take effect
/// when it starts: BBB ignores everything but the passwords on a duplicate create.
pub fn room_create(meeting: &Meeting, room_name: &str, settings: &RoomSettings) -> Query {
    let mut q = Query::new();
    q.push("name", meeting_name(room_name))
        .push("meetingID", &meeting.bbb_meeting_id)
        .push("attendeePW", &meeting.attendee_pw)
        .push("moderatorPW", &meeting.moderator_pw)
        .push_bool("record", settings.record)
        // BBB 3.0 refuses the embedded client's requests without a session cookie otherwise.
        .push_bool("allowRequestsWithoutSession", true)
        .push("meta_Source", SOURCE)
        .push("meta_Event", &meeting.event_id)
        .push("meta_Room", meeting.room_id.as_deref().unwrap_or_default())
        .push_bool("muteOnStart", settings.mute_on_start)
        .push_bool(
            "lockSettingsDisablePrivateChat",
            settings.disable_private_chat.unwrap_or(true),
        )
        .push_bool("lockSettingsDisableCam", settings.disable_cam)
        .push_bool("lockSettingsDisablePublicChat", settings.disable_chat);
    if let Some(bridge) = voice_bridge(&settings.voice_bridge) {
        q.push("voiceBridge", bridge);
    }
    q.push("guestPolicy", guest_policy(settings));
    q
}

fn guest_policy(settings: &RoomSettings) -> &'static str {
    if settings.waiting_room {
        "ASK_MODERATOR"
    } else {
        "ALWAYS_ACCEPT"
    }
}

/// The query of a room's join URL.
pub fn room_join(
    meeting: &Meeting,
    create_time: u64,
    user: &User,
    permissions: Permissions,
    settings: &RoomSettings,
    domain: &str,
) -> Query {
    let moderator = permissions.moderate;
    let mut q = join_base(meeting, create_time, user, moderator);
    q.push_bool("guest", !moderator && settings.waiting_room);
    push_style(&mut q, domain);
    q.push("userdata-bbb_show_public_chat_on_login", "false")
        .push("userdata-bbb_skip_check_audio", "true")
        .push_bool("userdata-bbb_listen_only_mode", !settings.auto_microphone);
    if settings.auto_camera {
        q.push("userdata-bbb_auto_share_webcam", "true")
            .push("userdata-bbb_skip_video_preview", "true");
    }
    if settings.hide_presentation {
        q.push("userdata-bbb_hide_presentation_on_join", "true");
    }
    q
}

/// The query of `create` for a private call: never recorded, private chat locked.
pub fn call_create(meeting: &Meeting) -> Query {
    Query::new()
        .with("name", "Call")
        .with("meetingID", &meeting.bbb_meeting_id)
        .with("attendeePW", &meeting.attendee_pw)
        .with("moderatorPW", &meeting.moderator_pw)
        .with("record", "false")
        .with("allowRequestsWithoutSession", "true")
        .with("meta_Source", SOURCE)
        .with("meta_Event", &meeting.event_id)
        .with("meta_Call", &meeting.id)
        .with("lockSettingsDisablePrivateChat", "true")
        .with("guestPolicy", "ALWAYS_ACCEPT")
}

/// The query of a call's join URL: everyone in a private call moderates.
pub fn call_join(meeting: &Meeting, create_time: u64, user: &User, domain: &str) -> Query {
    let mut q = join_base(meeting, create_time, user, true);
    push_style(&mut q, domain);
    q.push("userdata-bbb_show_public_chat_on_login", "false")
        .push("userdata-bbb_auto_share_webcam", "true")
        .push("userdata-bbb_skip_check_audio", "true")
        // Listen-only makes no sense in a call between a few people.
        .push("userdata-bbb_listen_only_mode", "false")
        // Calls rarely have a presentation: give the cameras the room.
        .push("userdata-bbb_auto_swap_layout", "true");
    q
}

fn join_base(meeting: &Meeting, create_time: u64, user: &User, moderator: bool) -> Query {
    let mut q = Query::new();
    q.push("meetingID", &meeting.bbb_meeting_id)
        .push("fullName", full_name(&user.display_name))
        .push("userID", &user.id)
        // A role, not a password: the URL then holds no secret that outlives the meeting.
        .push("role", if moderator { "MODERATOR" } else { "VIEWER" })
        // Binds the URL to this meeting: after an end and a fresh create it stops working.
        .push("createTime", create_time.to_string());
    if !user.avatar_url.is_empty() {
        q.push("avatarURL", &user.avatar_url);
    }
    q
}

/// The BBB client's style sheet, served by eventyay at `/_bbb.css`. BBB fetches it itself, so
/// a local development domain would only produce errors in its log.
fn push_style(q: &mut Query, domain: &str) {
    let domain = domain.trim();
    let host = domain.split(':').next().unwrap_or_default();
    let local = host.is_empty()
        || host == "localhost"
        || host == "127.0.0.1"
        || host.ends_with(".localhost")
        || host.ends_with(".local")
        || host.ends_with(".test");
    if !local {
        q.push(
            "userdata-bbb_custom_style_url",
            format!("https://{domain}/_bbb.css"),
        );
    }
}

/// The meeting name BBB accepts: control characters removed, 2 to 256 UTF-16 units (BBB
/// counts Java chars), "Meeting" when too short — a name BBB refuses would make the room
/// unusable for good.
pub fn meeting_name(room_name: &str) -> String {
    let name = within_bbb_limit(&without_control(room_name));
    if name.encode_utf16().count() < 2 {
        "Meeting".to_owned()
    } else {
        name
    }
}

/// The display name as BBB should show it: control characters (which BBB rejects) and `:`
/// removed, whitespace trimmed, at most 256 UTF-16 units. The original module stripped `:`
/// because "some things break BBB"; nothing in BBB's API documents it as safe, so it stays out.
pub fn full_name(display_name: &str) -> String {
    within_bbb_limit(&without_control(display_name).replace(':', ""))
}

/// A voice bridge BBB can take: five digits (a leading zero is fine for FreeSWITCH). Anything
/// else is left out, so that BBB picks one, rather than failing every join of the room; the
/// import applies the same rule.
pub fn voice_bridge(value: &str) -> Option<&str> {
    let value = value.trim();
    (value.len() == 5 && value.bytes().all(|b| b.is_ascii_digit())).then_some(value)
}

fn without_control(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

/// Trimmed, and cut to the 256 UTF-16 units BBB allows for names.
fn within_bbb_limit(text: &str) -> String {
    let mut units = 0;
    let cut: String = text
        .trim()
        .chars()
        .take_while(|c| {
            units += c.len_utf16();
            units <= 256
        })
        .collect();
    cut.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bbb::query;

    fn meeting(room: Option<&str>) -> Meeting {
        Meeting {
            id: "0b9d3c1e-8f7a-4a51-9d6b-2f0c1e4a7b99".into(),
            event_id: "12".into(),
            organizer_id: "3".into(),
            room_id: room.map(str::to_owned),
            bbb_meeting_id: "mtg-abc".into(),
            attendee_pw: "apw".into(),
            moderator_pw: "mpw".into(),
            server_id: "bbb-1".into(),
            imported: false,
            claimed_at: 0,
        }
    }

    fn user() -> User {
        User {
            id: "u-1".into(),
            display_name: "  Ada\u{7}\nLovelace ".into(),
            avatar_url: "https://cdn.example.org/a.png".into(),
        }
    }

    fn params(q: &Query) -> Vec<(String, String)> {
        query::parse(q.as_str())
    }

    fn get<'a>(p: &'a [(String, String)], k: &str) -> Option<&'a str> {
        p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    #[test]
    fn room_create_carries_the_original_parameters() {
        let settings = RoomSettings {
            record: true,
            waiting_room: true,
            mute_on_start: true,
            disable_cam: true,
            voice_bridge: "70757".into(),
            ..RoomSettings::default()
        };
        let p = params(&room_create(&meeting(Some("r-9")), " ", &settings));
        for (k, v) in [
            ("name", "Meeting"),
            ("meetingID", "mtg-abc"),
            ("attendeePW", "apw"),
            ("moderatorPW", "mpw"),
            ("record", "true"),
            ("meta_Source", "eventyay"),
            ("meta_Event", "12"),
            ("meta_Room", "r-9"),
            ("muteOnStart", "true"),
            ("lockSettingsDisablePrivateChat", "true"),
            ("lockSettingsDisableCam", "true"),
            ("lockSettingsDisablePublicChat", "false"),
            ("voiceBridge", "70757"),
            ("guestPolicy", "ASK_MODERATOR"),
        ] {
            assert_eq!(get(&p, k), Some(v), "{k}");
        }
        let open = RoomSettings {
            disable_private_chat: Some(false),
            ..RoomSettings::default()
        };
        let p = params(&room_create(&meeting(Some("r")), "Main Stage", &open));
        assert_eq!(get(&p, "name"), Some("Main Stage"));
        assert_eq!(get(&p, "lockSettingsDisablePrivateChat"), Some("false"));
        assert_eq!(get(&p, "guestPolicy"), Some("ALWAYS_ACCEPT"));
        assert_eq!(get(&p, "voiceBridge"), None);
    }

    #[test]
    fn room_join_for_attendees_and_moderators() {
        let settings = RoomSettings {
            waiting_room: true,
            auto_camera: true,
            hide_presentation: true,
            ..RoomSettings::default()
        };
        let viewer = Permissions {
            join: true,
            moderate: false,
            recordings: false,
        };
        let p = params(&room_join(
            &meeting(Some("r")),
            1700000000123,
            &user(),
            viewer,
            &settings,
            "ev.example.org",
        ));
        for (k, v) in [
            ("meetingID", "mtg-abc"),
            ("fullName", "AdaLovelace"),
            ("userID", "u-1"),
            ("role", "VIEWER"),
            ("createTime", "1700000000123"),
            ("avatarURL", "https://cdn.example.org/a.png"),
            ("guest", "true"),
            (
                "userdata-bbb_custom_style_url",
                "https://ev.example.org/_bbb.css",
            ),
            ("userdata-bbb_listen_only_mode", "true"),
            ("userdata-bbb_auto_share_webcam", "true"),
            ("userdata-bbb_skip_video_preview", "true"),
            ("userdata-bbb_hide_presentation_on_join", "true"),
        ] {
            assert_eq!(get(&p, k), Some(v), "{k}");
        }
        assert_eq!(get(&p, "password"), None, "no password in join URLs");

        let moderator = Permissions {
            join: true,
            moderate: true,
            recordings: false,
        };
        let p = params(&room_join(
            &meeting(Some("r")),
            1,
            &user(),
            moderator,
            &settings,
            "localhost:8000",
        ));
        assert_eq!(get(&p, "role"), Some("MODERATOR"));
        assert_eq!(get(&p, "guest"), Some("false"));
        assert_eq!(get(&p, "userdata-bbb_custom_style_url"), None);
    }

    #[test]
    fn meeting_names_always_satisfy_bbb() {
        assert_eq!(meeting_name("Main Stage"), "Main Stage");
        assert_eq!(meeting_name("A"), "Meeting");
        assert_eq!(meeting_name(" \u{1}\u{2} "), "Meeting");
        assert_eq!(meeting_name("a\u{0}b"), "ab");
        let emoji = "😀".repeat(200);
        let name = meeting_name(&emoji);
        assert_eq!(name.encode_utf16().count(), 256);
        assert_eq!(meeting_name(&"x".repeat(300)).len(), 256);
        assert_eq!(
            meeting_name("Q&A: day 1"),
            "Q&A: day 1",
            "only display names lose ':'"
        );
    }

    #[test]
    fn display_names_lose_colons_and_fit_bbb() {
        assert_eq!(full_name(" Dr. Ada: Lovelace\u{7} "), "Dr. Ada Lovelace");
        assert_eq!(full_name(":::"), "");
        assert_eq!(full_name(&"é".repeat(300)).chars().count(), 256);
        assert_eq!(full_name(&"😀".repeat(200)).encode_utf16().count(), 256);
    }

    #[test]
    fn voice_bridges_bbb_cannot_take_are_left_out() {
        assert_eq!(voice_bridge("70757"), Some("70757"));
        assert_eq!(voice_bridge(" 01234 "), Some("01234"));
        for bad in ["", "1234", "123456", "7075a", "７０７５７"] {
            assert_eq!(voice_bridge(bad), None, "{bad}");
        }
        let odd = RoomSettings {
            voice_bridge: "12".into(),
            ..RoomSettings::default()
        };
        let p = params(&room_create(&meeting(Some("r")), "Room", &odd));
        assert_eq!(get(&p, "voiceBridge"), None);
    }

    #[test]
    fn the_style_sheet_is_left_out_only_for_local_hosts() {
        let style = |domain: &str| {
            let mut q = Query::new();
            push_style(&mut q, domain);
            get(&params(&q), "userdata-bbb_custom_style_url").map(str::to_owned)
        };
        for local in [
            "",
            "localhost",
            "localhost:8000",
            "127.0.0.1:8000",
            "ev.local",
            "ev.test",
        ] {
            assert_eq!(style(local), None, "{local}");
        }
        for public in ["conf.testing.io", "a.locale.de", "events.example.org:8443"] {
            assert_eq!(
                style(public),
                Some(format!("https://{public}/_bbb.css")),
                "{public}"
            );
        }
    }

    #[test]
    fn calls_are_unrecorded_and_everyone_moderates() {
        let m = meeting(None);
        let p = params(&call_create(&m));
        assert_eq!(get(&p, "record"), Some("false"));
        assert_eq!(get(&p, "meta_Call"), Some(m.id.as_str()));
        let p = params(&call_join(&m, 5, &user(), "ev.example.org"));
        assert_eq!(get(&p, "role"), Some("MODERATOR"));
        assert_eq!(get(&p, "userdata-bbb_listen_only_mode"), Some("false"));
    }
}
