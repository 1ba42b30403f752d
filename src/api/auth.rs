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

    fn accepts(&self, presented: &[u8]) -> bool {
        // Check every token, each in constant time, so timing tells nothing about which is close.
        self.tokens.iter().fold(false, |ok, t| {
            ok | constant_time_eq(t.expose().as_bytes(), presented)
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Interceptor for BearerAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
        match presented {
            Some(token) if self.accepts(token) => Ok(request),
            _ => Err(ApiError::Unauthenticated.into()),
        }
    }
}
