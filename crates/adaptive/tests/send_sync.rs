//! Compile-time checks: the public types cross threads.

use std::convert::Infallible;

use http::{Request, Response};
use tower::util::BoxCloneSyncService;
use tower_pressure_adaptive::{
    Adaptive, AdaptiveLayer, AdaptiveLimit, AdaptiveLimitBuilder, Aimd, Gradient2,
    GradientController, HttpClassifier, Outcome, ResponseFuture, Sample, Vegas,
};

fn send_sync<T: Send + Sync>() {}
fn send<T: Send>() {}

type Svc = BoxCloneSyncService<Request<()>, Response<()>, Infallible>;

#[test]
fn public_types_are_send_and_sync() {
    send_sync::<AdaptiveLimit>();
    send_sync::<AdaptiveLayer>();
    send_sync::<Adaptive<Svc, HttpClassifier>>();
    send::<AdaptiveLimitBuilder>();
    send_sync::<ResponseFuture<std::future::Ready<Result<(), Infallible>>, HttpClassifier>>();
    send_sync::<Aimd>();
    send_sync::<Gradient2>();
    send_sync::<Vegas>();
    send_sync::<GradientController>();
    send_sync::<Sample>();
    send_sync::<Outcome>();
}
