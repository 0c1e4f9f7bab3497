//! HTTP long-polling: a held GET receives, a POST sends.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::BodyExt;
use shoal_engineio_proto::{ErrorCode, payload};

use crate::body::ResponseBody;
use crate::engine::{Engine, Resp, error, status};
use crate::handler::EngineHandler;
use crate::session::{CloseReason, Session, TransportKind};

/// A 200 answer carrying a payload.
pub(crate) fn payload_response(body: Bytes) -> Resp {
    let mut r = Response::new(ResponseBody::full(body));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=UTF-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Clears `get_pending` when the GET ends; if it ends without an answer (the client went
/// away and the HTTP server dropped the request), the session is closed, as Node does.
struct GetGuard<'a, D> {
    session: &'a Session<D>,
    answered: bool,
}

impl<D> Drop for GetGuard<'_, D> {
    fn drop(&mut self) {
        self.session.state.lock().get_pending = false;
        if !self.answered {
            tracing::debug!(sid = %self.session.id(), "poll request aborted");
            // as Node ("poll connection closed prematurely")
            self.session.close(CloseReason::TransportError);
        }
    }
}

pub(crate) async fn get<H: EngineHandler>(_engine: &Arc<Engine<H>>, session: Arc<Session<H::Data>>) -> Resp {
    if session.check_ping_timeout() {
        return error(ErrorCode::UnknownSid);
    }
    {
        let mut st = session.state.lock();
        if st.get_pending {
            drop(st);
            tracing::debug!(sid = %session.id(), "overlapping poll requests");
            session.close(CloseReason::TransportError);
            return error(ErrorCode::BadRequest);
        }
        st.get_pending = true;
    }
    let mut guard = GetGuard { session: &session, answered: false };
    let body = poll_fn(|cx| {
        session.writer.register(cx.waker());
        let mut st = session.state.lock();
        if st.transport == TransportKind::WebSocket {
            return Poll::Ready(Bytes::from_static(b"6"));
        }
        if !st.queue.is_empty() {
            // On a graceful close the close packet comes in the *next* payload: clients
            // handle a close at once but the other packets of a payload a tick later,
            // so a close in the same payload would lose them.
            let queue = Session::<H::Data>::take_queue(&mut st);
            drop(st);
            let packets = queue.iter().map(|q| &q.packet);
            let mut out = Vec::with_capacity(payload::encoded_len(packets.clone()));
            payload::encode(packets, &mut out);
            return Poll::Ready(Bytes::from(out));
        }
        if let Some(req) = st.close {
            if !req.by_client {
                st.close_delivered = true;
                drop(st);
                session.task.wake();
                return Poll::Ready(Bytes::from_static(b"1"));
            }
            return Poll::Ready(Bytes::from_static(b"6"));
        }
        if st.upgrading {
            return Poll::Ready(Bytes::from_static(b"6"));
        }
        Poll::Pending
    })
    .await;
    guard.answered = true;
    drop(guard);
    payload_response(body)
}

struct PostGuard<'a, D>(&'a Session<D>);

impl<D> Drop for PostGuard<'_, D> {
    fn drop(&mut self) {
        self.0.state.lock().post_pending = false;
    }
}

pub(crate) async fn post<H, B>(engine: &Arc<Engine<H>>, session: Arc<Session<H::Data>>, req: Request<B>) -> Resp
where
    H: EngineHandler,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::fmt::Display,
{
    if session.check_ping_timeout() {
        return error(ErrorCode::UnknownSid);
    }
    {
        let mut st = session.state.lock();
        if st.post_pending {
            drop(st);
            tracing::debug!(sid = %session.id(), "overlapping post requests");
            session.close(CloseReason::TransportError);
            return error(ErrorCode::BadRequest);
        }
        st.post_pending = true;
    }
    let _guard = PostGuard(&session);
    let max = engine.config.max_payload;

    if req.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/octet-stream")) {
        // v4 payloads are text; binary is base64
        session.close(CloseReason::TransportError);
        return error(ErrorCode::BadRequest);
    }
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        session.close(CloseReason::TransportError);
        return status(StatusCode::PAYLOAD_TOO_LARGE);
    }

    let timeout = engine.config.ping_interval + engine.config.ping_timeout;
    let body = match tokio::time::timeout(timeout, read_limited(req.into_body(), max, declared)).await {
        Ok(Ok(b)) => b,
        Ok(Err(ReadError::TooLarge)) => {
            session.close(CloseReason::TransportError);
            return status(StatusCode::PAYLOAD_TOO_LARGE);
        }
        Ok(Err(ReadError::Body(e))) => {
            tracing::debug!(sid = %session.id(), cause = %e, "post body error");
            session.close(CloseReason::TransportError);
            return error(ErrorCode::BadRequest);
        }
        Err(_) => {
            session.close(CloseReason::TransportError);
            return status(StatusCode::REQUEST_TIMEOUT);
        }
    };

    // the layer above may be saturated by this client: wait (bounded) before adding work
    let deadline = tokio::time::Instant::now() + timeout;
    while !engine.handler.accepts_messages(&session) {
        if tokio::time::Instant::now() >= deadline || session.is_closed() {
            session.close(CloseReason::TransportError);
            return status(StatusCode::SERVICE_UNAVAILABLE);
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    for packet in payload::decode(body) {
        match packet {
            Ok(p) => {
                if engine.on_packet(&session, p).is_break() {
                    break;
                }
            }
            Err(e) => {
                tracing::debug!(sid = %session.id(), cause = %e, "invalid payload");
                session.close(CloseReason::ParseError);
                return error(ErrorCode::BadRequest);
            }
        }
    }
    let mut r = Response::new(ResponseBody::full(Bytes::from_static(b"ok")));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    r
}

enum ReadError {
    TooLarge,
    Body(String),
}

/// Reads a body, failing as soon as it exceeds `max` bytes (never buffering more).
async fn read_limited<B>(body: B, max: usize, declared: Option<u64>) -> Result<Bytes, ReadError>
where
    B: Body,
    B::Error: std::fmt::Display,
{
    let mut body = std::pin::pin!(body);
    let mut buf = BytesMut::with_capacity(declared.map_or(1024, |n| n as usize).min(max));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ReadError::Body(e.to_string()))?;
        if let Ok(mut data) = frame.into_data() {
            use bytes::Buf;
            if buf.len() + data.remaining() > max {
                return Err(ReadError::TooLarge);
            }
            while data.has_remaining() {
                let chunk = data.chunk();
                buf.extend_from_slice(chunk);
                let n = chunk.len();
                data.advance(n);
            }
        }
    }
    Ok(buf.freeze())
}
