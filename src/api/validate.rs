//! Checks of every request field before anything is read or written. Each failure names the
//! field and the rule, never the value (which may be anything a client sent).

use super::error::ApiError;
use crate::domain::is_valid_id;

pub type Checked<T> = Result<T, ApiError>;

pub fn id(field: &'static str, value: &str) -> Checked<String> {
    if is_valid_id(value) {
        Ok(value.to_owned())
    } else {
        Err(ApiError::invalid(
            field,
            "must be 1-128 letters, digits or ._:-",
        ))
    }
}

/// Free text with an upper bound in characters.
pub fn text(field: &'static str, value: &str, max_chars: usize) -> Checked<String> {
    if value.chars().count() > max_chars {
        return Err(ApiError::invalid(field, "too long"));
    }
    Ok(value.to_owned())
}

/// An absolute http(s) URL with a host and no user info, at most 2,048 bytes.
fn absolute_http(url: reqwest::Url) -> Option<reqwest::Url> {
    (matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.as_str().len() <= 2048)
        .then_some(url)
}

/// Empty, or the absolute http(s) URL of the event's site that relative URLs are resolved
/// against.
pub fn base_url(value: &str) -> Checked<Option<reqwest::Url>> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    reqwest::Url::parse(value)
        .ok()
        .and_then(absolute_http)
        .map(Some)
        .ok_or(ApiError::invalid(
            "base_url",
            "must be empty or an absolute http or https URL",
        ))
}

/// A URL passed on for BBB or the browser to fetch (an avatar, a presentation): kept when it
/// is an absolute http(s) URL or becomes one against `base`, else left out with a warning
/// naming the field. Never an error: the original module passed such values along, and a join
/// must not fail over a picture.
pub fn passed_url(field: &'static str, value: &str, base: Option<&reqwest::Url>) -> String {
    let value = value.trim();
    if value.is_empty() || value.len() > 2048 {
        return String::new();
    }
    let (resolved, reason) = match reqwest::Url::parse(value) {
        Ok(url) => (Some(url), "not an http or https URL"),
        Err(url::ParseError::RelativeUrlWithoutBase) => match base {
            Some(base) => (base.join(value).ok(), "not an http or https URL"),
            None => (None, "relative, and the request has no base_url"),
        },
        Err(_) => (None, "not a URL"),
    };
    match resolved.and_then(absolute_http) {
        Some(url) => url.into(),
        None => {
            tracing::warn!(field, reason, "left a URL out of the join");
            String::new()
        }
    }
}

/// Empty, or a host name (with an optional port) for the style sheet URL.
pub fn domain(value: &str) -> Checked<String> {
    let ok = value.len() <= 253
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(ApiError::invalid("domain", "must be a host name"))
    }
}
