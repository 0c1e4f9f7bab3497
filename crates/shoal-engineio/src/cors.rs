//! CORS headers for polling requests and preflight answers.

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};

use crate::body::ResponseBody;
use crate::config::{AllowedOrigins, Cors};

/// Adds the CORS headers of an answer to a request from `origin`, if it is allowed.
pub(crate) fn apply(cors: &Cors, origin: &HeaderValue, headers: &mut HeaderMap) {
    let Ok(o) = origin.to_str() else { return };
    if !cors.origins.allows(o) {
        return;
    }
    let any_without_credentials = matches!(cors.origins, AllowedOrigins::Any) && !cors.credentials;
    if any_without_credentials {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    } else {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    if cors.credentials {
        headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    }
}

/// The answer to an `OPTIONS` preflight request.
pub(crate) fn preflight(cors: &Cors, req: &HeaderMap) -> Response<ResponseBody> {
    let mut r = Response::new(ResponseBody::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST"));
    let mut allowed: Vec<String> = cors.allowed_headers.clone();
    if let Some(v) = req.get(header::ACCESS_CONTROL_REQUEST_HEADERS).and_then(|v| v.to_str().ok()) {
        allowed.extend(v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()));
    }
    if !allowed.is_empty()
        && let Ok(v) = HeaderValue::from_str(&allowed.join(", "))
    {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
    }
    if let Some(age) = cors.max_age {
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age.as_secs()));
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn origins() {
        let list = Cors::new(AllowedOrigins::List(vec!["https://a.example".into()]));
        let mut h = HeaderMap::new();
        apply(&list, &HeaderValue::from_static("https://evil.example"), &mut h);
        assert!(h.is_empty(), "a disallowed origin gets no CORS header");
        apply(&list, &HeaderValue::from_static("https://a.example"), &mut h);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://a.example");
        assert!(h.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());

        let any = Cors::new(AllowedOrigins::Any);
        let mut h = HeaderMap::new();
        apply(&any, &HeaderValue::from_static("https://x.example"), &mut h);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");

        // never `*` together with credentials: the origin is reflected
        let mut any_cred = Cors::new(AllowedOrigins::Any);
        any_cred.credentials = true;
        let mut h = HeaderMap::new();
        apply(&any_cred, &HeaderValue::from_static("https://x.example"), &mut h);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://x.example");
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");

        let pred = Cors::new(AllowedOrigins::Predicate(Arc::new(|o| o.ends_with(".good.example"))));
        let mut h = HeaderMap::new();
        apply(&pred, &HeaderValue::from_static("https://app.good.example"), &mut h);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.good.example");
    }

    #[test]
    fn preflight_answer() {
        let mut cors = Cors::new(AllowedOrigins::Any);
        cors.max_age = Some(std::time::Duration::from_secs(600));
        let mut req = HeaderMap::new();
        req.insert(header::ACCESS_CONTROL_REQUEST_HEADERS, HeaderValue::from_static("x-token, content-type"));
        let r = preflight(&cors, &req);
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(r.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS], "x-token, content-type");
        assert_eq!(r.headers()[header::ACCESS_CONTROL_MAX_AGE], "600");
    }
}
