//! The one integration-test binary: a single link of the whole workspace, shared by every
//! cross-crate test.

mod blob_contract;
mod metadata_contract;
