//! [`Refusal`]: how a layer hands back a request it refuses.

pub use tower::BoxError;

use crate::Overloaded;

/// How a layer answers a request it refuses: with a response of the wrapped
/// service's own type (an HTTP `503`, a gRPC reply: the
/// [`Rejection`](crate::http::Rejection) of feature `http`) or with an error
/// ([`AsError`]). The layers of the family are generic over it, in the way
/// tower-http's layers are over their response builders.
///
/// `Res` and `E` are the wrapped service's response and error; the layered
/// service answers with `Res` and fails with [`Error`](Self::Error), into
/// which the wrapped service's errors convert.
pub trait Refusal<Req, Res, E> {
    /// The layered service's error.
    type Error: From<E>;

    /// The answer to `req`, refused for `err`.
    ///
    /// # Errors
    ///
    /// Whatever the implementation makes of the refusal: [`AsError`] always
    /// fails, with `err`.
    fn refuse(&self, err: Overloaded, req: &Req) -> Result<Res, Self::Error>;
}

/// Refuses with an error: a [`BoxError`] holding the [`Overloaded`] (check
/// with `err.is::<Overloaded>()`), for any request type. The wrapped
/// service's errors are boxed the same way, as tower's own layers do.
///
/// ```
/// use tower_pressure_core::{AsError, BoxError, Overloaded, Priority, Reason, Refusal};
///
/// let err = Overloaded::new(Reason::QueueFull, Priority::Low);
/// let out: Result<(), BoxError> =
///     Refusal::<(), (), std::io::Error>::refuse(&AsError, err, &());
/// assert!(out.unwrap_err().is::<Overloaded>());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AsError;

impl<Req, Res, E> Refusal<Req, Res, E> for AsError
where
    BoxError: From<E>,
{
    type Error = BoxError;

    fn refuse(&self, err: Overloaded, _req: &Req) -> Result<Res, BoxError> {
        Err(Box::new(err))
    }
}
