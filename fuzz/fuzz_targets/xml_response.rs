//! Whatever bytes a BBB server (or a proxy in front of it) sends, the XML tree and every typed
//! reader of BBB's answers return a value or an error, never panic, and stay bounded.

#![no_main]

use eventyay_bbb::bbb::{parse, xml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(root) = xml::parse(data) {
        // The tree answers look-ups of any name, present or not.
        let _ = root.text_of("returncode");
        let _ = root.children_named("meeting").count();
    }
    let _ = parse::created(data);
    let _ = parse::meeting_info(data);
    let _ = parse::meetings(data);
    let _ = parse::recordings(data);
    let _ = parse::running(data);
    let _ = parse::version(data);
});
