//! A small, lenient XML tree for BBB responses.
//!
//! BBB renders its answers with FreeMarker templates, so whitespace, empty-element forms and
//! CDATA vary between versions and proxies. Reading into a tree first and picking fields by name
//! keeps the typed layer (`response.rs`) free of those details: unknown elements are simply never
//! looked at. Only the five predefined entities and character references are resolved; a DTD is
//! skipped and never expanded, so entity bombs are inert.

use quick_xml::{Reader, events::Event};

/// Nesting deeper than any BBB response; stops pathological input from costing memory.
const MAX_DEPTH: usize = 32;
/// A tree costs about a hundred bytes per element, whatever the element's own size: `<a/>`
/// would cost 25 times its bytes. BBB's answers carry an element per 30 to 60 bytes, so one per
/// 16 bytes (and a floor for tiny documents) is generous, and the absolute cap is far above a
/// getMeetings of thousands of attendees; past either, the answer is refused as malformed.
const BYTES_PER_ELEMENT: usize = 16;
const MIN_ELEMENTS: usize = 1_000;
const MAX_ELEMENTS: usize = 200_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct XmlError(String);

/// One element: its local name, its direct text (trimmed) and its child elements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The first child called `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child called `name`, in document order.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child called `name`, if that child exists.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }
}

/// Parses a whole document and returns its root element.
pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    let text = String::from_utf8_lossy(bytes);
    let mut reader = Reader::from_str(&text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let budget = (bytes.len() / BYTES_PER_ELEMENT).clamp(MIN_ELEMENTS, MAX_ELEMENTS);
    let mut elements = 0usize;
    loop {
        let event = reader.read_event().map_err(|e| {
            XmlError(format!(
                "malformed XML at byte {}: {e}",
                reader.error_position()
            ))
        })?;
        if matches!(event, Event::Start(_) | Event::Empty(_)) {
            elements += 1;
            if elements > budget {
                return Err(XmlError(format!(
                    "more elements than an answer of {} bytes may have",
                    bytes.len()
                )));
            }
        }
        match event {
            Event::Start(start) => {
                if root.is_some() {
                    return Err(XmlError("content after the root element".into()));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError("XML nested too deeply".into()));
                }
                stack.push(Element {
                    name: start.local_name().as_ref().to_owned(),
                    ..Element::default()
                });
            }
            Event::Empty(start) => {
                let element = Element {
                    name: start.local_name().as_ref().to_owned(),
                    ..Element::default()
                };
                attach(&mut stack, &mut root, element)?;
            }
            Event::End(_) => {
                // quick-xml has already checked that the end tag matches its start tag.
                let mut element = stack
                    .pop()
                    .ok_or_else(|| XmlError("unbalanced end tag".into()))?;
                let trimmed = element.text.trim();
                if trimmed.len() != element.text.len() {
                    element.text = trimmed.to_owned();
                }
                attach(&mut stack, &mut root, element)?;
            }
            Event::Text(t) => append_text(&mut stack, &t.xml10_content())?,
            Event::CData(c) => append_text(&mut stack, &c.xml10_content())?,
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => predefined_entity(&r.xml10_content()).ok_or_else(|| {
                        XmlError(format!("undefined entity &{};", r.xml10_content()))
                    })?,
                    Err(e) => return Err(XmlError(format!("bad character reference: {e}"))),
                };
                append_text(&mut stack, resolved.encode_utf8(&mut [0; 4]))?;
            }
            Event::Eof => break,
            // Declarations, comments, processing instructions and DTDs carry nothing we read.
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(XmlError("unexpected end of document".into()));
    }
    root.ok_or_else(|| XmlError("empty document".into()))
}

fn attach(
    stack: &mut [Element],
    root: &mut Option<Element>,
    element: Element,
) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None if root.is_none() => *root = Some(element),
        None => return Err(XmlError("content after the root element".into())),
    }
    Ok(())
}

fn append_text(stack: &mut [Element], text: &str) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(element) => element.text.push_str(text),
        None if text.trim().is_empty() => {}
        None => return Err(XmlError("text outside the root element".into())),
    }
    Ok(())
}

fn predefined_entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_of_tiny_elements_are_refused_before_they_cost_memory() {
        let mut flood = b"<response><returncode>SUCCESS</returncode><meetings>".to_vec();
        while flood.len() < 15 * 1024 * 1024 {
            flood.extend_from_slice(b"<a/>");
        }
        flood.extend_from_slice(b"</meetings></response>");
        let err = parse(&flood).unwrap_err();
        assert!(err.0.contains("more elements"), "{err}");
        // Ordinary documents, small and large, are far from the budget.
        assert!(parse(b"<response><returncode>SUCCESS</returncode></response>").is_ok());
        let mut big = b"<response><meetings>".to_vec();
        for i in 0..5_000 {
            big.extend_from_slice(
                format!("<meeting><meetingID>m-{i}</meetingID><participantCount>3</participantCount></meeting>\n").as_bytes(),
            );
        }
        big.extend_from_slice(b"</meetings></response>");
        assert_eq!(parse(&big).unwrap().children[0].children.len(), 5_000);
    }

    #[test]
    fn reads_text_cdata_entities_and_empty_forms() {
        let root = parse(
            b"<?xml version=\"1.0\"?>\n<response>\n  <a><![CDATA[x < y]]></a>\n  <b/>\n  <c></c>\n  <d>Fred&apos;s &amp;#39; &#x41;</d>\n</response>",
        )
        .unwrap();
        assert_eq!(root.name, "response");
        assert_eq!(root.text_of("a"), Some("x < y"));
        assert_eq!(root.text_of("b"), Some(""));
        assert_eq!(root.text_of("c"), Some(""));
        assert_eq!(root.text_of("d"), Some("Fred's &#39; A"));
        assert_eq!(root.text_of("e"), None);
    }

    #[test]
    fn never_expands_dtd_entities() {
        let bomb = br#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<response><returncode>&lol2;</returncode></response>"#;
        assert!(parse(bomb).is_err());
    }

    #[test]
    fn rejects_broken_documents() {
        for doc in [
            &b""[..],
            b"<response>",
            b"<response></other>",
            b"<a></a><b></b>",
            b"text",
            b"<response>&nope;</response>",
        ] {
            assert!(parse(doc).is_err(), "{:?}", String::from_utf8_lossy(doc));
        }
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(parse(deep.as_bytes()).is_err());
    }
}
