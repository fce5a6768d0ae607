//! The HTTP request an endpoint's arrivals become: a method and the gateway's own
//! route template (one parser, one normalisation with the gateway).

use gateway_contract::routes::{Template, normalise};
use http::Method;

use super::PlanError;

/// The HTTP request an endpoint's arrivals become.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointRequest {
    /// The method (`GET` unless the endpoint's path starts with another).
    pub method: Method,
    /// The route template the gateway keys on (`/api/orders/{id}`), parsed by the
    /// gateway's own parser.
    pub template: Template,
}

const METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];

impl EndpointRequest {
    /// Parses an endpoint path: `"GET /api/orders/{id}"` or just `"/api/orders/{id}"`.
    pub fn parse(path: &str) -> Result<Self, PlanError> {
        let err = |message: String| PlanError::Endpoint {
            endpoint: path.to_owned(),
            message,
        };
        let trimmed = path.trim();
        let (method, template) = match trimmed.split_once(char::is_whitespace) {
            Some((m, rest)) if METHODS.contains(&m.to_ascii_uppercase().as_str()) => {
                let m = Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|e| err(e.to_string()))?;
                (m, rest.trim())
            }
            Some((m, _)) if !m.starts_with('/') => {
                return Err(err(format!(
                    "unknown method {m:?} (expected one of: {})",
                    METHODS.join(", ")
                )));
            }
            _ => (Method::GET, trimmed),
        };
        let template = Template::parse(template).map_err(err)?;
        Ok(Self { method, template })
    }

    /// A concrete path for the `n`th request: parameters become small numbers
    /// (`1..=8`), so the backend's per-path counts stay few.
    pub fn path(&self, n: u64) -> String {
        self.template.fill(|| (n % 8 + 1).to_string())
    }

    /// Whether a concrete `path` falls under this template, as the gateway decides it
    /// (the same normalisation and matching).
    pub fn matches(&self, path: &str) -> bool {
        self.template.matches(&normalise(path))
    }

    /// True for methods that carry a body.
    pub fn has_body(&self) -> bool {
        matches!(self.method, Method::POST | Method::PUT | Method::PATCH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::http::plan::{user_id, user_index};

    #[test]
    fn endpoints_become_requests() {
        let e = EndpointRequest::parse("GET /api/orders/{id}").unwrap();
        assert_eq!(e.method, Method::GET);
        assert_eq!(e.template.as_str(), "/api/orders/{id}");
        assert_eq!(e.path(0), "/api/orders/1");
        assert_eq!(e.path(15), "/api/orders/8");
        assert!(e.matches("/api/orders/7"));
        assert!(!e.matches("/api/orders"));
        assert!(!e.matches("/api/orders/7/x"));
        let p = EndpointRequest::parse("post /api/orders").unwrap();
        assert_eq!(p.method, Method::POST);
        assert!(p.has_body());
        assert!(p.matches("/api/orders"));
        assert!(!p.matches("/api/orders/1"));
        let r = EndpointRequest::parse("/files/{*rest}").unwrap();
        assert!(r.matches("/files/a/b"));
        assert!(!r.matches("/files"));
        assert!(EndpointRequest::parse("FETCH /x").is_err());
        assert!(EndpointRequest::parse("GET x").is_err());
        assert!(EndpointRequest::parse("/a/{*r}/b").is_err());
        assert!(EndpointRequest::parse("/a/x{id}").is_err());
        // One normalisation with the gateway: `//`, `.` and `..` are the gateway's.
        assert!(e.matches("/api//orders/7/"));
        assert!(e.matches("/api/./x/../orders/7"));
        assert!(EndpointRequest::parse("/a/../b").is_err());
        assert_eq!(user_index(&user_id(42)), Some(42));
        assert_eq!(user_index("alice"), None);
    }
}
