//! Checks of every request field before anything is read or written. Each failure names the
//! field and the rule, never the value (which may be anything a client sent).

use super::error::ApiError;
use crate::config::is_valid_id;

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

/// Empty, or an absolute http(s) URL without user info.
pub fn optional_url(field: &'static str, value: &str) -> Checked<String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(String::new());
    }
    if value.len() > 2048 {
        return Err(ApiError::invalid(field, "too long"));
    }
    match reqwest::Url::parse(value) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some()
                && url.username().is_empty()
                && url.password().is_none() =>
        {
            Ok(value.to_owned())
        }
        _ => Err(ApiError::invalid(
            field,
            "must be an absolute http or https URL",
        )),
    }
}

/// Empty, or a 5-digit BBB voice bridge (10000-99999).
pub fn voice_bridge(value: &str) -> Checked<String> {
    let ok = value.is_empty()
        || (value.len() == 5
            && value.bytes().all(|b| b.is_ascii_digit())
            && !value.starts_with('0'));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(ApiError::invalid(
            "settings.voice_bridge",
            "must be empty or 5 digits from 10000 to 99999",
        ))
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
