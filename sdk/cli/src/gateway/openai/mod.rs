//! The OpenAI wire format as the gateway speaks it: [`request`] bodies in (parsed strictly, with
//! the offending parameter named on error) and [`response`] bodies out, with the Cocoon fields.

pub mod request;
pub mod response;

pub use request::{ChatCompletionRequest, CompletionRequest, EmbeddingRequest, EncodingFormat};
pub use response::CocoonFields;
