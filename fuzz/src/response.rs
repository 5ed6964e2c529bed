//! The response_encode input: a mirror of `lanner_proto::Response` that `arbitrary` can build.

use arbitrary::Arbitrary;
use bytes::Bytes;
use lanner_proto::Response;

/// A mirror of `Response`, so `arbitrary` can build every variant.
#[derive(Debug, Arbitrary)]
#[allow(missing_docs)]
pub enum AnyResponse {
    Stored,
    NotStored,
    Deleted,
    End,
    Value { key: String, data: Vec<u8> },
    MonitorItem { key: String, data: Vec<u8> },
    Error,
    ClientError(String),
    ServerError(String),
    Version(String),
    FlushedAll,
    Reloaded,
    Count(u64),
    Stats(Vec<(String, String)>),
    Line(String),
    Raw(Vec<u8>),
}

impl From<AnyResponse> for Response {
    fn from(any: AnyResponse) -> Self {
        match any {
            AnyResponse::Stored => Response::Stored,
            AnyResponse::NotStored => Response::NotStored,
            AnyResponse::Deleted => Response::Deleted,
            AnyResponse::End => Response::End,
            AnyResponse::Value { key, data } => Response::Value {
                key: key.into(),
                data: Bytes::from(data),
            },
            AnyResponse::MonitorItem { key, data } => Response::MonitorItem {
                key: key.into(),
                data: Bytes::from(data),
            },
            AnyResponse::Error => Response::Error,
            AnyResponse::ClientError(reason) => Response::ClientError(reason),
            AnyResponse::ServerError(reason) => Response::ServerError(reason),
            AnyResponse::Version(version) => Response::Version(version),
            AnyResponse::FlushedAll => Response::FlushedAll,
            AnyResponse::Reloaded => Response::Reloaded,
            AnyResponse::Count(count) => Response::Count(count),
            AnyResponse::Stats(pairs) => Response::Stats(pairs),
            AnyResponse::Line(line) => Response::Line(line),
            AnyResponse::Raw(bytes) => Response::Raw(Bytes::from(bytes)),
        }
    }
}

/// The response_encode input.
#[derive(Debug, Arbitrary)]
pub struct Input {
    /// Bytes already in the output buffer (earlier replies of a pipeline).
    pub already: Vec<u8>,
    /// The reply to encode.
    pub response: AnyResponse,
}
