//! What every protocol's router needs from HTTP: the shared state, the caller's credential,
//! the public base URL, request limits, the status of each service error (`status.rs`),
//! building responses and redirects (`respond.rs`) and request logging. No protocol logic
//! lives here.

mod auth;
mod body;
mod completion;
mod drain;
mod edge;
pub mod handover;
mod metrics;
mod range;
mod respond;
pub mod sealed;
mod state;
mod status;
mod trace;

pub use auth::{Caller, MaybeCaller, credential_from_headers};
pub use body::{body_stream, read_limited};
pub use completion::run_to_completion;
pub use drain::{DRAIN_MAX, drain_unread_bodies};
pub use edge::{edge, protect_responses};
pub use metrics::{record_purge, render as render_metrics};
pub use range::{RangeRequest, range_request};
pub use respond::{Finish, query_param, redirect};
pub use state::{AppState, Limits, base_url};
pub use status::{Refusal, code_of, code_of_status, public_message, status_of};
pub use trace::{UPLOAD_CAPABILITY_PREFIX, describe_request, loggable_path};
