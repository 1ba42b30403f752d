//! The one place where domain errors become gRPC statuses. Every status carries
//! `google.rpc.ErrorInfo` with the backend's wire reason and the `ErrorCode` name; messages are
//! fixed texts, so nothing from BBB, SQL or a secret can reach a caller.

use crate::{meetings, proto::ErrorCode};
use std::collections::HashMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

pub const DOMAIN: &str = "eventyay.bbb.v1";

/// What a caller is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// A malformed field: its name and what is wrong with it (never its value).
    Invalid {
        field: &'static str,
        problem: &'static str,
    },
    Unauthenticated,
    Denied,
    MissingProfile,
    /// `bbb.failed`, with its cause (low-cardinality, for logs and metrics) and what happened
    /// (for the log only): neither reaches the caller.
    BbbFailed {
        cause: &'static str,
        detail: String,
    },
    /// The database does not answer; its words go to the log only.
    Unavailable(String),
    NotFound,
    /// A change refused as things stand, with a fixed text saying why.
    Refused(&'static str),
}

impl ApiError {
    pub fn invalid(field: &'static str, problem: &'static str) -> Self {
        Self::Invalid { field, problem }
    }

    pub fn bbb_failed(cause: &'static str, detail: impl Into<String>) -> Self {
        Self::BbbFailed {
            cause,
            detail: detail.into(),
        }
    }
}

tokio::task_local! {
    /// The cause of the call's failure, read by the observing layer for the error metric.
    pub(super) static CAUSE: std::cell::Cell<Option<&'static str>>;
}

/// Logs a failure the caller sees only as a reason, once, at the boundary, and hands its cause
/// to the observing layer.
fn explain(cause: &'static str, detail: &str, unavailable: bool) {
    if unavailable {
        tracing::error!(cause, detail, "answered unavailable");
    } else {
        tracing::warn!(cause, detail, "answered bbb.failed");
    }
    let _ = CAUSE.try_with(|c| c.set(Some(cause)));
}

impl From<meetings::Error> for ApiError {
    fn from(err: meetings::Error) -> Self {
        match err {
            meetings::Error::Denied => Self::Denied,
            meetings::Error::MissingProfile => Self::MissingProfile,
            meetings::Error::BbbFailed(failure) => {
                Self::bbb_failed(failure.cause(), failure.to_string())
            }
            meetings::Error::Unavailable(detail) => Self::Unavailable(detail),
        }
    }
}

impl From<crate::operators::Error> for ApiError {
    fn from(err: crate::operators::Error) -> Self {
        use crate::operators::Error as E;
        match err {
            E::Invalid { field, problem } => Self::Invalid { field, problem },
            E::NotFound => Self::NotFound,
            E::Refused(why) => Self::Refused(why),
            E::Unavailable(detail) => Self::Unavailable(detail),
            E::Lost => Self::bbb_failed("lost", "the placement batch ended without an answer"),
        }
    }
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Self {
        let (code, reason, error_code, message) = match &err {
            ApiError::Invalid { .. } => (
                Code::InvalidArgument,
                "invalid_argument",
                ErrorCode::InvalidArgument,
                "malformed request",
            ),
            ApiError::Unauthenticated => (
                Code::Unauthenticated,
                "unauthenticated",
                ErrorCode::Unauthenticated,
                "missing or unknown bearer token",
            ),
            ApiError::Denied => (
                Code::PermissionDenied,
                "protocol.denied",
                ErrorCode::PermissionDenied,
                "permission denied",
            ),
            ApiError::MissingProfile => (
                Code::FailedPrecondition,
                "bbb.join.missing_profile",
                ErrorCode::MissingProfile,
                "the user needs a display name to join",
            ),
            // One code and one text for every cause, so a caller cannot probe calls it is not in.
            ApiError::BbbFailed { cause, detail } => {
                explain(cause, detail, false);
                (
                    Code::Unavailable,
                    "bbb.failed",
                    ErrorCode::BbbFailed,
                    "BigBlueButton could not serve this request",
                )
            }
            ApiError::Unavailable(detail) => {
                explain("database", detail, true);
                (
                    Code::Unavailable,
                    "unavailable",
                    ErrorCode::Unavailable,
                    "the service cannot serve right now; retry",
                )
            }
            ApiError::NotFound => (
                Code::NotFound,
                "not_found",
                ErrorCode::NotFound,
                "no such server or room",
            ),
            ApiError::Refused(why) => (
                Code::FailedPrecondition,
                "failed_precondition",
                ErrorCode::FailedPrecondition,
                *why,
            ),
        };
        let metadata = HashMap::from([("code".to_owned(), error_code.as_str_name().to_owned())]);
        let mut details = ErrorDetails::with_error_info(reason, DOMAIN, metadata);
        let message = match &err {
            ApiError::Invalid { field, problem } => {
                details.add_bad_request_violation(*field, *problem);
                format!("{field}: {problem}")
            }
            _ => message.to_owned(),
        };
        Status::with_error_details(code, message, details)
    }
}
