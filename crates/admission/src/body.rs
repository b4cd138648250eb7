//! [`ResponseBody`]: the inner body, holding the permit until its end when
//! asked to, or the body of a rejection.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::Permit;

pin_project! {
    /// The body of a response from an [`Admission`](crate::Admission) service.
    ///
    /// Either the inner service's body — holding the admission permit until
    /// the body ends or is dropped, when
    /// [`hold_until_body_end`](crate::AdmissionLayer::hold_until_body_end) is
    /// on — or the short body of a rejection.
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner {
            #[pin]
            body: B,
            permit: Option<Permit>,
        },
        // Boxed: rejections are rare, and a `Bytes` inline would make every
        // admitted response 24 bytes larger to move.
        Rejected {
            data: Option<Box<Bytes>>,
        },
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn inner(body: B, permit: Option<Permit>) -> Self {
        ResponseBody {
            kind: Kind::Inner { body, permit },
        }
    }

    pub(crate) fn rejected(data: Bytes) -> Self {
        ResponseBody {
            kind: Kind::Rejected {
                data: (!data.is_empty()).then(|| Box::new(data)),
            },
        }
    }
}

/// An empty body, so that layers outside admission (memory shedding, CPU
/// throttling) can answer their own refusals with this body type.
impl<B> Default for ResponseBody<B> {
    fn default() -> Self {
        ResponseBody {
            kind: Kind::Rejected { data: None },
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body,
    B::Data: From<Bytes>,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body, permit } => {
                let frame = body.poll_frame(cx);
                if let Poll::Ready(None | Some(Err(_))) = frame {
                    // The body has ended: the request is done with the resource.
                    permit.take();
                }
                frame
            }
            KindProj::Rejected { data } => {
                Poll::Ready(data.take().map(|d| Ok(Frame::data((*d).into()))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body, .. } => body.is_end_stream(),
            Kind::Rejected { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body, .. } => body.size_hint(),
            Kind::Rejected { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Inner { permit, .. } => f
                .debug_struct("ResponseBody")
                .field("holds_permit", &permit.is_some())
                .finish_non_exhaustive(),
            Kind::Rejected { data } => f
                .debug_struct("ResponseBody")
                .field("rejected", data)
                .finish(),
        }
    }
}
