//! The handshake (`open` packet).

use crate::sid::Sid;

/// Encodes the `open` packet exactly as Node does: `0{"sid":…,"upgrades":[…],
/// "pingInterval":…,"pingTimeout":…,"maxPayload":…}` (this key order, nothing else).
pub fn open_packet(
    sid: &Sid,
    upgrades: &[&str],
    ping_interval_ms: u64,
    ping_timeout_ms: u64,
    max_payload: u64,
) -> String {
    let mut out = String::with_capacity(120);
    out.push_str("0{\"sid\":\"");
    out.push_str(sid.as_str());
    out.push_str("\",\"upgrades\":[");
    for (i, u) in upgrades.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        crate::error::push_json_string(&mut out, u);
    }
    out.push_str("],\"pingInterval\":");
    out.push_str(itoa::Buffer::new().format(ping_interval_ms));
    out.push_str(",\"pingTimeout\":");
    out.push_str(itoa::Buffer::new().format(ping_timeout_ms));
    out.push_str(",\"maxPayload\":");
    out.push_str(itoa::Buffer::new().format(max_payload));
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_packet_matches_node() {
        let sid: Sid = "lv_VI97HAXpY6yYWAAAC".parse().unwrap();
        assert_eq!(
            open_packet(&sid, &["websocket"], 25000, 20000, 1_000_000),
            r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        );
        assert_eq!(
            open_packet(&sid, &[], 300, 200, 1_000_000),
            r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}"#
        );
    }
}
