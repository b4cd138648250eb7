//! Compile-time checks that the public types cross threads: the limiter, its
//! permits and futures, the layers, the services and their bodies (in the
//! manner of tokio's `tests/async_send_sync.rs`). A failure is a build error.

use tower_pressure_admission::{
    Acquire, Admission, AdmissionLayer, AdmitRequest, ClassCounts, HttpRefusal, Permit,
    PriorityLimiter, PriorityLimiterBuilder, ResponseBody, ResponseFuture, Snapshot,
};
use tower_pressure_core::{AsError, BoxError, LimitHandle, Overloaded};

fn is_send<T: Send>() {}
fn is_sync<T: Sync>() {}
fn is_send_sync<T: Send + Sync>() {}
fn is_unpin<T: Unpin>() {}
fn is_static<T: 'static>() {}

#[test]
fn the_limiter_and_its_permits_are_send_and_sync() {
    is_send_sync::<PriorityLimiter>();
    is_send_sync::<PriorityLimiterBuilder>();
    is_send_sync::<Permit>();
    is_send_sync::<Acquire>();
    is_unpin::<Acquire>();
    is_static::<Acquire>();
    is_send_sync::<AdmitRequest>();
    is_send_sync::<Snapshot>();
    is_send_sync::<ClassCounts>();
    is_send_sync::<LimitHandle>();
    is_send_sync::<Overloaded>();
    is_send_sync::<BoxError>();
}

#[test]
fn the_layers_are_send_and_sync() {
    is_send_sync::<AdmissionLayer>();
    is_send_sync::<AdmissionLayer<AsError>>();
    is_static::<AdmissionLayer>();
}

/// The services, bodies and futures are `Send`/`Sync` whenever what they wrap is.
#[test]
fn the_services_bodies_and_futures_are_send_and_sync_when_what_they_wrap_is() {
    fn services<S: Send + Sync>() {
        is_send_sync::<Admission<S>>();
        is_send_sync::<Admission<S, AsError>>();
    }
    fn bodies<B: Send + Sync>() {
        is_send_sync::<ResponseBody<B>>();
    }
    fn send_futures<S: Send, B: Send, F: Send>() {
        is_send::<ResponseFuture<S, http::Request<B>, F, HttpRefusal>>();
        is_send::<ResponseFuture<S, http::Request<B>, F, AsError>>();
    }
    fn sync_futures<S: Sync, B: Sync, F: Sync>() {
        is_sync::<ResponseFuture<S, http::Request<B>, F, HttpRefusal>>();
    }
    services::<()>();
    bodies::<()>();
    send_futures::<(), (), ()>();
    sync_futures::<(), (), ()>();
}
