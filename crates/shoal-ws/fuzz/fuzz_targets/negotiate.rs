//! Feeds arbitrary `Sec-WebSocket-Extensions` values to the negotiation.

#![no_main]

use http::header::SEC_WEBSOCKET_EXTENSIONS;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use shoal_ws::{DeflateConfig, negotiate_deflate};

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for value in data.split(|&b| b == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(SEC_WEBSOCKET_EXTENSIONS, value);
        }
    }
    if let Some(negotiation) = negotiate_deflate(&headers, &DeflateConfig::default()) {
        assert!(negotiation.response_header.starts_with("permessage-deflate; server_no_context_takeover"));
        assert!(HeaderValue::from_str(&negotiation.response_header).is_ok());
    }
});
