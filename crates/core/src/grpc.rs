//! `Overloaded` as a [`tonic::Status`] (feature `grpc`).

use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};

use crate::Overloaded;
use crate::http::{GRPC_RETRY_PUSHBACK_MS, GrpcCode};

impl Overloaded {
    /// A `tonic::Status` with the given code, the generic message
    /// ([`GENERIC_MESSAGE`](crate::http::GENERIC_MESSAGE): nothing of the
    /// client's class or the service's state), and the
    /// `grpc-retry-pushback-ms` metadata clients use to back off.
    ///
    /// ```
    /// use tower_pressure_core::{Overloaded, Priority, Reason};
    /// use tower_pressure_core::http::GrpcCode;
    ///
    /// let status = Overloaded::new(Reason::QueueFull, Priority::Low).to_status(GrpcCode::Unavailable);
    /// assert_eq!(status.code(), tonic::Code::Unavailable);
    /// assert_eq!(status.metadata().get("grpc-retry-pushback-ms").unwrap(), "1000");
    /// ```
    #[must_use]
    pub fn to_status(&self, code: GrpcCode) -> Status {
        let code = match code {
            GrpcCode::ResourceExhausted => Code::ResourceExhausted,
            GrpcCode::Unavailable => Code::Unavailable,
        };
        let mut metadata = MetadataMap::new();
        metadata.insert(
            GRPC_RETRY_PUSHBACK_MS,
            MetadataValue::from(self.pushback_ms()),
        );
        Status::with_metadata(code, crate::http::GENERIC_MESSAGE, metadata)
    }
}

impl From<Overloaded> for Status {
    /// `RESOURCE_EXHAUSTED` with pushback; see [`Overloaded::to_status`].
    fn from(err: Overloaded) -> Status {
        err.to_status(GrpcCode::ResourceExhausted)
    }
}
