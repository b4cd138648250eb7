//! Compile-time checks that the public types can cross threads.

use std::convert::Infallible;
use std::future::Ready;

use http::Response;
use tower_pressure_memory::{
    HeapBudget, HooksHandle, MemoryHooks, MemoryPressure, MemoryShed, MemoryShedConfig,
    MemoryShedLayer, MemorySource, ResponseFuture,
};

fn send_sync<T: Send + Sync>() {}
fn send<T: Send>() {}

#[test]
fn public_types_are_send_and_sync_where_it_matters() {
    send_sync::<MemoryShedLayer>();
    send_sync::<MemoryShedLayer<tower_pressure_core::AsError>>();
    send_sync::<MemoryShed<()>>();
    send_sync::<MemoryShed<(), tower_pressure_core::AsError>>();
    send_sync::<MemoryShedConfig>();
    send_sync::<MemoryPressure>();
    send_sync::<HooksHandle>();
    send_sync::<MemoryHooks>();
    send::<MemorySource>();
    send::<HeapBudget>();
    send::<ResponseFuture<Ready<Result<Response<()>, Infallible>>, Response<()>, Infallible>>();
}
