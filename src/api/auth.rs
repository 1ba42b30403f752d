//! Bearer-token checks. BbbService and FleetService each have their own tokens; several may be
//! valid at once so tokens can be rotated without downtime.

use super::error::ApiError;
use crate::secret::Secret;
use std::sync::Arc;
use tonic::{Request, Status, service::Interceptor};

#[derive(Clone)]
pub struct BearerAuth {
    tokens: Arc<Vec<Secret>>,
}

impl BearerAuth {
    pub fn new(tokens: Vec<Secret>) -> Self {
        Self {
            tokens: Arc::new(tokens),
        }
    }

    /// The index of the token presented, if any matches. Every token is compared, each in
    /// constant time, so timing tells nothing about which one is close.
    fn accepts(&self, presented: &[u8]) -> Option<usize> {
        self.tokens.iter().enumerate().fold(None, |found, (i, t)| {
            if constant_time_eq(t.expose().as_bytes(), presented) {
                Some(i)
            } else {
                found
            }
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

/// Which of the configured tokens authenticated a call (its position, never its value): how
/// the audit log names a caller that gives no `x-actor`.
#[derive(Debug, Clone, Copy)]
pub struct TokenIndex(pub usize);

impl Interceptor for BearerAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
        match presented.and_then(|token| self.accepts(token)) {
            Some(index) => {
                request.extensions_mut().insert(TokenIndex(index));
                Ok(request)
            }
            None => Err(ApiError::Unauthenticated.into()),
        }
    }
}
