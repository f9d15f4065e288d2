//! The receiver's HTTP/1.1 server (hyper) and the routing of its requests.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::access::Refusal;
use super::path::{self, Target};
use super::{body, cmaf, hls, Receiver};
use hls_dvr_store::StoreError;

/// What a handler answers: a success status, or a failure status with its reason (sent as the
/// body and logged).
pub type Reply = Result<StatusCode, (StatusCode, String)>;

/// The failure answer for a body that did not arrive whole.
pub fn body_failure(e: body::BodyError) -> (StatusCode, String) {
    match e {
        body::BodyError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
        body::BodyError::Idle(_) => (StatusCode::REQUEST_TIMEOUT, e.to_string()),
        body::BodyError::Cut(_) => (StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// The answer to a request caught by the receiver's shutdown while the store was failing.
pub fn shutting_down() -> (StatusCode, String) {
    (StatusCode::SERVICE_UNAVAILABLE, "shutting down".to_string())
}

/// How long a client has to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds `addr` now (a taken port is an error at start), then serves until shutdown. The task
/// returned ends once every connection has finished its request in flight.
pub async fn listen(addr: SocketAddr, rx: Arc<Receiver>) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(addr).await?;
    info!("receiving pushes at http://{}/ingest/", listener.local_addr()?);
    let mut shutdown = rx.uploads.shutdown.clone();
    Ok(tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            let got = tokio::select! {
                got = listener.accept() => got,
                _ = shutdown.wait_for(|s| *s) => break,
            };
            let (tcp, peer) = match got {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors, say: wait rather than spin.
                    warn!("accepting a push connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let rx = rx.clone();
            let mut stop = rx.uploads.shutdown.clone();
            conns.spawn(async move {
                let svc = service_fn(move |req| {
                    let rx = rx.clone();
                    async move { Ok::<_, Infallible>(handle(&rx, peer.ip(), req).await) }
                });
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(tcp), svc);
                let mut conn = std::pin::pin!(conn);
                let done = tokio::select! {
                    res = conn.as_mut() => Some(res),
                    _ = stop.wait_for(|s| *s) => None,
                };
                let res = match done {
                    Some(res) => res,
                    None => {
                        // Finish the request in flight, take no other: an encoder's idle
                        // keep-alive connection must not hold the shutdown.
                        conn.as_mut().graceful_shutdown();
                        conn.as_mut().await
                    }
                };
                if let Err(e) = res {
                    debug!("push connection from {peer}: {e}");
                }
            });
            // Reap finished connections as we go.
            while conns.try_join_next().is_some() {}
        }
        // Requests in flight finish their segments; new ones are not taken.
        drop(listener);
        let _ =
            tokio::time::timeout(Duration::from_secs(15), async { while conns.join_next().await.is_some() {} }).await;
    }))
}

fn answer(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(text)));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

async fn handle(rx: &Receiver, peer: IpAddr, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (method, uri) = (req.method().clone(), req.uri().path().to_string());
    let res = route(rx, peer, req).await;
    let (status, text) = match res {
        Ok(s) => {
            debug!("{method} {uri} from {peer}: {}", s.as_u16());
            (s, String::new())
        }
        Err((s, why)) => {
            warn!("{method} {uri} from {peer}: {} {why}", s.as_u16());
            (s, format!("{why}\n"))
        }
    };
    rx.uploads.metrics.request(status.as_u16());
    let mut r = answer(status, text);
    if status == StatusCode::UNAUTHORIZED {
        let scheme = if rx.settings.access.wants_basic() { "Basic realm=\"hls-dvr ingest\"" } else { "Bearer" };
        r.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static(scheme));
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        r.headers_mut().insert(ALLOW, HeaderValue::from_static("PUT, POST, DELETE"));
    }
    r
}

async fn route(rx: &Receiver, peer: IpAddr, req: Request<Incoming>) -> Reply {
    let auth = req.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    match rx.settings.access.check(peer, auth) {
        Ok(()) => {}
        Err(Refusal::Forbidden) => return Err((StatusCode::FORBIDDEN, format!("{peer} may not push here"))),
        Err(Refusal::Unauthorized(why)) => return Err((StatusCode::UNAUTHORIZED, why.to_string())),
    }
    let uri = req.uri().path().to_string();
    let target = path::parse(&uri);
    if target == Target::Unknown {
        return Err((StatusCode::NOT_FOUND, format!("{uri} is not a push path (/ingest/STREAM/FILE)")));
    }
    let method = req.method().clone();
    if let Target::Markers { stream } = target {
        if method != Method::POST {
            return Err((StatusCode::METHOD_NOT_ALLOWED, format!("{method}: markers are posted (POST)")));
        }
        let text =
            body::whole(&mut req.into_body(), crate::marker::MAX_BODY, rx.settings.idle).await.map_err(body_failure)?;
        return mark(rx, stream, &text).await;
    }
    if method == Method::DELETE {
        // Encoders delete what left their playlists; the store's TTL decides instead.
        return Ok(StatusCode::NO_CONTENT);
    }
    if method != Method::PUT && method != Method::POST {
        return Err((StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not a push (PUT, POST or DELETE)")));
    }
    let mut body = req.into_body();
    let (limit, idle) = (rx.settings.max_segment, rx.settings.idle);
    match target {
        Target::Playlist { stream, name } => {
            let text = body::whole(&mut body, limit, idle).await.map_err(body_failure)?;
            rx.uploads.metrics.received(stream, text.len());
            hls::playlist(rx, &rx.hls_stream(stream), name, &text).await
        }
        Target::File { stream, name } => {
            let data = body::whole(&mut body, limit, idle).await.map_err(body_failure)?;
            rx.uploads.metrics.received(stream, data.len());
            rx.hls_stream(stream).file(name, data);
            Ok(StatusCode::CREATED)
        }
        Target::Manifest { stream } => {
            let data = body::whole(&mut body, limit, idle).await.map_err(body_failure)?;
            rx.uploads.metrics.received(stream, data.len());
            Ok(StatusCode::NO_CONTENT)
        }
        Target::CmafInit { stream, rendition } => {
            let data = body::whole(&mut body, limit, idle).await.map_err(body_failure)?;
            rx.uploads.metrics.received(stream, data.len());
            rx.track(stream, rendition).lock().await.set_init(data)
        }
        Target::CmafSegment { stream, rendition, number } => {
            let track = rx.track(stream, rendition);
            let mut track = track.lock().await;
            cmaf::segment(rx, &mut track, &uri, number, &mut body).await
        }
        Target::Track { stream, rendition } => {
            let track = rx.track(stream, rendition);
            let mut track = track.lock().await;
            cmaf::track(rx, &mut track, &mut body).await
        }
        Target::Unknown | Target::Markers { .. } => unreachable!("answered above"),
    }
}

/// Stores a posted marker: 201 once it is stored, 400 (nothing stored) when the body is not one,
/// 503 when the store cannot take it now (the poster retries).
async fn mark(rx: &Receiver, stream: &str, body: &[u8]) -> Reply {
    let m = crate::marker::from_json(body, hls_dvr_core::clock::now_ms()).map_err(|e| (StatusCode::BAD_REQUEST, e))?;
    let stored = rx.uploads.with_store(|store| async move { store.write_marker(stream, &m).await }).await;
    match stored {
        Ok(()) => Ok(StatusCode::CREATED),
        Err(StoreError::Invalid(e)) => Err((StatusCode::BAD_REQUEST, e)),
        Err(e) => Err((StatusCode::SERVICE_UNAVAILABLE, format!("the store cannot take the marker now: {e}"))),
    }
}
